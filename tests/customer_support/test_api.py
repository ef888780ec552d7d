"""Support over HTTP: orgs and settings, who may see what, the widget API and its CORS."""

from __future__ import annotations

import secrets
import time
from typing import Any

from tests.api.checks import assert_problem
from tests.customer_support.http import (
    SHOP_ORIGIN,
    make_team,
    platform_admin,
    start_session,
)
from tests.support import Client, ServerThread, register

OTHER_ORIGIN = "http://evil.example"
WAIT_SECS = 15.0  # for what must arrive: a passing test never waits it out


def wait_for_messages(client: Client, path: str, token: str, count: int,
                      origin: str = SHOP_ORIGIN) -> list[dict[str, Any]]:
    """The session's messages once there are ``count`` (the bot answers in the background)."""
    deadline = time.monotonic() + WAIT_SECS
    while True:
        res = client.get(path, token=token, headers={"Origin": origin})
        assert res.status == 200, res.body
        messages = list(reversed(res.json["messages"]))
        if len(messages) >= count or time.monotonic() > deadline:
            return messages
        time.sleep(0.05)


def test_only_platform_admins_create_orgs(server: ServerThread) -> None:
    root = platform_admin(server)
    someone = register(server.port, "someone")
    assert_problem(someone.client.post("/api/v1/orgs", {"name": "Mine"}), 403)
    res = root.client.post("/api/v1/orgs", {"name": "Acme Shoes"})
    assert res.status == 201, res.body
    org = res.json["org"]
    assert res.header("Location") == f"/api/v1/orgs/{org['id']}"
    assert org["id"].startswith("acme-shoes") and org["widget_key"].startswith("wk_")
    settings = org["settings"]
    assert (settings["routing"], settings["assignment"], settings["session_timeout"]) == (
        "bot", "least_busy", 300)
    again = root.client.post("/api/v1/orgs", {"name": "Acme Shoes", "id": org["id"]})
    assert_problem(again, 409, "id")
    assert org["id"] in [o["id"] for o in root.client.get("/api/v1/orgs").json["orgs"]]


def test_org_admins_change_settings_agents_read_outsiders_see_nothing(
        server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    agent, outsider = team.agents[0], register(server.port, "outsider")
    path = f"/api/v1/orgs/{team.org_id}"
    change = {"settings": {"routing": "agent", "assignment": "random", "session_timeout": 120,
                           "greeting": "Hello!", "brand_color": "#123ABC"}}
    res = team.admin.client.patch(path, change)
    assert res.status == 200, res.body
    settings = res.json["org"]["settings"]
    assert (settings["routing"], settings["assignment"], settings["session_timeout"],
            settings["brand_color"]) == ("agent", "random", 120, "#123abc")
    assert_problem(agent.client.patch(path, change), 403)
    seen = agent.client.get(path)
    assert seen.status == 200 and "settings" not in seen.json["org"]
    assert_problem(outsider.client.get(path), 404)
    assert_problem(outsider.client.patch(path, change), 404)
    assert_problem(outsider.client.get(f"{path}/agents"), 404)
    assert_problem(team.admin.client.delete(path), 403)
    assert root.client.delete(path).status == 204
    assert_problem(team.admin.client.get(path), 404)


def test_settings_are_validated_and_the_bad_field_named(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    path = f"/api/v1/orgs/{team.org_id}"
    bad: list[tuple[dict[str, Any], str]] = [
        ({"routing": "human"}, "routing"),
        ({"assignment": "cheapest"}, "assignment"),
        ({"session_timeout": 5}, "session_timeout"),
        ({"session_timeout": "300"}, "session_timeout"),
        ({"brand_color": "red"}, "brand_color"),
        ({"allowed_origins": ["https://shop.example/path"]}, "allowed_origins"),
        ({"chatbot": {"kind": "external"}}, "chatbot.url"),
        ({"chatbot": {"url": "ftp://bot.example"}}, "chatbot.url"),
        ({"chatbot": {"catalogue": "[bot]\nname = 'x'\n"}}, "chatbot.catalogue"),
        ({"chatbot": {"secret": "x"}}, "chatbot.secret"),
        ({"colour": "#000000"}, "colour"),
    ]
    for settings, field in bad:
        body = assert_problem(team.admin.client.patch(path, {"settings": settings}), 422,
                              field)
        if field == "chatbot.catalogue":
            assert "fallback" in body["detail"], body  # the catalogue loader's own message
    catalogue = ("[bot]\nname = 'Shoebot'\nfallback = ['Pardon?']\n\n[[intents]]\n"
                 "name = 'hi'\nexamples = ['hello']\nresponses = ['Hi from Shoebot']\n")
    res = team.admin.client.patch(path, {"settings": {"chatbot": {"catalogue": catalogue}}})
    assert res.status == 200, res.body
    assert res.json["org"]["settings"]["chatbot"]["catalogue"] == catalogue


def test_the_chatbot_token_is_never_returned_in_full(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    path = f"/api/v1/orgs/{team.org_id}"
    token = "sk-live-0123456789abcdef"
    res = team.admin.client.patch(path, {"settings": {"chatbot": {
        "kind": "external", "url": "http://127.0.0.1:9/v1/chat/completions",
        "token": token, "model": "tiny"}}})
    assert res.status == 200, res.body
    for body in (res.body, team.admin.client.get(path).body,
                 root.client.get("/api/v1/orgs").body):
        assert token.encode() not in body
        assert b"0123456789" not in body
    chatbot = res.json["org"]["settings"]["chatbot"]
    assert chatbot["token_set"] is True and chatbot["token_hint"] == "…cdef"
    # Saving other settings keeps the token; null clears it.
    kept = team.admin.client.patch(path, {"settings": {"chatbot": {"model": "other"}}})
    assert kept.json["org"]["settings"]["chatbot"]["token_set"] is True
    cleared = team.admin.client.patch(path, {"settings": {"chatbot": {"token": None}}})
    assert cleared.json["org"]["settings"]["chatbot"]["token_set"] is False


def test_agents_are_added_and_removed(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root, agents=0)
    other = make_team(server, root, agents=1)
    path = f"/api/v1/orgs/{team.org_id}/agents"
    assert_problem(team.admin.client.post(path, {"email": "nobody@nowhere.test"}), 404,
                   "email")
    assert_problem(team.admin.client.post(path, {"email": other.agents[0].email}), 409,
                   "email")
    assert_problem(team.admin.client.post(path, {"email": "x@y.test", "role": "boss"}), 422,
                   "role")
    newbie = register(server.port, "newbie", name="Newbie")
    res = team.admin.client.post(path, {"email": newbie.email})
    assert res.status == 201 and res.json["agent"]["role"] == "agent"
    listed = team.admin.client.get(path).json["agents"]
    row = next(a for a in listed if a["email"] == newbie.email)
    assert row == {"email": newbie.email, "name": "Newbie", "role": "agent", "online": False,
                   "active_conversations": 0, "first_response_avg_secs": None,
                   "first_responses": 0}
    me = newbie.client.get("/api/v1/users/me").json["user"]
    assert me["role"] == "agent" and me["org"] == team.org_id
    assert team.admin.client.delete(f"{path}/{newbie.email}").status == 204
    assert_problem(newbie.client.get("/api/v1/support/conversations"), 403)


def test_starting_a_session_validates_name_and_email(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    path = f"/widget/v1/{team.key}/sessions"
    client = Client(server.port, headers={"Origin": SHOP_ORIGIN})
    assert_problem(client.post(path, {"name": "  ", "email": "ann@x.test"}), 422, "name")
    assert_problem(client.post(path, {"name": "Ann", "email": "not-an-email"}), 422, "email")
    assert_problem(client.post(path, {"name": "Ann"}), 422, "email")
    assert_problem(client.post(path, {"name": "A" * 81, "email": "ann@x.test"}), 422, "name")
    assert_problem(client.post("/widget/v1/wk_unknown/sessions",
                               {"name": "Ann", "email": "ann@x.test"}), 404)
    res = client.post(path, {"name": " Ann  Lee ", "email": "Ann@X.test"})
    assert res.status == 201, res.body
    body = res.json
    assert body["session"]["customer"] == {"name": "Ann Lee", "email": "ann@x.test"}
    assert body["session"]["status"] == "active"
    assert body["config"]["session_timeout"] == 300
    assert body["messages"][0]["content"] == body["config"]["greeting"]
    assert res.header("Access-Control-Allow-Origin") == SHOP_ORIGIN


def test_cors_is_answered_only_by_the_widget_api_and_only_for_the_orgs_sites(
        server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    client = Client(server.port)
    path = f"/widget/v1/{team.key}/session/messages"
    preflight = {"Origin": SHOP_ORIGIN, "Access-Control-Request-Method": "POST",
                 "Access-Control-Request-Headers": "authorization, content-type"}
    res = client.request("OPTIONS", path, headers=preflight)
    assert res.status == 204
    assert res.header("Access-Control-Allow-Origin") == SHOP_ORIGIN
    assert "POST" in (res.header("Access-Control-Allow-Methods") or "")
    assert "authorization" in (res.header("Access-Control-Allow-Headers") or "").lower()
    assert "Origin" in (res.header("Vary") or "")

    for method in ("OPTIONS", "GET"):
        refused = client.request(method, f"/widget/v1/{team.key}/config",
                                 headers={**preflight, "Origin": OTHER_ORIGIN})
        assert refused.status == 403 and refused.header("Access-Control-Allow-Origin") is None
    assert client.get(f"/widget/v1/{team.key}/config",
                      headers={"Origin": SHOP_ORIGIN}).status == 200

    # The rest of the API never answers cross-origin, not even to the org's own site.
    for method, api_path in (("OPTIONS", "/api/v1/users/me"), ("GET", "/api/v1/users/me"),
                             ("OPTIONS", "/api/v1/support/conversations"),
                             ("POST", "/api/v1/auth/login"), ("OPTIONS", "/api/v1/orgs")):
        res = client.request(method, api_path, headers=preflight,
                             token=team.admin.access_token)
        assert res.header("Access-Control-Allow-Origin") is None, (method, api_path)
        assert res.status in (200, 401, 404, 405, 415, 422), (method, api_path, res.status)
    # ...and a customer's session token is no access token.
    session = start_session(server, team.key)
    for api_path in ("/api/v1/users/me", "/api/v1/support/conversations",
                     f"/api/v1/support/conversations/{session['session']['id']}"):
        assert_problem(client.get(api_path, token=session["token"],
                                  headers={"Origin": SHOP_ORIGIN}), 401)


def test_a_customer_token_opens_only_its_own_session(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    other = make_team(server, root)
    ann = start_session(server, team.key, "Ann", "ann@x.test")
    ben = start_session(server, team.key, "Ben", "ben@x.test")
    client = Client(server.port, headers={"Origin": SHOP_ORIGIN})
    mine = client.get(f"/widget/v1/{team.key}/session", token=ann["token"])
    assert mine.status == 200 and mine.json["session"]["id"] == ann["session"]["id"]
    assert mine.json["session"]["customer"]["name"] == "Ann"
    assert client.get(f"/widget/v1/{team.key}/session",
                      token=ben["token"]).json["session"]["customer"]["name"] == "Ben"
    assert_problem(client.get(f"/widget/v1/{other.key}/session", token=ann["token"]), 401)
    assert_problem(client.get(f"/widget/v1/{team.key}/session"), 401)
    assert_problem(client.get(f"/widget/v1/{team.key}/session",
                              token=ann["session"]["id"] + ".forged"), 401)
    assert_problem(client.get(f"/widget/v1/{team.key}/session",
                              token=team.admin.access_token), 401)
    # The 401 is readable by the allowed site (CORS headers survive errors).
    res = client.get(f"/widget/v1/{team.key}/session")
    assert res.header("Access-Control-Allow-Origin") == SHOP_ORIGIN


def test_agents_see_only_their_own_orgs_conversations(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    other = make_team(server, root)
    theirs = start_session(server, other.key, "Zoe", "zoe@x.test")
    mine = start_session(server, team.key, "Ann", "ann@x.test")
    agent = team.agents[0]
    cid = theirs["session"]["id"]
    for path in (f"/api/v1/support/conversations/{cid}",
                 f"/api/v1/support/conversations/{cid}/messages",
                 "/api/v1/support/conversations/000000000000000000000000",
                 "/api/v1/support/conversations/not-an-id"):
        assert_problem(agent.client.get(path), 404)
    for action in ("takeover", "close", "read"):
        assert_problem(agent.client.post(f"/api/v1/support/conversations/{cid}/{action}",
                                         {}), 404)
    assert_problem(agent.client.post(f"/api/v1/support/conversations/{cid}/messages",
                                     {"content": "hi"}), 404)
    listed = agent.client.get("/api/v1/support/conversations?scope=bot").json
    assert [c["id"] for c in listed["conversations"]] == [mine["session"]["id"]]
    by_customer = agent.client.get("/api/v1/support/conversations?customer=zoe@x.test").json
    assert by_customer["conversations"] == []
    assert_problem(agent.client.get("/api/v1/support/conversations?scope=active"), 403)
    assert_problem(agent.client.get("/api/v1/support/dashboard"), 403)
    assert_problem(agent.client.get(f"/api/v1/orgs/{other.org_id}"), 404)
    plain = register(server.port, "plain")
    assert_problem(plain.client.get("/api/v1/support/conversations"), 403)


def test_history_takeover_close_and_refusal_after_the_end(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    agent = team.agents[0]
    session = start_session(server, team.key)
    cid, token = session["session"]["id"], session["token"]
    customer = Client(server.port, headers={"Origin": SHOP_ORIGIN})
    messages_path = f"/widget/v1/{team.key}/session/messages"
    sent = customer.post(messages_path, {"content": "where is my order", "client_id": "c1"},
                         token=token)
    assert sent.status == 201 and sent.json["message"]["kind"] == "customer"
    again = customer.post(messages_path, {"content": "where is my order", "client_id": "c1"},
                          token=token)
    assert again.json["message"]["message_id"] == sent.json["message"]["message_id"]
    history = wait_for_messages(customer, messages_path, token, 3)
    assert [m["kind"] for m in history] == ["system", "customer", "bot"]

    taken = agent.client.post(f"/api/v1/support/conversations/{cid}/takeover", {})
    assert taken.status == 200 and taken.json["conversation"]["agent"] == agent.email
    reply = agent.client.post(f"/api/v1/support/conversations/{cid}/messages",
                              {"content": "Let me check that for you."})
    assert reply.status == 201
    # The Minicom GET endpoints: a conversation's history and the admin's dashboard.
    full = agent.client.get(f"/api/v1/support/conversations/{cid}").json
    assert full["conversation"]["customer"] == {"name": "Ann", "email": "ann@customer.test"}
    assert [m["kind"] for m in full["messages"]] == ["system", "customer", "bot", "system",
                                                     "agent"]
    page = agent.client.get(f"/api/v1/support/conversations/{cid}/messages?limit=2").json
    assert [m["kind"] for m in page["messages"]] == ["agent", "system"]
    older = agent.client.get(f"/api/v1/support/conversations/{cid}/messages?limit=2"
                             f"&before={page['next_before']}").json
    assert [m["kind"] for m in older["messages"]] == ["bot", "customer"]
    board = team.admin.client.get("/api/v1/support/dashboard").json
    assert cid in [c["id"] for c in board["active"]]
    assert board["with_agents"] >= 1

    closed = agent.client.post(f"/api/v1/support/conversations/{cid}/close", {})
    assert closed.status == 200 and closed.json["conversation"]["status"] == "ended"
    refused = customer.post(messages_path, {"content": "one more thing"}, token=token)
    problem = assert_problem(refused, 410)
    assert problem["type"].endswith("/session_ended")
    assert "closed" in problem["detail"] and "new conversation" in problem["detail"]
    assert refused.header("Access-Control-Allow-Origin") == SHOP_ORIGIN
    resumed = customer.get(f"/widget/v1/{team.key}/session", token=token).json
    assert resumed["session"]["status"] == "ended"
    assert "one more thing" not in [m["content"] for m in resumed["messages"]]
    past = agent.client.get("/api/v1/support/conversations?scope=ended").json
    assert cid in [c["id"] for c in past["conversations"]]
    by_customer = agent.client.get(
        "/api/v1/support/conversations?customer=ann@customer.test").json
    assert cid in [c["id"] for c in by_customer["conversations"]]


def test_activity_and_metrics_record_support_events(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    agent = team.agents[0]
    session = start_session(server, team.key)
    cid = session["session"]["id"]
    assert agent.client.post(f"/api/v1/support/conversations/{cid}/takeover", {}).status == 200
    assert agent.client.post(f"/api/v1/support/conversations/{cid}/handback", {}).status == 200
    assert agent.client.post(f"/api/v1/support/conversations/{cid}/close", {}).status == 200
    deadline = time.monotonic() + WAIT_SECS
    wanted = {"support.session_started", "support.takeover", "support.handback",
              "support.session_closed"}
    while True:
        kinds = {e["kind"] for e in team.admin.client.get("/api/v1/activity").json["entries"]}
        if wanted <= kinds or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert wanted <= kinds, kinds
    metrics = Client(server.port).get("/metrics").body.decode()
    for line in ('whatsease_support_sessions_total{event="started"}',
                 'whatsease_support_handoffs_total{kind="takeover"}',
                 'whatsease_support_handoffs_total{kind="handback"}',
                 'whatsease_support_sessions_total{event="closed"}'):
        assert line in metrics, line


def test_an_org_whose_admin_cannot_join_is_not_created(server: ServerThread) -> None:
    root = platform_admin(server)
    wanted = f"ghost-{secrets.token_hex(3)}"
    res = root.client.post("/api/v1/orgs", {"name": "Ghost", "id": wanted,
                                            "admin": "nobody-here@example.com"})
    assert_problem(res, 404, "admin")
    assert wanted not in [o["id"] for o in root.client.get("/api/v1/orgs").json["orgs"]]
    res = root.client.post("/api/v1/orgs", {"name": "Ghost", "id": wanted,
                                            "admin": root.email})
    assert_problem(res, 409, "admin")  # a platform admin joins no org
    assert wanted not in [o["id"] for o in root.client.get("/api/v1/orgs").json["orgs"]]
    # The same request with a free account works, so the id was never taken.
    boss = register(server.port, "boss")
    res = root.client.post("/api/v1/orgs", {"name": "Ghost", "id": wanted, "admin": boss.email})
    assert res.status == 201, res.body
