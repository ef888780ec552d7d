"""The chat list: one row per conversation of a user, newest first, with the peer's profile."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from whatsease.storage.models import Conversation, User, is_bot
from whatsease.storage.store import Store
from whatsease.timeutil import isoformat

CHAT_LIST_LIMIT = 500


async def chat_list(store: Store, user: str, *, q: str, filter_: str,
                    online: Callable[[str], bool],
                    bot_name: Callable[[str], str]) -> list[dict[str, Any]]:
    """``user``'s chats whose peer's address or name contains ``q`` (any case), kept
    by ``filter_`` (all, unread, bots, people); ``online`` and ``bot_name`` say a
    peer's presence and an assistant's display name."""
    conversations = await store.conversations.list_for(user, limit=CHAT_LIST_LIMIT)
    peers = await store.users.get_many(
        c.peer_of(user) for c in conversations if not is_bot(c.peer_of(user)))
    # Receipts do not rewrite summaries: the last message's status is its own.
    last_ids = [c.last_message["message_id"] for c in conversations if c.last_message]
    statuses = {m.message_id: m.status for m in await store.messages.get_many(last_ids)}
    for c in conversations:
        if c.last_message and c.last_message["message_id"] in statuses:
            c.last_message["status"] = statuses[c.last_message["message_id"]]
    rows = []
    needle = q.lower()
    for c in conversations:
        row = chat_row(user, c, peers, online=online, bot_name=bot_name)
        if needle and needle not in row["peer"].lower() and needle not in row["name"].lower():
            continue
        if filter_ == "unread" and not row["unread_count"]:
            continue
        if filter_ == "bots" and not row["is_bot"]:
            continue
        if filter_ == "people" and row["is_bot"]:
            continue
        rows.append(row)
    return rows


def chat_row(user: str, c: Conversation, peers: dict[str, User], *,
             online: Callable[[str], bool], bot_name: Callable[[str], str]) -> dict[str, Any]:
    """One row of ``user``'s chat list, as the API returns it."""
    peer = c.peer_of(user)
    profile = peers.get(peer)
    last = dict(c.last_message or {})
    if last.get("timestamp") is not None:
        last["timestamp"] = isoformat(last["timestamp"])
    return {
        "peer": peer,
        "name": profile.name if profile else (bot_name(peer) if is_bot(peer)
                                              else "Deleted account"),
        "is_bot": is_bot(peer),
        "online": online(peer),
        "last_seen": isoformat(profile.last_seen) if profile and profile.last_seen else None,
        "last_message": last or None,
        "unread_count": c.unread_for(user),
        "updated_at": isoformat(c.updated_at),
    }
