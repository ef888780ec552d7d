"""A bulk write of many single-document updates committed once instead of once per update.

A database commits each statement of a plain ``bulk_write`` on its own: on
the embedded SecantusDB a batch of 32 chat-summary upserts is 32 journal
syncs (~4 ms each, about 1 ms of its CPU per document), during which every
other write waits its turn. Inside one transaction the same statements share
one commit: measured ~0.5 ms of CPU and ~0.9 ms of wall time per document.
The result is the same documents, all-or-nothing, and as durable (the commit
takes the client's write concern).

A MongoDB without transactions (a standalone ``mongod``) refuses them; the
first refusal switches that collection's writes back to the plain bulk write.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from pymongo import UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import OperationFailure
from pymongo.results import BulkWriteResult

from whatsease.storage.journal import unsynced

logger = logging.getLogger(__name__)

# MongoDB's IllegalOperation: "Transaction numbers are only allowed on a
# replica set member or mongos".
ILLEGAL_OPERATION = 20


class OneCommit:
    """Writes a list of updates to one collection in one transaction when the server allows it."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection
        self.transactions = True  # until the server refuses one

    async def bulk_write(self, ops: Sequence[UpdateOne], *, ordered: bool,
                         sync: bool = True) -> BulkWriteResult | None:
        """Apply ``ops`` (all or none when in a transaction) and return the result (None
        for no ops); raises what ``bulk_write`` raises.

        ``sync=False`` acknowledges the write before the database syncs its
        journal (see `whatsease.storage.journal`): for a write that a synced
        one follows at once.
        """
        if not ops:
            return None
        collection = self.collection if sync else unsynced(self.collection)
        if len(ops) == 1 or not self.transactions:
            return await collection.bulk_write(list(ops), ordered=ordered)

        async def body(session: AsyncClientSession) -> BulkWriteResult:
            return await collection.bulk_write(list(ops), ordered=ordered, session=session)

        try:
            async with self.collection.database.client.start_session() as session:
                return await session.with_transaction(body,
                                                      write_concern=collection.write_concern)
        except OperationFailure as exc:
            if exc.code != ILLEGAL_OPERATION:
                raise
            logger.info("the database has no transactions: chat summaries are written "
                        "one commit per update (%s)", exc)
            self.transactions = False
            return await collection.bulk_write(list(ops), ordered=ordered)
