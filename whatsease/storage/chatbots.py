"""Chatbot instances, their per-sender queues and per-conversation usage, in MongoDB.

``chatbot_instances`` holds each operator's instance configs (secrets only
sealed, in ``sealed``) and its running totals; ``chatbot_queue`` holds every
sender's bounded queue, one document per entry, so queues survive a restart;
``chatbot_conversations`` sums each conversation's LLM calls, tokens and time.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

INSTANCES = "chatbot_instances"
QUEUE = "chatbot_queue"
CONVERSATIONS = "chatbot_conversations"

CHATBOT_INDEXES: dict[str, list[IndexModel]] = {
    INSTANCES: [IndexModel([("owner", ASCENDING), ("user_id", ASCENDING)], unique=True)],
    QUEUE: [
        IndexModel([("instance", ASCENDING), ("sender", ASCENDING), ("_id", ASCENDING)]),
        IndexModel([("answered", ASCENDING), ("instance", ASCENDING)]),
        IndexModel([("instance", ASCENDING), ("platform_id", ASCENDING)], unique=True,
                   partialFilterExpression={"platform_id": {"$type": "string"}}),
    ],
    CONVERSATIONS: [IndexModel([("instance", ASCENDING), ("last_at", DESCENDING)])],
}
COUNT_NAMES = ("received", "answered", "ignored", "dropped", "errors", "handoffs",
               "outside_window")


@dataclass
class StoredInstance:
    """One instance as stored: config without its secrets, the sealed secrets, totals."""

    instance_id: str
    owner: str
    user_id: str
    whitelist: list[str]
    chat_provider: str
    chat_config: dict[str, Any]
    allow_groups: bool
    queue: dict[str, Any]
    llm_provider: str
    llm_config: dict[str, Any]
    sealed: str
    created_at: datetime
    updated_at: datetime
    counts: dict[str, int] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=dict)
    latency: dict[str, float] = field(default_factory=dict)
    last_error: dict[str, Any] | None = None
    # {"org_id", "auto_handoff_threshold", "low_confidence_turns"}, or None: never.
    handoff: dict[str, Any] | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> StoredInstance:
        return cls(instance_id=doc["_id"], owner=doc["owner"], user_id=doc["user_id"],
                   whitelist=list(doc.get("whitelist", [])),
                   chat_provider=doc["chat"]["provider_name"],
                   chat_config=dict(doc["chat"].get("provider_config", {})),
                   allow_groups=bool(doc["chat"].get("allow_group_messages", False)),
                   queue=dict(doc["queue"]), llm_provider=doc["llm"]["provider_name"],
                   llm_config=dict(doc["llm"].get("provider_config", {})),
                   sealed=doc.get("sealed", ""), created_at=doc["created_at"],
                   updated_at=doc["updated_at"],
                   counts={k: int(v) for k, v in doc.get("counts", {}).items()},
                   tokens={k: int(v) for k, v in doc.get("tokens", {}).items()},
                   latency={k: float(v) for k, v in doc.get("latency", {}).items()},
                   last_error=doc.get("last_error"), handoff=doc.get("handoff"))

    def to_doc(self) -> dict[str, Any]:
        return {"_id": self.instance_id, "owner": self.owner, "user_id": self.user_id,
                "whitelist": list(self.whitelist),
                "chat": {"provider_name": self.chat_provider,
                         "provider_config": dict(self.chat_config),
                         "allow_group_messages": self.allow_groups},
                "queue": dict(self.queue),
                "llm": {"provider_name": self.llm_provider,
                        "provider_config": dict(self.llm_config)},
                "sealed": self.sealed, "created_at": self.created_at,
                "updated_at": self.updated_at, "counts": dict(self.counts),
                "tokens": dict(self.tokens), "latency": dict(self.latency),
                "last_error": self.last_error, "handoff": self.handoff}


@dataclass
class QueueEntry:
    """One message of a sender's queue: theirs (``user``) or the bot's (``assistant``)."""

    entry_id: str
    role: str
    content: str
    at: datetime
    answered: bool = False
    # Where the answer goes when it is not the sender (a group chat).
    target: str = ""
    # The platform's message id, for de-duplicating a redelivered webhook.
    platform_id: str = ""

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> QueueEntry:
        return cls(entry_id=str(doc["_id"]), role=doc["role"], content=doc["content"],
                   at=doc["at"], answered=bool(doc.get("answered", False)),
                   target=doc.get("target", ""), platform_id=doc.get("platform_id", ""))


def new_entry_id() -> str:
    """A fresh, time-ordered id for a queue entry (an ObjectId string)."""
    return str(ObjectId())


class ChatbotRepo:
    """The three collections of chatbot instances."""

    def __init__(self, db: AsyncDatabase[dict[str, Any]]) -> None:
        self.instances = db[INSTANCES]
        self.queue = db[QUEUE]
        self.conversations = db[CONVERSATIONS]

    # -------------------------------------------------------------- instances

    async def owned(self, owner: str, *, limit: int) -> list[StoredInstance]:
        docs = await self.instances.find({"owner": owner}).sort(
            "user_id", ASCENDING).limit(limit).to_list()
        return [StoredInstance.from_doc(d) for d in docs]

    async def count_owned(self, owner: str) -> int:
        return int(await self.instances.count_documents({"owner": owner}))

    async def all(self, *, limit: int) -> list[StoredInstance]:
        docs = await self.instances.find({}).limit(limit).to_list()
        return [StoredInstance.from_doc(d) for d in docs]

    async def get(self, instance_id: str) -> StoredInstance | None:
        doc = await self.instances.find_one({"_id": instance_id})
        return StoredInstance.from_doc(doc) if doc else None

    async def save_all(self, instances: Sequence[StoredInstance]) -> None:
        """Create or replace every instance's config in one round trip; totals are kept."""
        requests = []
        for instance in instances:
            doc = instance.to_doc()
            totals = {k: doc.pop(k) for k in ("counts", "tokens", "latency", "last_error",
                                               "created_at")}
            doc.pop("_id")
            requests.append(UpdateOne({"_id": instance.instance_id},
                                      {"$set": doc, "$setOnInsert": totals}, upsert=True))
        if requests:
            await self.instances.bulk_write(requests, ordered=True)

    async def delete(self, instance_id: str) -> None:
        await self.instances.delete_one({"_id": instance_id})
        await self.queue.delete_many({"instance": instance_id})
        await self.conversations.delete_many({"instance": instance_id})

    async def add_totals(self, instance_id: str, *, counts: dict[str, int] | None = None,
                         tokens: dict[str, int] | None = None,
                         latency: dict[str, float] | None = None,
                         last_error: dict[str, Any] | None = None) -> None:
        inc: dict[str, float] = {}
        for prefix, values in (("counts", counts), ("tokens", tokens), ("latency", latency)):
            for key, value in (values or {}).items():
                inc[f"{prefix}.{key}"] = value
        update: dict[str, Any] = {}
        if inc:
            update["$inc"] = inc
        if last_error is not None:
            update["$set"] = {"last_error": last_error}
        if update:
            await self.instances.update_one({"_id": instance_id}, update)

    # ------------------------------------------------------------------ queues

    async def queue_of(self, instance_id: str, sender: str, *, limit: int) -> list[QueueEntry]:
        """A sender's queue, oldest first (at most ``limit`` newest entries)."""
        docs = await self.queue.find({"instance": instance_id, "sender": sender}).sort(
            "_id", DESCENDING).limit(limit).to_list()
        return [QueueEntry.from_doc(d) for d in reversed(docs)]

    async def senders_waiting(self, *, limit: int) -> list[tuple[str, str]]:
        """(instance, sender) pairs with an unanswered message: the work a restart resumes."""
        pairs: dict[tuple[str, str], None] = {}
        cursor = self.queue.find({"answered": False, "role": "user"},
                                 {"instance": 1, "sender": 1}).limit(limit)
        async for doc in cursor:
            pairs[(doc["instance"], doc["sender"])] = None
        return list(pairs)

    async def push(self, instance_id: str, sender: str, entry: QueueEntry) -> bool:
        """Store ``entry``; False if a message with its platform id is already queued."""
        doc: dict[str, Any] = {"_id": ObjectId(entry.entry_id), "instance": instance_id,
                               "sender": sender, "role": entry.role, "content": entry.content,
                               "at": entry.at, "answered": entry.answered}
        if entry.target:
            doc["target"] = entry.target
        if entry.platform_id:
            doc["platform_id"] = entry.platform_id
        try:
            await self.queue.insert_one(doc)
        except DuplicateKeyError:
            return False
        return True

    async def remove(self, entry_ids: Sequence[str]) -> None:
        if entry_ids:
            await self.queue.delete_many({"_id": {"$in": [ObjectId(e) for e in entry_ids]}})

    async def mark_answered(self, entry_id: str) -> None:
        await self.queue.update_one({"_id": ObjectId(entry_id)}, {"$set": {"answered": True}})

    # ----------------------------------------------------------- conversations

    async def record_call(self, instance_id: str, sender: str, *, prompt_tokens: int,
                          completion_tokens: int, latency: float, at: datetime) -> None:
        await self.conversations.update_one(
            {"_id": f"{instance_id}|{sender}"},
            {"$inc": {"calls": 1, "prompt_tokens": prompt_tokens,
                      "completion_tokens": completion_tokens, "latency_secs": latency},
             "$set": {"instance": instance_id, "sender": sender, "last_at": at}},
            upsert=True)

    async def set_handoff(self, instance_id: str, sender: str,
                          conversation_id: str | None) -> None:
        """Record that the sender talks to an agent in ``conversation_id`` (None: the bot again)."""
        await self.conversations.update_one(
            {"_id": f"{instance_id}|{sender}"},
            {"$set": {"instance": instance_id, "sender": sender,
                      "handoff": conversation_id}}, upsert=True)

    async def handoff_of(self, instance_id: str, sender: str) -> str | None:
        doc = await self.conversations.find_one({"_id": f"{instance_id}|{sender}"},
                                                {"handoff": 1})
        value = (doc or {}).get("handoff")
        return value if isinstance(value, str) else None

    async def conversations_of(self, instance_id: str, *, limit: int) -> list[dict[str, Any]]:
        docs = await self.conversations.find({"instance": instance_id}).sort(
            "last_at", DESCENDING).limit(limit).to_list()
        return docs
