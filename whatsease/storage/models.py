"""Stored types and their one conversion to and from MongoDB documents and JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bson import ObjectId

from whatsease.timeutil import isoformat

STATUSES = ("Sent", "Delivered", "Read")
STATUS_RANK = {status: rank for rank, status in enumerate(STATUSES)}
ROLES = ("user", "agent", "admin")
BOT_PREFIX = "bot:"


def new_id() -> str:
    """A new time-ordered id (an ObjectId string)."""
    return str(ObjectId())


def id_at(seconds: float) -> str:
    """The lowest id of the second ``seconds`` (Unix time) is in: below every id made then or later.

    Only the first four bytes of an ObjectId tell time (whole seconds); the
    rest are per process, so this is the one bound that holds across processes.
    """
    return f"{max(0, int(seconds)):08x}{'0' * 16}"


def id_seconds(value: str) -> int:
    """The Unix second an id (or ``rev``) was made in, as told by its first four bytes."""
    return int(value[:8], 16)


def is_object_id(value: str) -> bool:
    return ObjectId.is_valid(value) and len(value) == 24


def conversation_id(a: str, b: str) -> str:
    """The id of the one conversation between two participants, in either order."""
    first, second = sorted((a, b))
    return f"{first} {second}"


def is_bot(address: str) -> bool:
    return address.startswith(BOT_PREFIX)


@dataclass
class User:
    email: str
    name: str
    password_hash: str = ""
    role: str = "user"
    org: str | None = None
    created_at: datetime | None = None
    last_seen: datetime | None = None
    # The email's look-alike skeleton (auth/identity.py), unique among users.
    skeleton: str | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> User:
        return cls(email=doc["_id"], name=doc["name"], password_hash=doc.get("password_hash", ""),
                   role=doc.get("role", "user"), org=doc.get("org"),
                   created_at=doc.get("created_at"), last_seen=doc.get("last_seen"),
                   skeleton=doc.get("skeleton"))

    def to_doc(self) -> dict[str, Any]:
        doc = {"_id": self.email, "name": self.name, "name_lower": self.name.lower(),
               "password_hash": self.password_hash, "role": self.role, "org": self.org,
               "created_at": self.created_at, "last_seen": self.last_seen}
        if self.skeleton is not None:
            doc["skeleton"] = self.skeleton
        return doc

    def to_public(self) -> dict[str, Any]:
        """What any signed-in user may see of this one."""
        return {"email": self.email, "name": self.name, "role": self.role,
                "last_seen": isoformat(self.last_seen) if self.last_seen else None}

    def to_private(self) -> dict[str, Any]:
        """What the user sees of themselves."""
        body = self.to_public()
        body["org"] = self.org
        body["created_at"] = isoformat(self.created_at) if self.created_at else None
        return body


@dataclass
class Session:
    session_id: str
    user: str
    refresh_hash: str
    created_at: datetime
    last_used: datetime
    expires_at: datetime
    user_agent: str = ""
    ip: str = ""
    revoked: bool = False

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Session:
        return cls(session_id=str(doc["_id"]), user=doc["user"], refresh_hash=doc["refresh_hash"],
                   created_at=doc["created_at"], last_used=doc["last_used"],
                   expires_at=doc["expires_at"], user_agent=doc.get("user_agent", ""),
                   ip=doc.get("ip", ""), revoked=doc.get("revoked", False))

    def to_doc(self) -> dict[str, Any]:
        return {"_id": ObjectId(self.session_id), "user": self.user,
                "refresh_hash": self.refresh_hash, "old_hashes": [],
                "created_at": self.created_at, "last_used": self.last_used,
                "expires_at": self.expires_at, "user_agent": self.user_agent, "ip": self.ip,
                "revoked": self.revoked}

    def to_json(self, current_sid: str | None = None) -> dict[str, Any]:
        return {"id": self.session_id, "created_at": isoformat(self.created_at),
                "last_used": isoformat(self.last_used), "expires_at": isoformat(self.expires_at),
                "user_agent": self.user_agent, "current": self.session_id == current_sid}


@dataclass
class Message:
    message_id: str
    sender: str
    recipient: str
    content: str
    timestamp: datetime
    status: str = "Sent"
    is_bot_response: bool = False
    conversation_id: str = ""
    client_id: str | None = None
    edited_at: datetime | None = None
    deleted: bool = False
    rev: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    # Whether a receipt document was read with it (storage/messages.py); not stored.
    has_receipt: bool = field(default=False, compare=False, repr=False)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Message:
        return cls(message_id=str(doc["_id"]), sender=doc["sender"], recipient=doc["recipient"],
                   content=doc["content"], timestamp=doc["timestamp"], status=doc["status"],
                   is_bot_response=doc.get("is_bot_response", False),
                   conversation_id=doc.get("conversation_id", ""),
                   client_id=doc.get("client_id"), edited_at=doc.get("edited_at"),
                   deleted=doc.get("deleted", False), rev=str(doc.get("rev", doc["_id"])),
                   extra=doc.get("extra") or {})

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "_id": ObjectId(self.message_id), "sender": self.sender,
            "recipient": self.recipient, "content": self.content,
            "timestamp": self.timestamp, "status": self.status,
            "is_bot_response": self.is_bot_response,
            "conversation_id": self.conversation_id or conversation_id(self.sender,
                                                                       self.recipient),
            "members": sorted({self.sender, self.recipient}),
            "rev": ObjectId(self.rev or self.message_id),
            "deleted": self.deleted,
        }
        if self.client_id is not None:
            doc["client_id"] = self.client_id
        if self.edited_at is not None:
            doc["edited_at"] = self.edited_at
        if self.extra:
            doc["extra"] = self.extra
        return doc

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_id": self.message_id, "sender": self.sender, "recipient": self.recipient,
            "content": self.content, "timestamp": isoformat(self.timestamp),
            "status": self.status, "is_bot_response": self.is_bot_response,
            "conversation_id": self.conversation_id, "client_id": self.client_id,
            "edited_at": isoformat(self.edited_at) if self.edited_at else None,
            "deleted": self.deleted,
        }
        if self.extra:
            body["extra"] = self.extra
        return body


@dataclass
class Conversation:
    conversation_id: str
    members: list[str]
    unread: list[int]
    updated_at: datetime
    last_message: dict[str, Any] | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Conversation:
        # ``unread`` is stored as {"0": n, "1": m}, aligned with the sorted members:
        # an upsert's $inc on "unread.1" creates keys, not array slots.
        counts = doc.get("unread") or {}
        unread = [int(counts.get("0", 0)), int(counts.get("1", 0))]
        return cls(conversation_id=doc["_id"], members=list(doc["members"]),
                   unread=unread, updated_at=doc["updated_at"],
                   last_message=doc.get("last_message"))

    def peer_of(self, user: str) -> str:
        first, second = self.members
        return second if first == user else first

    def unread_for(self, user: str) -> int:
        return max(0, self.unread[self.members.index(user)]) if user in self.members else 0


@dataclass
class ActivityEntry:
    kind: str
    actor: str
    text: str
    time: datetime
    target: str | None = None
    message_id: str | None = None
    audience: list[str] = field(default_factory=list)
    entry_id: str = field(default_factory=new_id)
    data: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> ActivityEntry:
        return cls(kind=doc["kind"], actor=doc["actor"], text=doc["text"], time=doc["time"],
                   target=doc.get("target"), message_id=doc.get("message_id"),
                   audience=list(doc.get("audience", [])), entry_id=str(doc["_id"]),
                   data=doc.get("data") or {})

    def to_doc(self) -> dict[str, Any]:
        return {"_id": ObjectId(self.entry_id), "kind": self.kind, "actor": self.actor,
                "target": self.target, "message_id": self.message_id, "text": self.text,
                "time": self.time, "audience": self.audience, "data": self.data}

    def to_json(self) -> dict[str, Any]:
        return {"id": self.entry_id, "kind": self.kind, "actor": self.actor,
                "target": self.target, "message_id": self.message_id, "text": self.text,
                "time": isoformat(self.time), "data": self.data}
