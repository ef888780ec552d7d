"""A bounded record of the messages this process stored lately and made no receipt for.

Nearly every receipt is a Delivered for a message the same process stored and
delivered a few milliseconds before. Reading that message back (one query,
and one more for its receipt) only tells what the process already knew: who
sent it to whom, in which chat, and that it is still ``Sent`` unless someone
else moved it. The record keeps that much for a short while, so such a
receipt costs the database no read.

What the record says is a guess, not a fact: another instance sharing the
database may have made the message's receipt meanwhile, or erased it. So a
receipt decided from the record is written as an insert of the receipt
document, which only succeeds if there was none (`MessageRepo.advance_statuses`
with ``assumed``); one refused as already there is read and decided again.
An entry is dropped once a receipt was written for its message here, when
the message is deleted or its account erased here, after
`RECENT_MAX_AGE_SECS`, or when `RECENT_MAX_ENTRIES` newer ones push it out.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from datetime import datetime

from whatsease.storage.models import Message

# Receipts come within a delivery and the receipt batch's linger (under 0.1 s
# on a quiet machine, seconds when the database is behind); an older entry
# is read instead. The bound also keeps short the window in which another
# instance could delete a message this one still takes for undeleted.
RECENT_MAX_AGE_SECS = 10.0
# About 10 s of messages at 400 msg/s; ~300 bytes an entry (no content kept).
RECENT_MAX_ENTRIES = 4096

# sender, recipient, conversation id, sent at, is a bot's answer, recorded at (monotonic)
_Entry = tuple[str, str, str, datetime, bool, float]


class RecentMessages:
    """Messages stored here lately without a receipt, by id, oldest first (see the module)."""

    def __init__(self, *, max_entries: int = RECENT_MAX_ENTRIES,
                 max_age_secs: float = RECENT_MAX_AGE_SECS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_entries = max_entries
        self.max_age_secs = max_age_secs
        self._clock = clock
        # The oldest first. An OrderedDict, not a dict: a dict whose oldest keys
        # keep being removed makes finding the first one slower and slower.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def add(self, messages: Iterable[Message]) -> None:
        """Record freshly stored messages (status Sent, no receipt)."""
        now = self._clock()
        entries = self._entries
        for m in messages:
            entries[m.message_id] = (m.sender, m.recipient, m.conversation_id, m.timestamp,
                                     m.is_bot_response, now)
        self._prune(now)

    def _prune(self, now: float) -> None:
        # Only the oldest entries can be over age or over the bound: stop at the
        # first one that is neither (each add and look-up costs O(removed)).
        entries = self._entries
        oldest = now - self.max_age_secs
        while entries:
            message_id = next(iter(entries))
            if len(entries) <= self.max_entries and entries[message_id][5] >= oldest:
                break
            entries.popitem(last=False)

    def find(self, message_ids: Iterable[str]) -> dict[str, Message]:
        """The recorded ones of ``message_ids``, as messages still Sent without a receipt.

        They carry no content (it is not kept) and the ``rev`` they were stored with.
        """
        now = self._clock()
        self._prune(now)
        found = {}
        for message_id in message_ids:
            entry = self._entries.get(message_id)
            if entry is not None:
                sender, recipient, conversation, sent_at, is_bot_response, _ = entry
                found[message_id] = Message(
                    message_id=message_id, sender=sender, recipient=recipient, content="",
                    timestamp=sent_at, is_bot_response=is_bot_response,
                    conversation_id=conversation)
        return found

    def forget(self, message_ids: Iterable[str]) -> None:
        """Drop these messages' entries (a receipt was written, or the message deleted)."""
        for message_id in message_ids:
            self._entries.pop(message_id, None)

    def clear(self) -> None:
        self._entries.clear()
