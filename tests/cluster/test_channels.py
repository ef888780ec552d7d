"""A WhatsApp contact in a cluster: the webhook lands on one member, the contact is homed on
another; the assistant's answer still reaches the platform (relayed to the member that
holds the contact's channel connection), and receipts that reach another member than
the one that sent the answer, even before that one recorded it, move its status."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bson import ObjectId
from pymongo import MongoClient

from tests.channels import payloads
from tests.cluster.conftest import FAST, metric_total
from tests.fakes.platforms import FakeGraphAPI, Recorded
from tests.support import Client
from whatsease.cluster.local import LocalCluster
from whatsease.cluster.ring import Ring
from whatsease.cluster.routing import user_route

APP_SECRET = "meta-app-secret-" + secrets.token_hex(8)
# Waits for a webhook's events to be processed, on a loaded machine.
PROCESSED_WITHIN_SECS = 30.0


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


def _post(pair: LocalCluster, member: str, payload: dict[str, Any]) -> None:
    body = payloads.body_of(payload)
    res = Client(pair.ports[member]).request(
        "POST", "/channels/whatsapp/webhook", body=body,
        headers={"Content-Type": "application/json",
                 "X-Hub-Signature-256": payloads.sign(APP_SECRET, body)})
    assert res.status == 200, res.body


def _wait(check: Any, what: str, timeout: float = PROCESSED_WITHIN_SECS) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        assert time.monotonic() < deadline, f"no {what} within {timeout} s"
        time.sleep(0.1)


def test_the_bot_answers_a_contact_homed_on_another_member(pair: LocalCluster,
                                                           graph: FakeGraphAPI) -> None:
    ring = Ring(pair.ids)
    number = _homed_on(ring, "i2")
    _post(pair, "i1", payloads.envelope(
        payloads.inbound(number, payloads.text(number, "what do the ticks mean"))))

    def reply_to_contact(record: Recorded) -> bool:
        return (record.method == "POST" and record.path.endswith("/messages")
                and isinstance(record.body, dict) and record.body.get("to") == number
                and record.body.get("type") == "text")

    sent = graph.wait_for(reply_to_contact, count=1, timeout=20)
    assert "tick" in sent[0].body["text"]["body"].lower()


def test_receipts_on_another_member_before_the_answer_is_recorded_are_applied(
        pair: LocalCluster, graph: FakeGraphAPI) -> None:
    ring = Ring(pair.ids)
    number = _homed_on(ring, "i2")
    contact = f"wa:+{number}"
    wamid = payloads.wamid()
    graph.next_ids.append(wamid)
    # Meta's receipts for the assistant's answer race the Graph API's own answer,
    # and land on i1, while i2 (the contact's home, where its message lands)
    # sends the answer and records it.
    statuses = "whatsease_channel_statuses_total"
    before = metric_total(pair.ports["i1"], statuses)
    _post(pair, "i1", payloads.envelope(payloads.status(wamid, number, "sent"),
                                        payloads.status(wamid, number, "delivered")))
    _wait(lambda: metric_total(pair.ports["i1"], statuses) >= before + 2, "receipts taken in")
    _post(pair, "i2", payloads.envelope(
        payloads.inbound(number, payloads.text(number, "what do the ticks mean"))))
    graph.wait_for(lambda r: isinstance(r.body, dict) and r.body.get("to") == number
                   and r.body.get("type") == "text", timeout=PROCESSED_WITHIN_SECS)

    client: MongoClient[dict[str, Any]] = MongoClient(pair.mongodb_uri)
    with client:
        db = client[pair.db_name]

        def delivered() -> dict[str, Any] | None:
            record = db.channel_outbox.find_one({"contact": contact, "platform_id": wamid})
            return record if record is not None and record["status"] == "Delivered" else None

        record = _wait(delivered, "Delivered outbox record")
        # The messenger's own status (the ticks) follows too: a Delivered receipt
        # is kept beside the message (message_receipts, laid over it when read).
        _wait(lambda: db.message_receipts.find_one(
            {"_id": ObjectId(record["_id"]), "status": "Delivered"}), "Delivered answer")
        answer = db.messages.find_one({"_id": ObjectId(record["_id"])})
        assert answer is not None
        assert answer["recipient"] == contact and answer["is_bot_response"] is True
