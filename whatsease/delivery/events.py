"""Typed events a service publishes instead of building a frame; `encode` turns each into one.

A service says *what happened* (``MessageEvent``, ``StatusEvent``) and to whom
(`Hub.publish`); the frame's shape stays in `frames`, and the event is encoded
once however many sockets receive it.
"""

from __future__ import annotations

from dataclasses import dataclass

from whatsease.delivery import frames
from whatsease.delivery.frames import Json


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A message was sent, edited or deleted; ``message`` is its wire JSON."""

    message: Json
    # Set on an agent console's copy, which names the support conversation.
    conversation_id: str | None = None


@dataclass(frozen=True, slots=True)
class StatusEvent:
    """A message's status moved forward (Delivered, Read)."""

    message_id: str
    status: str
    conversation_id: str


Event = MessageEvent | StatusEvent


def encode(event: Event) -> bytes:
    """The one frame for ``event`` (UTF-8 JSON bytes)."""
    if isinstance(event, MessageEvent):
        return frames.message(event.message, conversation_id=event.conversation_id)
    return frames.status(event.message_id, event.status, event.conversation_id)
