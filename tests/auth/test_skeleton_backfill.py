"""Accounts from before look-alike checks get their skeleton at start-up (issue 16 item 3)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.collection import Collection

from tests.api.checks import assert_problem
from tests.support import Client, ServerThread
from tests.support import test_config as config_for
from whatsease.auth.backfill import backfill_skeletons, mask_email
from whatsease.auth.identity import email_skeleton
from whatsease.services import Services
from whatsease.timeutil import utcnow

PASSWORD = "correct horse battery"


def _old_account(email: str, minutes_ago: int) -> dict[str, Any]:
    """A user document as written before skeletons existed: no `skeleton` field."""
    when = utcnow() - timedelta(minutes=minutes_ago)
    return {"_id": email, "name": email.split("@")[0], "name_lower": email.split("@")[0],
            "password_hash": "", "role": "user", "org": None, "created_at": when,
            "last_seen": when}


def test_old_accounts_get_their_skeleton_and_their_look_alikes_are_refused(
        mongo_uri: str, make_server: Callable[..., ServerThread],
        caplog: pytest.LogCaptureFixture) -> None:
    domain = f"t{secrets.token_hex(4)}.example"
    db_name = config_for().db_name
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_uri)
    with client:
        users: Collection[dict[str, Any]] = client[db_name]["users"]
        # mary and rnary were both registered before the change: they look alike.
        users.insert_many([_old_account(f"alice@{domain}", 30),
                           _old_account(f"mary@{domain}", 20),
                           _old_account(f"rnary@{domain}", 10)])
        with caplog.at_level(logging.WARNING, logger="whatsease.auth.backfill"):
            server = make_server(db_name=db_name)
        docs = {doc["_id"]: doc for doc in users.find({})}
    assert docs[f"alice@{domain}"]["skeleton"] == email_skeleton(f"alice@{domain}")
    assert docs[f"mary@{domain}"]["skeleton"] == email_skeleton(f"mary@{domain}")
    assert "skeleton" not in docs[f"rnary@{domain}"]  # the later look-alike: kept, unmarked
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    logged = repr(warnings[0].__dict__)
    assert f"mary@{domain}" not in logged and f"rnary@{domain}" not in logged
    assert warnings[0].__dict__["lookalike"] == mask_email(f"rnary@{domain}")

    for lookalike in (f"a1ice@{domain}", f"A1ICE@{domain.upper()}", f"rnary@{domain}"):
        res = Client(server.port).post("/api/v1/auth/register",
                                       {"email": lookalike, "name": "Look", "password": PASSWORD})
        problem = assert_problem(res, 409, "email")
        if lookalike != f"rnary@{domain}":  # rnary exists itself: "taken"
            assert problem["type"].endswith("email_confusable"), problem
    assert Client(server.port).post(
        "/api/v1/auth/register",
        {"email": f"bob@{domain}", "name": "Bob", "password": PASSWORD}).status == 201


async def test_the_backfill_pages_stays_idempotent_and_keeps_the_unique_index(
        services: Services, caplog: pytest.LogCaptureFixture) -> None:
    users = services.store.users
    domain = f"t{secrets.token_hex(4)}.example"
    # Oldest first: pages of two, with mary's look-alike on the second page
    # and a bot (no address, no skeleton needed) in between.
    await users.collection.insert_many([
        _old_account(f"mary@{domain}", 50), _old_account(f"one@{domain}", 40),
        _old_account("bot:old", 35), _old_account(f"rnary@{domain}", 30),
        _old_account(f"two@{domain}", 20), _old_account(f"three@{domain}", 10)])
    with caplog.at_level(logging.WARNING, logger="whatsease.auth.backfill"):
        assert await backfill_skeletons(users, batch_size=2) == 4
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    missing = [doc["_id"] async for doc in users.collection.find({"skeleton": {"$exists": False}})]
    assert sorted(missing) == ["bot:old", f"rnary@{domain}"]
    assert await backfill_skeletons(users, batch_size=2) == 0  # nothing left to do
    await services.store.ensure_indexes()  # the unique partial index still builds
    indexes = {i["name"]: i async for i in await users.collection.list_indexes()}
    assert indexes["skeleton_1"]["unique"]


def test_a_masked_address_keeps_only_the_first_letters() -> None:
    assert mask_email("mary@example.com") == "m***@e***.com"
    assert mask_email("bot:x") == "b***"
