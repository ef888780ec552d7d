"""Sending, reading, editing and deleting messages, and moving their status forward.

REST and WebSocket both call these functions, so a message posted over REST
reaches the recipient's sockets and its receipts reach the sender the same way.
Writes are group-committed (see batching.py): a send waits for its own durable
insert, and receipts from many sockets share one bulk write.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from whatsease.activity import ActivityLog
from whatsease.batching import Batcher
from whatsease.delivery.events import MessageEvent, StatusEvent
from whatsease.delivery.hub import Connection, Hub
from whatsease.errors import Conflict, NotFound, invalid
from whatsease.messaging.chats import chat_list
from whatsease.messaging.revisions import SHARED_SETTLE_SECS, Cursor, Revisions
from whatsease.metrics import (
    BATCH_SIZE,
    CLUSTER_RESTAMPS,
    CLUSTER_RESTAMPS_GIVEN_UP,
    MESSAGES,
    SEND_DELIVERED_LATENCY,
)
from whatsease.storage.models import (
    STATUS_RANK,
    Message,
    conversation_id,
    is_bot,
    new_id,
)
from whatsease.storage.store import Store
from whatsease.timeutil import utcnow
from whatsease.writelane import ACK, RECEIPTS, URGENT, WriteLane

HISTORY_MAX_LIMIT = 100
SYNC_PAGE_LIMIT = 200
# Below every id: a cursor meaning "from the start".
FIRST_ID = "0" * 24

BotHook = Callable[[Message], Awaitable[None]]

logger = logging.getLogger(__name__)

# Metric children looked up once: ``labels()`` takes a lock on every call.
MESSAGES_SENT = MESSAGES.labels("Sent")
MESSAGES_BY_STATUS = {s: MESSAGES.labels(s) for s in ("Delivered", "Read")}
BATCH_SIZE_MESSAGES = BATCH_SIZE.labels("messages")
BATCH_SIZE_STATUSES = BATCH_SIZE.labels("statuses")
BATCH_SIZE_SUMMARIES = BATCH_SIZE.labels("summaries")
# Receipt batches wait this long before reading and writing, in seconds: a
# tick turns blue this much later, and the database does far less work.
STATUS_LINGER_SECS = 0.05
# Largest batches of receipts, inserts and summaries. Writes take turns in
# the write lane, so an insert may wait for one other batch: keep each to
# ~15-25 ms on the embedded database (a receipt costs it ~0.7 ms, a message
# ~0.5 ms, a chat summary ~0.65 ms).
STATUS_MAX_BATCH = 24
INSERT_MAX_BATCH = 32
# A message insert lingers this long for others, in seconds, but only while
# messages keep coming (the previous insert began within INSERT_BUSY_SECS):
# a lone message is written at once. At 200 messages a second this puts ~2
# messages in each insert instead of ~1.2, for ~3 ms of delivery latency.
INSERT_LINGER_SECS = 0.003
INSERT_BUSY_SECS = 0.02
SUMMARY_MAX_BATCH = 32
# Chat summaries wait this long for more before they are written, in seconds.
# Nobody waits for them on the delivery path, and whoever reads them (the chat
# list, a Read receipt, an edit or a delete: `summaries_written`) ends the
# wait at once. At 200 messages a second a command then carries ~5 summaries
# instead of ~1.3, and the server's cost is per command (bench/README.md).
# Longer lingers gather more, but a bigger batch holds the write lane longer
# and an insert may wait behind it: 50 ms doubled the 1,000-user p99.
SUMMARY_LINGER_SECS = 0.02
# A change whose write was overdue gets a fresh rev, in the background; if
# that one write is overdue too (one command taking seconds: the database is
# saturated), it gets one more, and no further: each try adds a write to a
# database that is already behind (see revisions.py).
RESTAMP_MAX_TRIES = 2
RESTAMP_MAX_BATCH = 500


@dataclass
class _StatusRequest:
    user: str
    message_ids: list[str]
    status: str
    origin: Connection | None = None


class Messaging:
    """The message service. One per process, built in ``make_app``."""

    def __init__(self, store: Store, hub: Hub, activity: ActivityLog, lane: WriteLane,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.store = store
        self.hub = hub
        self.activity = activity
        self.clock = clock
        # Shared with the activity log and support: one writer at a time, urgent first.
        self.lane = lane
        self.bots: dict[str, BotHook] = {}
        self._inserts: Batcher[Message, Message] = Batcher(
            self._insert_batch, max_batch=INSERT_MAX_BATCH, name="messages",
            linger=INSERT_LINGER_SECS, busy_window=INSERT_BUSY_SECS)
        self._lookups: Batcher[str, bool] = Batcher(self._lookup_batch, name="recipients")
        self._revisions = Revisions()
        # Changes whose write was overdue (cluster only): one fresh rev each, in the
        # background, many per command; nobody waits for them (see `_restamp_batch`).
        self._restamps: Batcher[tuple[str, int], None] = Batcher(
            self._restamp_batch, max_batch=RESTAMP_MAX_BATCH, name="restamps")
        # The socket each message in the insert queue came from (not echoed to it).
        self._origins: dict[str, Connection | None] = {}
        # Chat-list summaries of stored messages, written after delivery in
        # their own turn of the lane (see `_insert_batch`).
        self._summaries: Batcher[Message, None] = Batcher(
            self._summary_batch, max_batch=SUMMARY_MAX_BATCH, name="summaries",
            linger=SUMMARY_LINGER_SECS)
        # Receipts are off the delivery path: they linger so that each batch
        # gathers more of them (the database's cost per command is about
        # that of several documents).
        self._statuses: Batcher[_StatusRequest, list[Message]] = Batcher(
            self._status_batch, max_batch=STATUS_MAX_BATCH, name="statuses",
            linger=STATUS_LINGER_SECS)

    def share_database(self, settle_secs: float = SHARED_SETTLE_SECS) -> None:
        """Other instances write the same database (a cluster): sync cursors
        stay behind the settle window and overdue writes get fresh revs
        (see revisions.py), and chat summaries are written without transactions
        (`ConversationRepo.share`). Call once, before serving."""
        self._revisions.share(settle_secs)
        self.store.conversations.share()

    def register_bot(self, address: str, hook: BotHook) -> None:
        """Route messages sent to ``address`` (``bot:<name>``) to ``hook`` after they are stored."""
        self.bots[address] = hook

    async def recipient_exists(self, recipient: str) -> bool:
        if is_bot(recipient):
            return recipient in self.bots
        if self.hub.is_online(recipient):
            return True  # a live socket belongs to an existing account
        return await self._lookups.submit(recipient)

    async def _lookup_batch(self, emails: list[str]) -> list[bool]:
        found = await self.store.users.get_many(emails)
        return [e in found for e in emails]

    async def send(self, sender: str, recipient: str, content: str, *,
                   client_id: str | None = None, is_bot_response: bool = False,
                   origin: Connection | None = None,
                   extra: dict[str, object] | None = None) -> Message:
        """Store a message and deliver it live; return it (status Sent).

        The recipient's sockets and the sender's other sockets (all but
        ``origin``) get a ``message`` frame as soon as the insert is durable,
        and the call returns then too; the chat list's summary follows in
        the background, and a chat list read waits for it. A retry with the
        same ``client_id`` returns the stored message and is not delivered
        again: the unique index on (sender, client_id) decides, in the same
        batched insert, so a retry costs no extra round trip. Raises
        `NotFound` for an unknown recipient.
        """
        if recipient == sender:
            raise invalid("recipient", "must be someone other than yourself")
        if not is_bot_response and not await self.recipient_exists(recipient):
            raise NotFound(f"No user or bot called {recipient!r}.",
                           errors=[{"field": "recipient", "message": "does not exist"}])
        stored = await self._store_and_deliver(
            sender, recipient, content, client_id=client_id,
            is_bot_response=is_bot_response, origin=origin, extra=extra)
        hook = self.bots.get(recipient)
        if hook is not None:
            await hook(stored)
        return stored

    async def _store_and_deliver(self, sender: str, recipient: str, content: str, *,
                                 client_id: str | None, is_bot_response: bool,
                                 origin: Connection | None,
                                 extra: dict[str, object] | None) -> Message:
        token = self._revisions.begin()
        try:
            message = Message(message_id=new_id(), sender=sender, recipient=recipient,
                              content=content, timestamp=self.clock(),
                              is_bot_response=is_bot_response,
                              conversation_id=conversation_id(sender, recipient),
                              client_id=client_id, extra=extra or {})
            self._origins[message.message_id] = origin
            stored = await self._inserts.submit(message)
        finally:
            self._origins.pop(message.message_id, None)
            self._revisions.end(token)
        if stored is not message:
            # A retry: the stored original (possibly shared with other
            # retries in the same batch), without the repository's marker.
            # Not delivered again, and its summary was written the first time.
            extra = {k: v for k, v in stored.extra.items() if k != "duplicate"}
            return dataclasses.replace(stored, extra=extra)
        return stored

    async def _insert_batch(self, messages: list[Message]) -> list[Message]:
        """Insert a batch and deliver it; queue its chats' summaries.

        Delivery goes out as soon as the insert is durable. The summaries
        follow in their own turn of the lane, so the next insert does not
        wait for them; whoever reads the chat list or rewrites a summary
        first waits for those queued before (`summaries_written`).
        """
        BATCH_SIZE_MESSAGES.observe(len(messages))
        async with self.lane.hold(URGENT), self._revisions.writing():
            made_at = time.time()
            if self._revisions.shared:
                # The rev is made now, not when the message was queued: the wait
                # for the lane must not make the write overdue (revisions.py).
                for message in messages:
                    message.rev = new_id()
            stored = await self.store.messages.insert_many(messages)
        # Retries return the earlier message: delivered, and summarised, then.
        fresh = []
        for message, kept in zip(messages, stored, strict=True):
            if kept is message:
                self._deliver(message)
                self._summaries.submit_nowait(message)
                fresh.append(message.message_id)
        self._settle(fresh, made_at)
        return stored

    def _settle(self, message_ids: list[str], made_at: float, tries: int = 0) -> None:
        """If the write of these changes (revs made at ``made_at``) was overdue, queue a
        fresh rev for them; return at once.

        Only when other processes share the database (see revisions.py): a
        sync there may have handed out a cursor above the change's rev while
        it was being written. Nobody waits for this, neither the sender's ack
        nor the write lane: the revs change, nothing else does, and the
        change is already stored and delivered.
        """
        if not message_ids or not self._revisions.overdue(made_at):
            return
        if tries >= RESTAMP_MAX_TRIES:
            CLUSTER_RESTAMPS_GIVEN_UP.inc(len(message_ids))
            logger.error("message writes keep taking longer than the sync settle window; "
                         "%d changes may reach other instances' clients only live or by a "
                         "sync from an older cursor", len(message_ids))
            return
        for message_id in message_ids:
            self._restamps.submit_nowait((message_id, tries + 1))

    async def _restamp_batch(self, items: list[tuple[str, int]]) -> list[None]:
        """One fresh rev for every change queued by `_settle`: one command however many.

        Outside the write lane: a restamp is rare and small, and inserts must
        not wait behind it. Its rev is made after the gate is passed, so only
        the command itself can make it overdue again.
        """
        CLUSTER_RESTAMPS.inc(len(items))
        tries = max(t for _, t in items)
        ids = list(dict.fromkeys(mid for mid, _ in items))
        token = self._revisions.begin()
        try:
            async with self._revisions.writing():
                made_at = time.time()
                await self.store.messages.restamp(ids)
        finally:
            self._revisions.end(token)
        self._settle(ids, made_at, tries)
        return [None] * len(items)

    async def summaries_written(self) -> None:
        """Wait until the chat summaries of every message stored so far are written.

        Whoever reads conversations (the chat list, presence's "who shares a
        chat") or changes a summary's counters calls this first.
        """
        await self._summaries.barrier()

    async def _summary_batch(self, messages: list[Message]) -> list[None]:
        BATCH_SIZE_SUMMARIES.observe(len(messages))
        async with self.lane.hold(ACK):
            # An insert waiting behind this write syncs the journal for both.
            await self.store.conversations.record_messages(
                messages, sync=not self.lane.urgent_next())
        return [None] * len(messages)

    def _deliver(self, message: Message) -> None:
        MESSAGES_SENT.inc()
        self.hub.publish(MessageEvent(message.to_json()), (message.recipient, None),
                         (message.sender, self._origins.get(message.message_id)))
        self.activity.record("bot.replied" if message.is_bot_response else "message.sent",
                             message.sender, target=message.recipient,
                             message_id=message.message_id)

    async def get(self, user: str, message_id: str) -> Message:
        """One message the user sent or received; `NotFound` otherwise (never leaks existence)."""
        message = await self.store.messages.get(message_id)
        if message is None or user not in (message.sender, message.recipient):
            raise NotFound("No such message.")
        return message

    async def history(self, user: str, peer: str, *, before: str | None,
                      limit: int) -> list[Message]:
        """The conversation with ``peer``, newest first, older than ``before``."""
        if before is not None:
            anchor = await self.store.messages.get(before)
            if anchor is None or anchor.conversation_id != conversation_id(user, peer):
                raise NotFound("No such message to page from.",
                               errors=[{"field": "before", "message": "not in this chat"}])
        return await self.store.messages.history(conversation_id(user, peer), before=before,
                                                 limit=min(limit, HISTORY_MAX_LIMIT))

    async def changes_since(self, user: str, after: str | None,
                            limit: int = SYNC_PAGE_LIMIT, *,
                            resume: bool = True) -> tuple[list[Message], bool, str | None]:
        """Messages to or from ``user`` created or changed after ``after``, oldest change first.

        Returns the page, whether more follow, and the cursor to ask from next.
        ``after`` may be a message id (changes after that message was sent;
        in a cluster, from a settle window before it: `Revisions.settled_from`)
        or a previous cursor (``REV.ID``: a position in the order of
        changes, which breaks ties between messages one receipt batch
        changed together; see `Cursor`). Every message read is returned, in
        its current state, but the cursor's settled part stops below any
        change that may still land lower (still being written here, or, in
        a cluster, made by another instance within the settle window): that
        change and what follows come again in the next sync (and live
        meanwhile), so a cursor never skips one. Clients merge pages by
        ``message_id``.

        While more follow a held-back position, the cursor also carries
        where the next page starts, so paging moves on. A client that
        reconnects in the middle of that passes ``resume=False`` (its first
        sync on a socket): the page then starts again from the settled part,
        which brings whatever landed behind the resume position meanwhile.
        """
        position = Cursor.parse(after)
        if position.settled and "." not in position.settled:
            position = Cursor(self._revisions.settled_from(position.settled), position.resume)
        continuing = resume and bool(position.resume)
        start = position.resume if continuing else position.settled
        rev, _, after_id = start.partition(".")
        async with self._revisions.reading():
            settled = self._revisions.settled_below()
            page = await self.store.messages.changed_since(
                user, rev or None, limit=limit + 1, after_id=after_id or None)
        more = len(page) > limit
        page = page[:limit]
        safe, held, last = position.settled, continuing, start
        for m in page:
            last = f"{m.rev}.{m.message_id}"
            held = held or m.rev >= settled
            if not held:
                safe = last
        cursor = Cursor(safe, last if more and held else "").text()
        if cursor is None and after is not None:
            # The end of a tail paged from the start: replace the client's
            # resume position with one that means "from the start".
            cursor = FIRST_ID
        return page, more, cursor

    async def edit(self, user: str, message_id: str, content: str) -> Message:
        current = await self.get(user, message_id)
        if current.sender != user:
            raise NotFound("No such message of yours.")
        if current.deleted:
            raise Conflict("A deleted message cannot be edited.", code="deleted")
        token = self._revisions.begin()
        try:
            async with self._revisions.writing():
                started = time.time()  # the rev is made after the gate
                message = await self.store.messages.edit(message_id, user, content,
                                                         self.clock())
        finally:
            self._revisions.end(token)
        if message is None:
            raise Conflict("The message was deleted meanwhile.", code="deleted")
        self._settle([message_id], started)
        await self.summaries_written()  # its own summary may still be queued
        await self.store.conversations.refresh_last(message)
        self._broadcast_change(message)
        self.activity.record("message.edited", user, target=message.recipient,
                             message_id=message_id)
        return message

    async def delete(self, user: str, message_id: str) -> None:
        current = await self.get(user, message_id)
        if current.sender != user:
            raise NotFound("No such message of yours.")
        if current.deleted:
            return
        token = self._revisions.begin()
        try:
            async with self._revisions.writing():
                started = time.time()  # the rev is made after the gate
                message = await self.store.messages.soft_delete(message_id, user, self.clock())
        finally:
            self._revisions.end(token)
        if message is None:
            return
        self._settle([message_id], started)
        await self.summaries_written()
        await self.store.conversations.refresh_last(message)
        if message.status != "Read" and not is_bot(message.recipient):
            # It can no longer be read, so it no longer waits to be.
            await self.store.conversations.bump_statuses(
                [], {(message.conversation_id, message.recipient): 1})
        self._broadcast_change(message)
        self.activity.record("message.deleted", user, target=message.recipient,
                             message_id=message_id)

    def _broadcast_change(self, message: Message) -> None:
        users = dict.fromkeys((message.sender, message.recipient))  # once each, in order
        self.hub.publish(MessageEvent(message.to_json()), *((u, None) for u in users))

    async def set_status(self, user: str, message_id: str, status: str) -> Message:
        """REST: the recipient moves one message forward. 409 if it would move back."""
        message = await self.get(user, message_id)
        if message.recipient != user:
            raise NotFound("No such message addressed to you.")
        if STATUS_RANK[status] < STATUS_RANK[message.status]:
            raise Conflict(f"Status can only move forward: the message is already "
                           f"{message.status}, so it cannot become {status}.",
                           code="status_backwards")
        changed = await self.mark(user, [message_id], status)
        for m in changed:
            if m.message_id == message_id:
                # ``m`` may come from the record of recent messages, which
                # keeps no content: the message read above, moved on.
                return dataclasses.replace(message, status=m.status)
        return await self.get(user, message_id)

    async def mark(self, user: str, message_ids: list[str], status: str, *,
                   origin: Connection | None = None) -> list[Message]:
        """Receipts from the recipient; returns the messages that moved forward.

        Ids that are not addressed to ``user``, unknown, or already at or past
        ``status`` are ignored: receipts are idempotent. Receipts from every
        caller within a few milliseconds share one read and one bulk write.
        ``origin`` (the socket that sent the receipt) gets no ``status`` frame
        about its own receipt. A message this process stored lately costs no
        read (`MessageRepo.recently_stored`), and is returned without its
        content.
        """
        return await self._statuses.submit(_StatusRequest(user, message_ids, status, origin))

    async def _status_batch(self, requests: list[_StatusRequest]) -> list[list[Message]]:
        BATCH_SIZE_STATUSES.observe(len(requests))
        # A Read lowers an unread counter that the message's own summary
        # raises: that summary must be written first. (Outside the lane:
        # summaries need it.) Delivered does not touch summaries: a batch of
        # those does not wait for them.
        if any(r.status == "Read" for r in requests):
            await self.summaries_written()
        # Messages stored here lately need no read (their receipt's insert
        # proves the guess: `_apply_statuses`); the others are read. The read
        # takes no turn of the lane, which only writes need: an insert waits
        # behind a shorter turn. What it finds cannot move back meanwhile
        # (receipt batches run one at a time, and the update only moves a
        # status forward).
        wanted = {mid for r in requests for mid in r.message_ids}
        found = self.store.messages.recently_stored(wanted)
        assumed = set(found)
        if len(found) < len(wanted):
            found.update((m.message_id, m) for m in await self.store.messages.get_many(
                wanted.difference(found)))
        async with self.lane.hold(RECEIPTS):
            return await self._apply_statuses(requests, found, assumed)

    @staticmethod
    def _targets(requests: list[_StatusRequest], found: dict[str, Message],
                 ) -> tuple[dict[str, str], dict[str, Connection | None]]:
        """The status each found message moves to (only the recipient moves it,
        only forward), and the socket whose receipt moved it."""
        target: dict[str, str] = {}
        origins: dict[str, Connection | None] = {}
        for r in requests:
            for mid in r.message_ids:
                m = found.get(mid)
                if m is None or m.recipient != r.user or m.deleted:
                    continue
                best = target.get(mid, m.status)
                if STATUS_RANK[r.status] > STATUS_RANK[best]:
                    target[mid] = r.status
                    origins[mid] = r.origin
        return target, origins

    async def _advance(self, target: dict[str, str], found: dict[str, Message],
                       now: datetime, assumed: set[str]) -> set[str]:
        """Write ``target`` (`MessageRepo.advance_statuses`); the assumed ids left alone."""
        token = self._revisions.begin()
        try:
            async with self._revisions.writing():
                started = time.time()  # the rev is made after the gate
                stale = await self.store.messages.advance_statuses(
                    target, now, {mid: sorted({found[mid].sender, found[mid].recipient})
                                  for mid in target},
                    receipted=[mid for mid in target if found[mid].has_receipt],
                    assumed=assumed.intersection(target))
        finally:
            self._revisions.end(token)
        self._settle([mid for mid in target if mid not in stale], started)
        return stale

    async def _apply_statuses(self, requests: list[_StatusRequest], found: dict[str, Message],
                              assumed: set[str]) -> list[list[Message]]:
        target, origins = self._targets(requests, found)
        now = self.clock()
        stale = await self._advance(target, found, now, assumed)
        if stale:
            # Another instance made these receipts after this one stored the
            # messages: read them as they are now and decide again, so that
            # nothing moves back and no status is announced twice.
            for mid in stale:
                del target[mid], found[mid]
                origins.pop(mid, None)
            again = {m.message_id: m for m in await self.store.messages.get_many(stale)}
            more, more_origins = self._targets(requests, again)
            await self._advance(more, again, now, set())
            found.update(again)
            target.update(more)
            origins.update(more_origins)
        # Only Read changes the conversation (its unread counter): the chat
        # list reads its last message's ticks from the message itself, so a
        # Delivered receipt costs one write, not two.
        changed: dict[str, Message] = {}
        unread_drop: dict[tuple[str, str], int] = defaultdict(int)
        for mid, status in target.items():
            m = found[mid]
            previous = m.status
            m.status = status
            changed[mid] = m
            if status == "Read":
                unread_drop[(m.conversation_id, m.recipient)] += 1
            self._announce_status(m, previous, now, origins.get(mid))
        if unread_drop:
            await self.store.conversations.bump_statuses([], dict(unread_drop))
        return [[changed[mid] for mid in dict.fromkeys(r.message_ids) if mid in changed
                 and changed[mid].recipient == r.user] for r in requests]

    def _announce_status(self, m: Message, previous: str, now: datetime,
                         origin: Connection | None) -> None:
        # The reader's other tabs keep the same ticks and unread badge; the
        # socket that sent the receipt knows already.
        self.hub.publish(StatusEvent(m.message_id, m.status, m.conversation_id),
                         (m.sender, None), (m.recipient, origin))
        for status in ("Delivered", "Read")[STATUS_RANK[previous]:STATUS_RANK[m.status]]:
            MESSAGES_BY_STATUS[status].inc()
            self.activity.record(f"message.{status.lower()}", m.recipient, target=m.sender,
                                 message_id=m.message_id)
        if previous == "Sent":
            SEND_DELIVERED_LATENCY.observe(max(0.0, (now - m.timestamp).total_seconds()))

    async def chats(self, user: str, *, q: str = "", filter_: str = "all") -> list[dict[str, Any]]:
        """The chat list: one row per conversation, newest first, with the peer's profile."""
        await self.summaries_written()  # a message sent just now is in the list
        return await chat_list(self.store, user, q=q, filter_=filter_,
                               online=self.hub.is_online, bot_name=self.bot_name)

    def bot_name(self, address: str) -> str:
        return "WhatsEase Assistant" if address == "bot:whatsease" else address

    async def drain(self) -> None:
        await self._inserts.drain()
        await self._summaries.drain()
        await self._statuses.drain()
        await self._restamps.drain()
