"""Writes that leave their journal sync to the next write that waits for one.

With ``journal=true`` (the embedded database, `WHATSEASE_DB_JOURNAL`) every
write is acknowledged only once the database has synced its journal to
disk: a few milliseconds of waiting each, during which the write lane is
held. The journal is one log in commit order, so a sync makes every commit
before it durable as well. A background write (a chat summary, activity
entries) that an acknowledged message insert is about to follow in the
lane can therefore skip its own sync: the insert's sync, moments later,
covers it. Only a crash of the database itself in between loses such a
write, and only one the server re-derives from nothing it kept either
(it was queued in the server's memory a moment earlier).
"""

from __future__ import annotations

from typing import Any

from pymongo import WriteConcern
from pymongo.asynchronous.collection import AsyncCollection


def unsynced(collection: AsyncCollection[dict[str, Any]]) -> AsyncCollection[dict[str, Any]]:
    """``collection`` with writes acknowledged before the journal sync, when it asks for one.

    Only the ``j`` flag is dropped; the rest of the write concern (``w``,
    ``wtimeout``) stays, and a collection that never asks for a sync (a
    production replica set's defaults) is returned unchanged.
    """
    concern = collection.write_concern.document
    if not concern.get("j"):
        return collection
    kept = {key: value for key, value in concern.items() if key not in ("j", "fsync")}
    w = kept.pop("w", None)
    wtimeout = kept.pop("wtimeout", None)
    return collection.with_options(write_concern=WriteConcern(w=w, wtimeout=wtimeout))
