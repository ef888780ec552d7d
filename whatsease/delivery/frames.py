"""Every server → client frame, one typed constructor each, encoded once as JSON text bytes.

Services and sockets never spell a frame's shape themselves: they call one of
these, and the same bytes go to every socket (`Hub.send`). ``type`` comes
first, so a frame's type can be read off its bytes (metrics).
"""

from __future__ import annotations

from typing import Any

import orjson

# Close codes (RFC 6455 §7.4.2 leaves 4000–4999 to applications).
WS_1000_NORMAL = 1000
WS_1008_POLICY_VIOLATION = 1008
WS_1011_INTERNAL_ERROR = 1011
WS_1012_SERVICE_RESTART = 1012
# The database is unreachable: reconnect after a pause, then sync.
WS_1013_TRY_AGAIN_LATER = 1013
WS_4001_UNAUTHENTICATED = 4001
WS_4003_FORBIDDEN_ORIGIN = 4003
WS_4008_TOO_SLOW = 4008
# The user opened more sockets than WHATSEASE_WS_MAX_SOCKETS_PER_USER: the oldest is closed.
WS_4009_TOO_MANY_SOCKETS = 4009
WS_4029_RATE_LIMITED = 4029

# A JSON object as produced by the stored types' ``to_json`` methods.
Json = dict[str, Any]


def encode(frame_type: str, **fields: object) -> bytes:
    """One frame as UTF-8 JSON bytes; the constructors below are the only callers."""
    return orjson.dumps({"type": frame_type, **fields})


# --- every socket ------------------------------------------------------------------------------


def pong(ref: str | None) -> bytes:
    return encode("pong", ref=ref)


def error_frame(code: str, detail: str, *, ref: str | None = None, client_id: str | None = None,
                errors: list[dict[str, str]] | None = None) -> bytes:
    """An ``error`` frame: ``code`` and ``detail``, and the refused frame's ``ref`` (always sent,
    null when unknown) and ``client_id`` (only when known)."""
    fields: dict[str, object] = {"code": code, "detail": detail, "ref": ref}
    if client_id is not None:
        fields["client_id"] = client_id
    if errors:
        fields["errors"] = errors
    return encode("error", **fields)


def ack(client_id: str | None, message: Json, *, conversation_id: str | None = None) -> bytes:
    """A sent message is stored: the client swaps its pending copy for ``message``."""
    if conversation_id is None:
        return encode("ack", client_id=client_id, message=message)
    return encode("ack", client_id=client_id, conversation_id=conversation_id, message=message)


def message(message: Json, *, conversation_id: str | None = None) -> bytes:
    """A new or changed message (a console's frames also name the support conversation)."""
    if conversation_id is None:
        return encode("message", message=message)
    return encode("message", conversation_id=conversation_id, message=message)


# --- the messenger (/ws) -------------------------------------------------------------------------


def chat_ready(user: str, server_time: str) -> bytes:
    return encode("ready", user=user, server_time=server_time)


def chat_typing(sender: str, state: bool) -> bytes:
    return encode("typing", sender=sender, state=state)


def synced(messages: list[Json], *, more: bool, cursor: str | None, ref: str | None) -> bytes:
    return encode("synced", messages=messages, more=more, cursor=cursor, ref=ref)


def status(message_id: str, status: str, conversation_id: str) -> bytes:
    return encode("status", message_id=message_id, status=status,
                  conversation_id=conversation_id)


def presence(user: str, online: bool, last_seen: str) -> bytes:
    return encode("presence", user=user, online=online, last_seen=last_seen)


def activity(entry: Json) -> bytes:
    return encode("activity", entry=entry)


def profile(user: str, name: str) -> bytes:
    """``user`` changed their display name to ``name``."""
    return encode("profile", user=user, name=name)


# --- support: the widget (/widget/ws) and the agent console (/support/ws) ---------------------


def widget_ready(session: Json, messages: list[Json], *, more: bool, config: Json,
                 server_time: str) -> bytes:
    return encode("ready", session=session, messages=messages, more=more, config=config,
                  server_time=server_time)


def widget_typing(who: str, name: str, state: bool) -> bytes:
    """Someone answering the customer (``who``: bot or agent) is typing."""
    return encode("typing", who=who, name=name, state=state)


def session(session: Json, detail: str) -> bytes:
    """The customer's conversation changed (ended): ``detail`` says what to do next."""
    return encode("session", session=session, detail=detail)


def agent_joined(session: Json) -> bytes:
    """An agent answers the customer now: ``session`` carries their ``agent_name``."""
    return encode("session", session=session)


def console_ready(me: Json, snapshot: Json) -> bytes:
    return encode("ready", me=me, **snapshot)


def console_typing(conversation_id: str, who: str, name: str, state: bool) -> bytes:
    return encode("typing", conversation_id=conversation_id, who=who, name=name, state=state)


def channel_update(conversation_id: str, media: list[Json], deliveries: list[Json]) -> bytes:
    """A channel conversation's attachments or failed deliveries changed (agent console)."""
    return encode("channel", conversation_id=conversation_id, media=media,
                  deliveries=deliveries)


def conversation(conversation: Json) -> bytes:
    return encode("conversation", conversation=conversation)


def agents(agents: list[Json]) -> bytes:
    return encode("agents", agents=agents)
