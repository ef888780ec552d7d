"""Customers' sessions: start, resume, send, typing and end."""

from __future__ import annotations

import hmac
import logging
import secrets
from datetime import timedelta
from typing import Any

from whatsease.bot.state import BotState
from whatsease.delivery import frames
from whatsease.delivery.hub import Connection
from whatsease.errors import NotFound, TooManyRequests, Unauthorized
from whatsease.metrics import (
    SUPPORT_SESSIONS,
)
from whatsease.storage.models import new_id
from whatsease.storage.support_models import Org, SupportConversation, SupportMessage
from whatsease.support.botbridge import SupportBotBridge
from whatsease.support.core import (
    HISTORY_MAX_LIMIT,
    RESUME_MESSAGES,
    SessionEnded,
    customer_actor,
    hash_token,
)

logger = logging.getLogger(__name__)


class SupportSessions(SupportBotBridge):
    """Customers' sessions: start, resume, send, typing and end."""

    # ------------------------------------------------------------------ customers

    async def start_session(self, org: Org, name: str, email: str, *, ip: str = "",
                            ) -> tuple[SupportConversation, str, list[SupportMessage]]:
        """Open a conversation for a customer; returns it, its secret token and its messages.

        The token is shown once; only its hash is stored. Raises `TooManyRequests`
        when one IP starts too many sessions for the org.
        """
        if ip:
            key = f"{org.org_id} {ip}"
            wait = self._session_starts.retry_after(key)
            if wait:
                raise TooManyRequests("Too many new conversations from here; try again later.",
                                      retry_after=wait)
            self._session_starts.fail(key)
        now = self.clock()
        conversation_id = new_id()
        token = f"{conversation_id}.{secrets.token_urlsafe(32)}"
        conversation = SupportConversation(
            conversation_id=conversation_id, org=org.org_id, customer_name=name,
            customer_email=email, token_hash=hash_token(token), created_at=now,
            last_message_at=now,
            expires_at=now + timedelta(seconds=org.settings.session_timeout),
            handler="bot" if org.settings.routing == "bot" else "queued")
        await self.store.conversations.insert(conversation)
        SUPPORT_SESSIONS.labels("started").inc()
        await self._record(org.org_id, "support.session_started", customer_actor(conversation),
                           f"{name} ({email}) started a support conversation with {org.name}",
                           conversation_id)
        if org.settings.greeting:
            await self._post(conversation, "system", f"org:{org.org_id}", org.name,
                             org.settings.greeting, keep_alive=False)
        self._emit_conversation(conversation)
        if org.settings.routing == "agent":
            await self._ensure_agent(conversation_id, requested_at=now)
        current = await self.store.conversations.get(conversation_id) or conversation
        messages = await self.store.messages.history(conversation_id, before=None,
                                                     limit=RESUME_MESSAGES)
        return current, token, list(reversed(messages))

    async def authenticate_customer(self, token: str, org_id: str | None = None,
                                    ) -> SupportConversation:
        """The conversation a widget token opens (active or ended); 401 otherwise.

        With ``org_id``, a token of another org's conversation is refused the same way.
        """
        conversation_id, _, secret = (token or "").partition(".")
        if not secret or len(token) > 200:
            raise Unauthorized("The session token is invalid.", code="invalid_token")
        conversation = await self.store.conversations.get(conversation_id)
        if conversation is None or not hmac.compare_digest(conversation.token_hash,
                                                           hash_token(token)):
            raise Unauthorized("The session token is invalid.", code="invalid_token")
        if org_id is not None and conversation.org != org_id:
            raise Unauthorized("The session token is invalid.", code="invalid_token")
        return conversation

    async def customer_view(self, conversation: SupportConversation,
                            ) -> tuple[SupportConversation, list[SupportMessage]]:
        """What a returning widget shows: the conversation (maybe ended) and its latest messages."""
        current = await self.refresh(conversation)
        messages = await self.store.messages.history(current.conversation_id, before=None,
                                                     limit=RESUME_MESSAGES)
        return current, list(reversed(messages))

    async def history(self, conversation_id: str, *, before: str | None,
                      limit: int) -> list[SupportMessage]:
        """A page of the conversation, newest first, older than ``before``."""
        if before is not None:
            anchor = await self.store.messages.get(before)
            if anchor is None or anchor.conversation_id != conversation_id:
                raise NotFound("No such message to page from.",
                               errors=[{"field": "before", "message": "not in this chat"}])
        return await self.store.messages.history(conversation_id, before=before,
                                                 limit=min(limit, HISTORY_MAX_LIMIT))

    async def customer_send(self, conversation_id: str, content: str, *,
                            client_id: str | None = None,
                            origin: Connection | None = None) -> SupportMessage:
        """Store a customer's message, deliver it, and route it to the bot or an agent.

        Raises `SessionEnded` (410) if the conversation has ended or its timeout
        has passed, and `TooManyRequests` if the customer sends too fast.
        """
        conversation = await self._active(conversation_id)
        if not self._bucket(conversation_id).take():
            # A retry of a message already stored is answered even when out of tokens.
            earlier = (await self.store.messages.by_client_id(conversation_id, client_id)
                       if client_id is not None else None)
            if earlier is not None:
                return earlier
            raise TooManyRequests("You're sending messages too fast; wait a moment.",
                                  retry_after=1)
        message = SupportMessage(
            message_id=new_id(), conversation_id=conversation_id, org=conversation.org,
            kind="customer", sender=conversation.customer_email,
            sender_name=conversation.customer_name, recipient=f"org:{conversation.org}",
            content=content, timestamp=self.clock(), client_id=client_id,
            language=remembered_language(conversation.bot_state))
        # The insert comes first: its unique (conversation, client_id) index is the
        # idempotency check, so a retry costs no extra read and is counted only once.
        stored = await self._inserts.submit(message)
        if stored is not message:
            return stored
        org = await self.orgs.current(conversation.org)
        try:
            updated = await self._count_message(conversation, message, org, unread=1)
        except SessionEnded:
            # It ended between the read above and now: the message was not accepted.
            await self.store.messages.delete(message.message_id)
            raise
        self._deliver(updated, stored, origin=origin)
        await self._route(updated, org, stored)
        return stored

    async def customer_typing(self, conversation: SupportConversation, state: bool) -> None:
        frame = frames.console_typing(conversation.conversation_id, "customer",
                                      conversation.customer_name, state)
        self._to_consoles(self._message_audience(conversation), frame)

    async def customer_end(self, conversation: SupportConversation) -> SupportConversation:
        """The customer closes the conversation from the widget."""
        ended = await self.store.conversations.end(conversation.conversation_id,
                                                   now=self.clock(), reason="customer")
        if ended is None:
            return await self.refresh(conversation)
        await self._after_end(ended)
        return ended


def remembered_language(bot_state: dict[str, Any]) -> str | None:
    """The language the bot speaks with this customer (the one they chose, else the one
    it last detected), or None before it has answered them."""
    state = BotState.from_dict(bot_state)
    return state.chosen_language or state.language
