"""Client-frame parsing: every frame type, and each refusal naming its field or limit."""

from __future__ import annotations

import orjson
import pytest

from whatsease.delivery.frames import encode
from whatsease.errors import AppError
from whatsease.realtime.protocol import MAX_FRAME_BYTES, MAX_RECEIPT_IDS, parse, peek_ref
from whatsease.realtime.service import frame_type

MID = "6b0270a51dd97261bb928203"


def test_every_frame_type_parses() -> None:
    assert parse('{"type":"auth","token":"t"}').token == "t"
    send = parse(orjson.dumps({"type": "send", "client_id": "c1", "recipient": " B@Example.com ",
                               "content": "  hi  "}))
    assert (send.client_id, send.recipient, send.content, send.ref) == (
        "c1", "b@example.com", "hi", "c1")
    receipt = parse(orjson.dumps({"type": "read", "message_ids": [MID, MID.upper(), MID]}))
    assert receipt.message_ids == (MID,)
    assert parse(orjson.dumps({"type": "delivered", "message_ids": [MID]})).type == "delivered"
    typing = parse(orjson.dumps({"type": "typing", "recipient": "bot:whatsease", "state": True}))
    assert (typing.recipient, typing.state) == ("bot:whatsease", True)
    assert parse('{"type":"sync"}').after is None
    assert parse(orjson.dumps({"type": "sync", "after": MID, "ref": "s1"})).ref == "s1"
    assert parse('{"type":"ping"}').type == "ping"


@pytest.mark.parametrize("cursor", [
    MID, f"{MID}.{MID}", f"~{MID}.{MID}", f"{MID}.{MID}~{MID}.{MID}", f"{MID}~{MID}"])
def test_sync_takes_every_cursor_the_server_hands_out(cursor: str) -> None:
    assert parse(orjson.dumps({"type": "sync", "after": cursor.upper()})).after == cursor


@pytest.mark.parametrize("cursor", [
    "~", f"{MID}~", f"{MID}.", f"~{MID}~{MID}", f"{MID}.{MID}.{MID}", f"{MID}~~{MID}", 7])
def test_sync_refuses_a_malformed_cursor(cursor: object) -> None:
    with pytest.raises(AppError, match="after"):
        parse(orjson.dumps({"type": "sync", "after": cursor}))


@pytest.mark.parametrize(("raw", "code", "named"), [
    (b"\xff\xfe", "malformed_json", "JSON"),
    ('"just a string"', "malformed_json", "a string"),
    ('{"type": 7}', "unknown_type", "7"),
    ('{"type": "sync", "after": "zz"}', "invalid", "after"),
    ('{"type": "auth"}', "invalid", "token"),
    ('{"type": "auth", "token": ""}', "invalid", "token"),
    ('{"type": "send", "client_id": "has space", "recipient": "a@b.co", "content": "x"}',
     "invalid", "client_id"),
    ('{"type": "send", "client_id": "c", "recipient": "a@b.co", "content": 5}',
     "invalid", "content"),
    ('{"type": "typing", "recipient": "a@b.co"}', "invalid", "state"),
    ('{"type": "ping", "extra": 1}', "invalid", "extra"),
])
def test_refusals_name_the_problem(raw: str | bytes, code: str, named: str) -> None:
    with pytest.raises(AppError) as caught:
        parse(raw)
    assert caught.value.code == code
    assert named in caught.value.detail


def test_content_and_receipt_limits() -> None:
    with pytest.raises(AppError, match="4096"):
        parse(orjson.dumps({"type": "send", "client_id": "c", "recipient": "a@b.co",
                            "content": "x" * 4097}))
    with pytest.raises(AppError, match=str(MAX_RECEIPT_IDS)):
        parse(orjson.dumps({"type": "read", "message_ids": [MID] * (MAX_RECEIPT_IDS + 1)}))
    with pytest.raises(AppError, match=str(MAX_FRAME_BYTES)) as caught:
        parse(b'{"type":"ping","pad":"' + b"x" * MAX_FRAME_BYTES + b'"}')
    assert caught.value.code == "frame_too_large"


def test_peek_ref_finds_the_clients_reference() -> None:
    assert peek_ref('{"type":"send","client_id":"c9"}') == "c9"
    assert peek_ref('{"type":"x","ref":"r1","client_id":"c9"}') == "r1"
    assert peek_ref("{broken") is None


def test_server_frames_put_type_first() -> None:
    data = encode("status", message_id=MID, status="Read")
    assert data.startswith(b'{"type":"status"')
    assert frame_type(data) == "status"
    assert frame_type(b"[]") == "other"
