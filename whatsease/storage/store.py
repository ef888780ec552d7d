"""The database handle: one client, the repositories, and the indexes they need."""

from __future__ import annotations

import logging
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from whatsease.errors import ServiceUnavailable
from whatsease.storage.activity import ActivityRepo
from whatsease.storage.analytics import ensure_indexes as ensure_analytics_indexes
from whatsease.storage.bot import BotRepo
from whatsease.storage.conversations import MEMBERS as CHAT_MEMBERS
from whatsease.storage.conversations import ConversationRepo
from whatsease.storage.documents import DocumentRepo
from whatsease.storage.messages import RECEIPTS as MESSAGE_RECEIPTS
from whatsease.storage.messages import MessageRepo
from whatsease.storage.outage import GuardedClient
from whatsease.storage.sessions import SessionRepo
from whatsease.storage.users import UserRepo

logger = logging.getLogger(__name__)

# How long an operation waits for a database it cannot reach before failing
# with 503 (pymongo's default is 30 s, which stalls every request of an outage).
DEFAULT_TIMEOUT_SECS = 2.0
# A single operation on a connected server may take this long: SecantusDB sorts
# in memory and can take seconds on a large collection; a server that stops
# answering mid-operation is given up on after it.
SOCKET_TIMEOUT_SECS = 30.0
# Pooled connections idle longer than this are closed by us, not used: SecantusDB
# closes a client connection idle for 300 s (as load balancers and NATs drop
# idle ones), and a write on such a connection fails (pymongo does not retry
# writes on a standalone server).
POOL_IDLE_SECS = 60.0

# Every index the application relies on, by collection. Creating an index that
# already exists with the same options is a no-op, so start-up can always run it.
INDEXES: dict[str, list[IndexModel]] = {
    "users": [
        IndexModel([("name_lower", ASCENDING)]),
        IndexModel([("org", ASCENDING), ("role", ASCENDING)]),
        # No two accounts whose emails look alike (auth/identity.py); accounts
        # from before skeletons existed have none.
        IndexModel([("skeleton", ASCENDING)], unique=True,
                   partialFilterExpression={"skeleton": {"$type": "string"}}),
    ],
    "sessions": [
        IndexModel([("user", ASCENDING), ("created_at", DESCENDING)]),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0),
    ],
    "messages": [
        IndexModel([("conversation_id", ASCENDING), ("_id", DESCENDING)]),
        IndexModel([("members", ASCENDING), ("rev", ASCENDING)]),
        IndexModel([("sender", ASCENDING), ("client_id", ASCENDING)], unique=True,
                   partialFilterExpression={"client_id": {"$type": "string"}}),
        # No (recipient, status) index: nothing queries it on a hot path, and
        # every receipt would pay to move the entry (bench/README.md).
    ],
    # A receipt is its own document (storage/messages.py): a sync finds the
    # messages whose status moved by these.
    "message_receipts": [IndexModel([("members", ASCENDING), ("rev", ASCENDING)])],
    # Chat summaries are rewritten for every batch of messages, and every
    # index entry of a rewritten document is rewritten with it: who is in a
    # chat is indexed in `chat_members` instead, written once per chat.
    "conversations": [],
    "chat_members": [IndexModel([("members", ASCENDING)])],
    # A flush of entries is one document (storage/activity.py) with one
    # entry here per person in it: each index here is paid per person per
    # flush (bench/README.md). `_id` is the newest entry's ObjectId: its
    # index is the time order. The actor is always in the audience, so
    # (audience, _id) also finds a person's own actions, newest first.
    "activity": [
        IndexModel([("audience", ASCENDING), ("_id", DESCENDING)]),
    ],
    "bot_contexts": [],
    "bot_turns": [
        IndexModel([("user", ASCENDING), ("bot", ASCENDING), ("_id", DESCENDING)]),
    ],
}


# Indexes earlier versions created that nothing reads any more: dropped at
# start-up, since every write pays for each index on its collection.
RETIRED_INDEXES: dict[str, list[str]] = {
    "activity": ["actor_1__id_-1", "time_-1"],
    "conversations": ["members_1_updated_at_-1"],
}


class Store:
    """Owns the database client and exposes one repository per collection.

    Any operation on a database that cannot be reached raises `ServiceUnavailable`
    within about ``timeout`` seconds (at once while the outage is known; see
    `whatsease.storage.outage`), never pymongo's connection errors.
    """

    def __init__(self, uri: str, db_name: str, *, timeout: float = DEFAULT_TIMEOUT_SECS,
                 **client_options: Any) -> None:
        timeout_ms = int(timeout * 1000)
        options: dict[str, Any] = {
            "tz_aware": True, "appname": "whatsease",
            # Finding a server and opening a connection to it are both bounded
            # by ``timeout``: an address that drops packets would otherwise hold
            # a request for connectTimeoutMS's default of 20 s.
            "serverSelectionTimeoutMS": timeout_ms, "connectTimeoutMS": timeout_ms,
            "socketTimeoutMS": int(SOCKET_TIMEOUT_SECS * 1000),
            "maxIdleTimeMS": int(POOL_IDLE_SECS * 1000)}
        options.update(client_options)
        self.client = GuardedClient(uri, **options)
        self.db: AsyncDatabase[dict[str, Any]] = self.client[db_name]
        self.users = UserRepo(self.db["users"])
        self.sessions = SessionRepo(self.db["sessions"])
        self.messages = MessageRepo(self.db["messages"], self.db[MESSAGE_RECEIPTS])
        self.conversations = ConversationRepo(self.db["conversations"],
                                              self.db[CHAT_MEMBERS])
        self.activity = ActivityRepo(self.db["activity"])
        self.documents = DocumentRepo(self.db)
        self.bot = BotRepo(self.db)

    async def ensure_indexes(self, extra: dict[str, list[IndexModel]] | None = None) -> None:
        """Create every index and backfill what a new one needs (idempotent; at start-up)."""
        wanted = dict(INDEXES)
        for name, models in (extra or {}).items():
            wanted[name] = wanted.get(name, []) + models
        for name, models in wanted.items():
            if models:
                await self.db[name].create_indexes(models)
        await ensure_analytics_indexes(self.db)
        for name, retired in RETIRED_INDEXES.items():
            present = {i["name"] async for i in await self.db[name].list_indexes()}
            for index in retired:
                if index in present:
                    await self.db[name].drop_index(index)
                    logger.info("dropped an index nothing reads",
                                extra={"collection": name, "index": index})
        await self.conversations.backfill_members()

    async def ping(self) -> bool:
        try:
            await self.client.admin.command("ping")
        except (PyMongoError, ServiceUnavailable) as exc:
            logger.warning("database ping failed: %s", exc)
            return False
        return True

    async def close(self) -> None:
        await self.client.close()
