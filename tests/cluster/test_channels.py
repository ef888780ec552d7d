"""A WhatsApp contact in a cluster: the webhook lands on one member, the contact is homed on
another; the assistant's answer still reaches the platform (relayed to the member that
holds the contact's channel connection)."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.channels import payloads
from tests.cluster.conftest import FAST
from tests.fakes.platforms import FakeGraphAPI, Recorded
from tests.support import Client
from whatsease.cluster.local import LocalCluster
from whatsease.cluster.ring import Ring
from whatsease.cluster.routing import user_route

APP_SECRET = "meta-app-secret-" + secrets.token_hex(8)


@pytest.fixture(scope="module")
def graph() -> Iterator[FakeGraphAPI]:
    fake = FakeGraphAPI().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def pair(mongo_uri: str, graph: FakeGraphAPI,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    env = {**FAST, "WHATSEASE_OUTBOUND_ALLOW_PRIVATE": "true",
           "WHATSEASE_WHATSAPP_APP_SECRET": APP_SECRET,
           "WHATSEASE_WHATSAPP_VERIFY_TOKEN": "verify-" + secrets.token_hex(8),
           "WHATSEASE_WHATSAPP_TOKEN": "EAAG" + secrets.token_hex(20),
           "WHATSEASE_WHATSAPP_PHONE_NUMBER_ID": payloads.PHONE_NUMBER_ID,
           "WHATSEASE_WHATSAPP_GRAPH_URL": graph.graph_url}
    root = tmp_path_factory.mktemp("channels-cluster")
    with LocalCluster(Path(root), 2, mongodb_uri=mongo_uri, db_name=f"c{secrets.token_hex(5)}",
                      bcrypt_rounds=4, env=env) as running:
        yield running


def _homed_on(ring: Ring, member: str) -> str:
    """A fresh WhatsApp number whose contact address is homed on ``member``."""
    for _ in range(200):
        number = payloads.new_number()
        if ring.owner(user_route(f"wa:+{number}")) == member:
            return number
    raise AssertionError(f"no number homed on {member} in 200 tries")


def test_the_bot_answers_a_contact_homed_on_another_member(pair: LocalCluster,
                                                           graph: FakeGraphAPI) -> None:
    ring = Ring(pair.ids)
    number = _homed_on(ring, "i2")
    body = payloads.body_of(payloads.envelope(
        payloads.inbound(number, payloads.text(number, "what do the ticks mean"))))
    res = Client(pair.ports["i1"]).request(
        "POST", "/channels/whatsapp/webhook", body=body,
        headers={"Content-Type": "application/json",
                 "X-Hub-Signature-256": payloads.sign(APP_SECRET, body)})
    assert res.status == 200, res.body

    def reply_to_contact(record: Recorded) -> bool:
        return (record.method == "POST" and record.path.endswith("/messages")
                and isinstance(record.body, dict) and record.body.get("to") == number
                and record.body.get("type") == "text")

    sent = graph.wait_for(reply_to_contact, count=1, timeout=20)
    assert "tick" in sent[0].body["text"]["body"].lower()
