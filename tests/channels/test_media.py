"""The checks every attachment download passes (whatsease/channels/media.py), and the store's
copy of one as large as the default limit."""

from __future__ import annotations

import pytest

from tests.channels.conftest import channels, run
from tests.support import ServerThread
from whatsease.channels.media import (
    MediaUnavailable,
    checked_file,
    safe_id,
    same_origin,
    strict_policy,
)
from whatsease.net.outbound import OutboundPolicy, Response
from whatsease.timeutil import utcnow

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def test_a_typed_image_with_its_magic_passes() -> None:
    file = checked_file(Response(200, PNG, "image/png; charset=binary"), max_bytes=1024)
    assert file.content_type == "image/png" and file.is_image


def test_an_untyped_answer_takes_the_announced_type_or_the_extension() -> None:
    untyped = Response(200, b"%PDF-1.4", "application/octet-stream")
    assert checked_file(untyped, declared="application/pdf",
                        max_bytes=1024).content_type == "application/pdf"
    assert checked_file(untyped, filename="invoice.pdf",
                        max_bytes=1024).content_type == "application/pdf"


@pytest.mark.parametrize(("response", "reason"), [
    (Response(200, b"<html>", "text/html"), "not shown"),
    (Response(200, b"<svg/>", "image/svg+xml"), "not shown"),
    (Response(200, b"<svg onload=x>", "image/png"), "not the image/png"),
    (Response(200, b"", "image/png"), "empty"),
    (Response(200, PNG * 40, "image/png"), "larger than"),
    (Response(200, b"data", "application/octet-stream"), "not shown"),
])
def test_what_is_not_shown(response: Response, reason: str) -> None:
    with pytest.raises(MediaUnavailable) as caught:
        checked_file(response, max_bytes=1024)
    assert reason in caught.value.reason and caught.value.final


def test_only_the_configured_host_is_the_same_origin() -> None:
    graph = "https://graph.facebook.com/v23.0"
    assert same_origin("https://graph.facebook.com/v23.0/123", graph)
    assert not same_origin("https://lookaside.fbsbx.com/whatsapp_business/x", graph)
    assert not same_origin("http://graph.facebook.com/v23.0/123", graph)
    assert not same_origin("https://graph.facebook.com:8443/x", graph)
    assert not same_origin("https://graph.facebook.com.evil.example/x", graph)


def test_a_url_we_did_not_configure_gets_no_private_addresses() -> None:
    lenient = OutboundPolicy(allow_private=True)
    assert not strict_policy(lenient, 1000).allow_private
    assert strict_policy(lenient, 1000).max_response_bytes == 1000


@pytest.mark.parametrize("media_id", ["../messages", "1/2", "a?b", "", "x" * 300])
def test_a_media_id_cannot_change_the_path(media_id: str) -> None:
    with pytest.raises(MediaUnavailable):
        safe_id(media_id)
    assert safe_id("1003383421387256") == "1003383421387256"


def test_a_copy_as_large_as_the_default_limit_is_kept(channel_server: ServerThread) -> None:
    store = channels(channel_server).store
    message_id = "0" * 12 + "feedfacecafe"
    big = b"\xff\xd8\xff" + bytes(5 * 1024 * 1024 - 3)
    run(channel_server, store.add_media(message_id, conversation_id="c" * 24, slug="whatsapp",
                                        contact="wa:+15550001", media={"media_id": "1"},
                                        at=utcnow()))
    run(channel_server, store.set_media_file(message_id, big, "image/jpeg", "", utcnow()))
    stored = run(channel_server, store.media_file(message_id))
    assert stored is not None and stored["file"] == big
    record = run(channel_server, store.media_of(message_id))
    assert record is not None and "file" not in record and record["size"] == len(big)
