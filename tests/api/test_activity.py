"""The activity log over REST: an entry per action, with a sentence, newest first, paged."""

from __future__ import annotations

from typing import Any

from tests.support import Client, ServerThread, User, register, wait_for
from whatsease.services import Services


def _entries(server: ServerThread, user: User, query: str = "") -> dict[str, Any]:
    # Entries are written in the background (group commit); wait for the queue.
    server.call(server.services.activity.drain())
    res = user.client.get(f"/api/v1/activity{query}")
    assert res.status == 200, res.body
    return dict(res.json)


def test_every_action_leaves_an_entry_with_a_sentence(server: ServerThread) -> None:
    alice, bob = register(server.port, "act"), register(server.port, "actb")
    Client(server.port).post("/api/v1/auth/login",
                             {"email": alice.email, "password": alice.password})
    sent = alice.client.post("/api/v1/messages", {"recipient": bob.email, "content": "hi"})
    mid = sent.json["message"]["message_id"]
    alice.client.patch(f"/api/v1/messages/{mid}", {"content": "hello"})
    bob.client.patch(f"/api/v1/messages/{mid}", {"status": "Read"})
    alice.client.delete(f"/api/v1/messages/{mid}")
    alice.client.post("/api/v1/auth/logout")
    mine = Client(server.port).post("/api/v1/auth/login",
                                    {"email": alice.email, "password": alice.password})
    alice.client.token = mine.json["access_token"]

    entries = _entries(server, alice)["entries"]
    kinds = [e["kind"] for e in entries]
    assert kinds == ["user.login", "user.logout", "message.deleted", "message.read",
                     "message.delivered", "message.edited", "message.sent", "user.login",
                     "user.registered"], kinds
    by_kind = {e["kind"]: e for e in entries}
    assert by_kind["message.sent"]["text"] == f"{alice.email} sent a message to {bob.email}"
    assert by_kind["message.sent"]["message_id"] == mid
    assert by_kind["message.read"]["text"] == f"{bob.email} read a message from {alice.email}"
    assert set(by_kind["message.sent"]) >= {"id", "kind", "actor", "target", "message_id",
                                            "text", "time"}
    # Bob sees what involves him, and none of Alice's logins.
    bob_kinds = [e["kind"] for e in _entries(server, bob)["entries"]]
    assert "user.login" not in bob_kinds and "message.sent" in bob_kinds


def test_activity_pages_newest_first_and_filters_by_kind(server: ServerThread) -> None:
    alice, bob = register(server.port, "pager"), register(server.port, "pagerb")
    for i in range(5):
        alice.client.post("/api/v1/messages", {"recipient": bob.email, "content": f"n{i}"})
    everything = _entries(server, alice, "?limit=200")["entries"]
    assert len(everything) == 6
    first = _entries(server, alice, "?limit=4")
    assert [e["id"] for e in first["entries"]] == [e["id"] for e in everything[:4]]
    assert first["next_before"] == everything[3]["id"]
    rest = _entries(server, alice, f"?limit=4&before={first['next_before']}")
    assert [e["id"] for e in rest["entries"]] == [e["id"] for e in everything[4:]]
    assert rest["next_before"] is None
    assert [e["time"] for e in everything] == sorted((e["time"] for e in everything),
                                                     reverse=True)
    sent_only = _entries(server, alice, "?kind=message.sent")["entries"]
    assert len(sent_only) == 5 and {e["kind"] for e in sent_only} == {"message.sent"}
    two_kinds = _entries(server, alice, "?kind=message.sent&kind=user.registered")["entries"]
    assert len(two_kinds) == 6


async def test_a_read_sees_every_entry_recorded_before_it(services: Services) -> None:
    """Entries linger before they are written; the feed still shows what was just done."""
    activity = services.activity
    entry = activity.record("user.login", "fresh@example.com")
    listed = await activity.list_for("fresh@example.com", before=None, limit=10)
    assert [e.entry_id for e in listed] == [entry.entry_id]


def test_activity_names_the_people_in_it(server: ServerThread) -> None:
    ann = register(server.port, "named", "Ann Named")
    bob = register(server.port, "peer", "Bob Peer")
    assert ann.client.post("/api/v1/messages", {"recipient": bob.email,
                                                "content": "hi"}).status == 201
    assert ann.client.post("/api/v1/messages", {"recipient": "bot:whatsease",
                                                "content": "help"}).status == 201

    def replied() -> dict[str, Any] | None:
        body = _entries(server, ann)
        return body if any(e["kind"] == "bot.replied" for e in body["entries"]) else None

    body = wait_for(replied, what="the bot's reply in the activity")
    assert body["people"][ann.email] == "Ann Named"
    assert body["people"][bob.email] == "Bob Peer"
    assert body["people"]["bot:whatsease"] == "WhatsEase Assistant"
