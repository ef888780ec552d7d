"""Typed events: each encodes to its frame, once; `Hub.publish` honours each target's exclude."""

from __future__ import annotations

import orjson

from tests.delivery.test_hub import Socket
from whatsease.delivery import events, frames
from whatsease.delivery.events import MessageEvent, StatusEvent
from whatsease.delivery.hub import Hub


def test_events_encode_to_the_frames_of_their_constructors() -> None:
    message = {"message_id": "m1", "content": "hi"}
    assert events.encode(MessageEvent(message)) == frames.message(message)
    assert orjson.loads(events.encode(MessageEvent(message, conversation_id="c1"))) == {
        "type": "message", "conversation_id": "c1", "message": message}
    assert orjson.loads(events.encode(StatusEvent("m1", "Read", "c1"))) == {
        "type": "status", "message_id": "m1", "status": "Read", "conversation_id": "c1"}


def test_publish_sends_the_same_bytes_to_each_target_but_the_excluded_socket() -> None:
    hub = Hub()
    alice, bob_tab1, bob_tab2 = Socket("alice"), Socket("bob"), Socket("bob")
    for socket in (alice, bob_tab1, bob_tab2):
        hub.add(socket)
    sent = hub.publish(StatusEvent("m1", "Read", "c1"), ("alice", None), ("bob", bob_tab1),
                       ("nobody", None))
    assert sent == 2
    assert not bob_tab1.frames
    assert alice.frames == bob_tab2.frames
    assert alice.frames[0] is bob_tab2.frames[0]  # encoded once
    assert orjson.loads(alice.frames[0])["type"] == "status"
