"""Users over REST: search, my profile, others' profiles, and deleting an account."""

from __future__ import annotations

import secrets
from urllib.parse import quote

from tests.api.checks import assert_problem
from tests.support import Client, ServerThread, register
from whatsease.timeutil import utcnow

PASSWORD = "correct horse battery"


def test_search_by_name_and_email(server: ServerThread) -> None:
    tag = secrets.token_hex(4)
    zelda = register(server.port, f"zelda{tag}", name=f"Zelda Q{tag}")
    ann = register(server.port, f"ann{tag}", name=f"Annabel Q{tag}")
    me = register(server.port, f"me{tag}", name=f"Me Q{tag}")
    by_name = me.client.get(f"/api/v1/users?q=q{tag.upper()}")
    assert by_name.status == 200
    # Case-insensitive, sorted by name, never the caller, and no private fields.
    assert [u["email"] for u in by_name.json["users"]] == [ann.email, zelda.email]
    assert set(by_name.json["users"][0]) == {"email", "name", "role", "last_seen"}
    by_email = me.client.get(f"/api/v1/users?q={quote(zelda.email)}").json["users"]
    assert [u["email"] for u in by_email] == [zelda.email]
    assert me.client.get(f"/api/v1/users?q={tag}&limit=1").json["users"] != []
    assert len(me.client.get(f"/api/v1/users?q={tag}&limit=1").json["users"]) == 1
    assert me.client.get("/api/v1/users?q=").json["users"] == []
    # Regex characters are matched literally.
    assert me.client.get("/api/v1/users?q=.*").json["users"] == []


def test_my_profile_read_and_update(server: ServerThread) -> None:
    user = register(server.port, "profile")
    me = user.client.get("/api/v1/users/me")
    assert me.status == 200
    assert me.json["user"]["email"] == user.email
    assert set(me.json["user"]) >= {"email", "name", "role", "created_at", "last_seen"}
    res = user.client.patch("/api/v1/users/me", {"name": "  New   Name  "})
    assert res.status == 200, res.body
    assert res.json["user"]["name"] == "New Name"
    assert user.client.get("/api/v1/users/me").json["user"]["name"] == "New Name"
    other = register(server.port, "viewer")
    seen = other.client.get(f"/api/v1/users/{quote(user.email)}")
    assert seen.status == 200
    assert seen.json["user"]["name"] == "New Name"
    assert "created_at" not in seen.json["user"] and "password_hash" not in seen.json["user"]
    assert seen.json["user"]["online"] is False
    # The new name is searchable.
    found = other.client.get("/api/v1/users?q=new%20name").json["users"]
    assert user.email in [u["email"] for u in found]


def test_someone_elses_profile_by_email(server: ServerThread) -> None:
    alice = register(server.port, "alice")
    bob = register(server.port, "bob")
    res = alice.client.get(f"/api/v1/users/{bob.email.upper()}")
    assert res.status == 200 and res.json["user"]["email"] == bob.email
    assert_problem(alice.client.get("/api/v1/users/nobody%40example.com"), 404)
    assert_problem(alice.client.get("/api/v1/users/bot:unknown"), 404)


def test_bot_profile_when_the_bot_is_registered(server: ServerThread) -> None:
    alice = register(server.port, "botview")
    res = alice.client.get("/api/v1/users/bot:whatsease")
    if "bot:whatsease" not in server.services.messaging.bots:
        assert_problem(res, 404)
        return
    assert res.status == 200
    assert res.json["user"]["role"] == "bot"


def test_deleting_an_account_erases_it_and_the_email_starts_afresh(server: ServerThread) -> None:
    alice = register(server.port, "gone")
    bob = register(server.port, "left")
    second = Client(server.port).post("/api/v1/auth/login",
                                      {"email": alice.email, "password": alice.password}).json
    sent = alice.client.post("/api/v1/messages", {"recipient": bob.email, "content": "secret"})
    reply = bob.client.post("/api/v1/messages", {"recipient": alice.email, "content": "reply"})
    assert sent.status == reply.status == 201
    assert alice.client.get("/api/v1/activity").json["entries"]

    res = alice.client.delete("/api/v1/users/me")
    assert res.status == 204 and res.body == b""
    # Every session of the account ends at once, refresh tokens included.
    assert_problem(alice.client.get("/api/v1/users/me"), 401)
    assert_problem(Client(server.port, token=second["access_token"]).get("/api/v1/chats"), 401)
    assert_problem(Client(server.port).post("/api/v1/auth/refresh",
                                            {"refresh_token": alice.refresh_token}), 401)
    assert_problem(Client(server.port).post("/api/v1/auth/login",
                                            {"email": alice.email, "password": PASSWORD}), 401)
    assert_problem(bob.client.get(f"/api/v1/users/{alice.email}"), 404)
    # The conversation is gone for the other side too.
    assert bob.client.get("/api/v1/chats").json["chats"] == []
    assert bob.client.get(f"/api/v1/messages?with={alice.email}").json["messages"] == []
    assert_problem(bob.client.get(f"/api/v1/messages/{reply.json['message']['message_id']}"),
                   404)
    store = server.services.store
    assert server.call(store.users.get(alice.email)) is None
    sessions = server.call(store.sessions.collection.count_documents({"user": alice.email}))
    assert sessions == 0

    # The same email registers again and sees nothing of the old account.
    again = Client(server.port).post("/api/v1/auth/register",
                                     {"email": alice.email, "name": "Newcomer",
                                      "password": "another password"})
    assert again.status == 201, again.body
    fresh = Client(server.port, token=again.json["access_token"])
    assert fresh.get("/api/v1/chats").json["chats"] == []
    assert fresh.get(f"/api/v1/messages?with={bob.email}").json["messages"] == []
    assert_problem(fresh.get(f"/api/v1/messages/{sent.json['message']['message_id']}"), 404)
    sessions = fresh.get("/api/v1/auth/sessions").json["sessions"]
    assert len(sessions) == 1 and sessions[0]["current"]
    server.call(server.services.activity.drain())
    kinds = [e["kind"] for e in fresh.get("/api/v1/activity").json["entries"]]
    assert kinds == ["user.registered"], kinds
    assert server.call(store.sessions.list_for(alice.email, utcnow()))[0].user == alice.email
