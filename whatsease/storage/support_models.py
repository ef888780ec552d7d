"""Support's stored types: organisations, their settings, conversations and their messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bson import ObjectId

from whatsease.timeutil import isoformat

ROUTINGS = ("bot", "agent")
ASSIGNMENTS = ("least_busy", "random")
CHATBOT_KINDS = ("builtin", "external")
# What a conversation's routing follows: the org's setting, or a per-conversation
# decision (the customer asked for a person, an agent took over or handed back).
MODES = ("auto", "agent", "bot")
# Who answers the customer right now.
HANDLERS = ("bot", "agent", "queued")
STATUSES = ("active", "ended")
END_REASONS = ("timeout", "closed", "customer", "removed")
MESSAGE_KINDS = ("customer", "bot", "agent", "system")
AGENT_ROLES = ("agent", "admin")

DEFAULT_SESSION_TIMEOUT_SECS = 300
DEFAULT_GREETING = "Hi! How can we help you today?"
# Dark enough that white text on it passes WCAG AA (contrast 5.4:1).
DEFAULT_BRAND_COLOR = "#0b6e4f"
# How much of an external chatbot token the API shows: enough to recognise it.
TOKEN_HINT_CHARS = 4


@dataclass
class ChatbotSettings:
    """Which chatbot answers with routing ``bot``: the built-in engine or an external endpoint."""

    kind: str = "builtin"
    # TOML intent catalogue for the built-in engine; empty means the default support one.
    catalogue: str = ""
    url: str = ""
    token: str = ""
    model: str = ""

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> ChatbotSettings:
        doc = doc or {}
        return cls(kind=doc.get("kind", "builtin"), catalogue=doc.get("catalogue", ""),
                   url=doc.get("url", ""), token=doc.get("token", ""),
                   model=doc.get("model", ""))

    def to_doc(self) -> dict[str, Any]:
        return {"kind": self.kind, "catalogue": self.catalogue, "url": self.url,
                "token": self.token, "model": self.model}

    def to_json(self) -> dict[str, Any]:
        """The settings as the API shows them: the token never in full."""
        hint = None
        if self.token:
            hint = ("…" + self.token[-TOKEN_HINT_CHARS:]
                    if len(self.token) > 2 * TOKEN_HINT_CHARS else "…")
        return {"kind": self.kind, "catalogue": self.catalogue, "url": self.url,
                "model": self.model, "token_set": bool(self.token), "token_hint": hint}


@dataclass
class OrgSettings:
    routing: str = "bot"
    assignment: str = "least_busy"
    chatbot: ChatbotSettings = field(default_factory=ChatbotSettings)
    session_timeout: int = DEFAULT_SESSION_TIMEOUT_SECS
    greeting: str = DEFAULT_GREETING
    brand_color: str = DEFAULT_BRAND_COLOR
    allowed_origins: list[str] = field(default_factory=list)

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> OrgSettings:
        doc = doc or {}
        return cls(routing=doc.get("routing", "bot"),
                   assignment=doc.get("assignment", "least_busy"),
                   chatbot=ChatbotSettings.from_doc(doc.get("chatbot")),
                   session_timeout=int(doc.get("session_timeout",
                                               DEFAULT_SESSION_TIMEOUT_SECS)),
                   greeting=doc.get("greeting", DEFAULT_GREETING),
                   brand_color=doc.get("brand_color", DEFAULT_BRAND_COLOR),
                   allowed_origins=list(doc.get("allowed_origins", [])))

    def to_doc(self) -> dict[str, Any]:
        return {"routing": self.routing, "assignment": self.assignment,
                "chatbot": self.chatbot.to_doc(), "session_timeout": self.session_timeout,
                "greeting": self.greeting, "brand_color": self.brand_color,
                "allowed_origins": list(self.allowed_origins)}

    def to_json(self) -> dict[str, Any]:
        body = self.to_doc()
        body["chatbot"] = self.chatbot.to_json()
        return body


@dataclass
class Org:
    org_id: str
    name: str
    widget_key: str
    settings: OrgSettings = field(default_factory=OrgSettings)
    created_at: datetime | None = None
    # The agent picked last: round-robin among equally loaded agents starts after it.
    last_assigned: str | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Org:
        return cls(org_id=doc["_id"], name=doc["name"], widget_key=doc["widget_key"],
                   settings=OrgSettings.from_doc(doc.get("settings")),
                   created_at=doc.get("created_at"), last_assigned=doc.get("last_assigned"))

    def to_doc(self) -> dict[str, Any]:
        return {"_id": self.org_id, "name": self.name, "widget_key": self.widget_key,
                "settings": self.settings.to_doc(), "created_at": self.created_at,
                "last_assigned": self.last_assigned}

    def to_json(self, *, settings: bool = True) -> dict[str, Any]:
        """The org for its admins (``settings``) or its agents (name and key only)."""
        body: dict[str, Any] = {
            "id": self.org_id, "name": self.name, "widget_key": self.widget_key,
            "created_at": isoformat(self.created_at) if self.created_at else None}
        if settings:
            body["settings"] = self.settings.to_json()
        else:
            body["routing"] = self.settings.routing
        return body

    def widget_config(self) -> dict[str, Any]:
        """What the public widget needs: no secrets, nothing about agents."""
        return {"name": self.name, "greeting": self.settings.greeting,
                "brand_color": self.settings.brand_color,
                "session_timeout": self.settings.session_timeout}


@dataclass
class SupportConversation:
    """One customer's widget session: the conversation and who is answering it."""

    conversation_id: str
    org: str
    customer_name: str
    customer_email: str
    token_hash: str
    created_at: datetime
    last_message_at: datetime
    expires_at: datetime
    status: str = "active"
    handler: str = "bot"
    mode: str = "auto"
    agent: str | None = None
    ended_at: datetime | None = None
    end_reason: str | None = None
    assigned_at: datetime | None = None
    # When the customer first needed a person, and when one first answered.
    agent_requested_at: datetime | None = None
    first_response_at: datetime | None = None
    first_response_secs: float | None = None
    first_responder: str | None = None
    unread: int = 0
    message_count: int = 0
    last_message: dict[str, Any] | None = None
    bot_state: dict[str, Any] = field(default_factory=dict)
    # Agents the conversation has had, in order, for the console's history.
    agents: list[str] = field(default_factory=list)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> SupportConversation:
        return cls(conversation_id=str(doc["_id"]), org=doc["org"],
                   customer_name=doc["customer_name"], customer_email=doc["customer_email"],
                   token_hash=doc.get("token_hash", ""), created_at=doc["created_at"],
                   last_message_at=doc["last_message_at"], expires_at=doc["expires_at"],
                   status=doc.get("status", "active"), handler=doc.get("handler", "bot"),
                   mode=doc.get("mode", "auto"), agent=doc.get("agent"),
                   ended_at=doc.get("ended_at"), end_reason=doc.get("end_reason"),
                   assigned_at=doc.get("assigned_at"),
                   agent_requested_at=doc.get("agent_requested_at"),
                   first_response_at=doc.get("first_response_at"),
                   first_response_secs=doc.get("first_response_secs"),
                   first_responder=doc.get("first_responder"),
                   unread=int(doc.get("unread", 0)),
                   message_count=int(doc.get("message_count", 0)),
                   last_message=doc.get("last_message"),
                   bot_state=doc.get("bot_state") or {}, agents=list(doc.get("agents", [])))

    def to_doc(self) -> dict[str, Any]:
        return {"_id": ObjectId(self.conversation_id), "org": self.org,
                "customer_name": self.customer_name, "customer_email": self.customer_email,
                "token_hash": self.token_hash, "created_at": self.created_at,
                "last_message_at": self.last_message_at, "expires_at": self.expires_at,
                "status": self.status, "handler": self.handler, "mode": self.mode,
                "agent": self.agent, "ended_at": self.ended_at, "end_reason": self.end_reason,
                "assigned_at": self.assigned_at, "agent_requested_at": self.agent_requested_at,
                "first_response_at": self.first_response_at,
                "first_response_secs": self.first_response_secs,
                "first_responder": self.first_responder, "unread": self.unread,
                "message_count": self.message_count, "last_message": self.last_message,
                "bot_state": self.bot_state, "agents": self.agents}

    @property
    def active(self) -> bool:
        return self.status == "active"

    def to_customer_json(self) -> dict[str, Any]:
        """What the customer's own widget sees: no agent emails, no internals."""
        return {"id": self.conversation_id, "status": self.status, "handler": self.handler,
                "customer": {"name": self.customer_name, "email": self.customer_email},
                "created_at": isoformat(self.created_at),
                "last_message_at": isoformat(self.last_message_at),
                "expires_at": isoformat(self.expires_at),
                "ended_at": isoformat(self.ended_at) if self.ended_at else None,
                "end_reason": self.end_reason}

    def to_agent_json(self) -> dict[str, Any]:
        """What the org's agents and admins see in the console."""
        body = self.to_customer_json()
        body.update({
            "org": self.org, "mode": self.mode, "agent": self.agent,
            "assigned_at": isoformat(self.assigned_at) if self.assigned_at else None,
            "agent_requested_at": (isoformat(self.agent_requested_at)
                                   if self.agent_requested_at else None),
            "first_response_secs": self.first_response_secs,
            "unread": self.unread, "message_count": self.message_count,
            "last_message": self.last_message, "agents": self.agents})
        return body


@dataclass
class SupportMessage:
    """One message of a support conversation, in the messenger's field names plus its kind."""

    message_id: str
    conversation_id: str
    org: str
    kind: str
    sender: str
    sender_name: str
    recipient: str
    content: str
    timestamp: datetime
    client_id: str | None = None
    # A customer's message: the language the bot last spoke with them, if known
    # (what analytics counts it under).
    language: str | None = None

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> SupportMessage:
        return cls(message_id=str(doc["_id"]), conversation_id=str(doc["conversation_id"]),
                   org=doc["org"], kind=doc["kind"], sender=doc["sender"],
                   sender_name=doc.get("sender_name", ""), recipient=doc["recipient"],
                   content=doc["content"], timestamp=doc["timestamp"],
                   client_id=doc.get("client_id"), language=doc.get("language"))

    def to_doc(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "_id": ObjectId(self.message_id), "conversation_id": self.conversation_id,
            "org": self.org, "kind": self.kind, "sender": self.sender,
            "sender_name": self.sender_name, "recipient": self.recipient,
            "content": self.content, "timestamp": self.timestamp}
        if self.client_id is not None:
            doc["client_id"] = self.client_id
        if self.language is not None:
            doc["language"] = self.language
        return doc

    def to_json(self, *, for_customer: bool = False) -> dict[str, Any]:
        body: dict[str, Any] = {
            "message_id": self.message_id, "conversation_id": self.conversation_id,
            "kind": self.kind, "sender": self.sender, "sender_name": self.sender_name,
            "recipient": self.recipient, "content": self.content,
            "timestamp": isoformat(self.timestamp), "status": "Sent",
            "is_bot_response": self.kind == "bot", "client_id": self.client_id}
        if for_customer and self.kind == "agent":
            # Customers see the agent's name, not their work email.
            body["sender"] = "agent"
        return body

    def summary(self) -> dict[str, Any]:
        """The conversation list's preview of its newest message."""
        return {"kind": self.kind, "sender_name": self.sender_name,
                "content": self.content[:140], "timestamp": isoformat(self.timestamp)}
