"""The widget and console WebSockets: live both ways, two windows on one session, origins."""

from __future__ import annotations

import websocket

from tests.customer_support.http import (
    SHOP_ORIGIN,
    console_socket,
    make_team,
    platform_admin,
    start_session,
    widget_socket,
)
from tests.realtime.wsclient import WAIT_SECS, WS
from tests.support import ServerThread, register


def raw_socket(server: ServerThread, path: str, origin: str) -> WS:
    return WS(websocket.create_connection(f"ws://127.0.0.1:{server.port}{path}",
                                          origin=origin, timeout=WAIT_SECS))


def test_two_windows_on_one_session_see_the_same_conversation_live(
        server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    session = start_session(server, team.key)
    first = widget_socket(server, session["token"])
    second = widget_socket(server, session["token"])
    try:
        ack = first.call({"type": "send", "client_id": "w1", "content": "hello"}, "ack")
        assert ack["message"]["content"] == "hello" and ack["message"]["kind"] == "customer"
        echoed = second.expect("message", lambda f: f["message"]["client_id"] == "w1")
        assert echoed["message"]["message_id"] == ack["message"]["message_id"]
        first.expect_none("message", lambda f: f["message"]["client_id"] == "w1")
        for window in (first, second):
            window.expect("typing", lambda f: f["who"] == "bot" and f["state"] is True)
            reply = window.expect("message", lambda f: f["message"]["kind"] == "bot")
            assert reply["message"]["is_bot_response"] is True
        # A third window opened now gets the whole conversation in its ready frame.
        third = WS(websocket.create_connection(f"ws://127.0.0.1:{server.port}/widget/ws",
                                               origin=SHOP_ORIGIN, timeout=WAIT_SECS))
        ready = third.call({"type": "auth", "token": session["token"]}, "ready")
        assert [m["kind"] for m in ready["messages"]] == ["system", "customer", "bot"]
        third.close()
    finally:
        first.close()
        second.close()


def test_the_agent_console_chats_live_with_the_customer(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root, routing="agent")
    agent = team.agents[0]
    console = console_socket(server, agent)
    session = start_session(server, team.key, "Ann", "ann@x.test")
    cid = session["session"]["id"]
    widget = widget_socket(server, session["token"])
    try:
        update = console.expect("conversation", lambda f: f["conversation"]["id"] == cid
                                and f["conversation"]["agent"] == agent.email)
        assert update["conversation"]["customer"] == {"name": "Ann", "email": "ann@x.test"}
        widget.send({"type": "typing", "state": True})
        typing = console.expect("typing", lambda f: f["conversation_id"] == cid)
        assert typing["who"] == "customer" and typing["state"] is True
        widget.call({"type": "send", "client_id": "c1", "content": "hi there"}, "ack")
        got = console.expect("message", lambda f: f["message"]["content"] == "hi there")
        assert got["conversation_id"] == cid
        unread = console.expect("conversation", lambda f: f["conversation"]["unread"] == 1)
        assert unread["conversation"]["last_message"]["content"] == "hi there"

        console.send({"type": "typing", "conversation_id": cid, "state": True})
        shown = widget.expect("typing", lambda f: f["who"] == "agent")
        assert shown["name"] == agent.name and "email" not in shown
        ack = console.call({"type": "send", "conversation_id": cid, "client_id": "a1",
                            "content": "Hello Ann!"}, "ack")
        assert ack["message"]["kind"] == "agent"
        reply = widget.expect("message", lambda f: f["message"]["kind"] == "agent")
        assert reply["message"]["content"] == "Hello Ann!"
        assert reply["message"]["sender"] == "agent"
        assert agent.email not in str(reply)
        console.send({"type": "read", "conversation_id": cid})
        console.expect("conversation", lambda f: f["conversation"]["id"] == cid
                       and f["conversation"]["unread"] == 0)
    finally:
        widget.close()
        console.close()


def test_a_send_on_an_ended_session_is_answered_with_an_error(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root, routing="agent")
    agent = team.agents[0]
    console = console_socket(server, agent)
    session = start_session(server, team.key)
    cid = session["session"]["id"]
    widget = widget_socket(server, session["token"])
    try:
        assert agent.client.post(f"/api/v1/support/conversations/{cid}/close", {}).status \
            == 200
        ended = widget.expect("session", lambda f: f["session"]["status"] == "ended")
        assert "closed" in ended["detail"]
        error = widget.call({"type": "send", "client_id": "late", "content": "wait"}, "error")
        assert error["code"] == "session_ended" and error["client_id"] == "late"
        assert "new conversation" in error["detail"]
        refused = console.call({"type": "send", "conversation_id": cid, "client_id": "x",
                                "content": "bye"}, "error")
        assert refused["code"] == "session_ended"
    finally:
        widget.close()
        console.close()


def test_the_widget_socket_accepts_only_the_orgs_sites(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    session = start_session(server, team.key)
    foreign = raw_socket(server, "/widget/ws", "http://evil.example")
    foreign.send({"type": "auth", "token": session["token"]})
    assert foreign.expect_close() == 4003
    bad = raw_socket(server, "/widget/ws", SHOP_ORIGIN)
    bad.send({"type": "auth", "token": session["token"] + "x"})
    assert bad.expect_close() == 4001
    own = raw_socket(server, "/widget/ws", f"http://127.0.0.1:{server.port}")
    assert own.call({"type": "auth", "token": session["token"]}, "ready")["session"]
    own.close()


def test_the_console_socket_is_for_agents_on_this_site_only(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    foreign = raw_socket(server, "/support/ws", SHOP_ORIGIN)
    assert foreign.expect_close() == 4003, "the widget's site may not open the console socket"
    plain = register(server.port, "plain")
    own = f"http://127.0.0.1:{server.port}"
    customer = raw_socket(server, "/support/ws", own)
    customer.send({"type": "auth", "token": plain.access_token})
    assert customer.expect_close() == 4003
    widget_token = start_session(server, team.key)["token"]
    impostor = raw_socket(server, "/support/ws", own)
    impostor.send({"type": "auth", "token": widget_token})
    assert impostor.expect_close() == 4001


def test_removing_an_agent_closes_their_console(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    agent = team.agents[0]
    console = console_socket(server, agent)
    res = team.admin.client.delete(f"/api/v1/orgs/{team.org_id}/agents/{agent.email}")
    assert res.status == 204
    assert console.expect_close() == 4003


def test_the_admin_console_gets_live_agent_loads(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root, routing="agent")
    agent = team.agents[0]
    admin_console = console_socket(server, team.admin)
    ready = admin_console.expect("ready")
    assert ready["admin"] is True and "settings" in ready["org"]
    agent_console = console_socket(server, agent)
    try:
        start_session(server, team.key)
        loads = admin_console.expect("agents", lambda f: any(
            a["email"] == agent.email and a["online"] and a["active_conversations"] == 1
            for a in f["agents"]))
        assert {a["email"] for a in loads["agents"]} >= {agent.email, team.admin.email}
        assert agent_console.expect("ready")["admin"] is False
    finally:
        agent_console.close()
        admin_console.close()


def test_revoking_an_agents_session_closes_their_console(server: ServerThread) -> None:
    root = platform_admin(server)
    team = make_team(server, root)
    agent = team.agents[0]
    console = console_socket(server, agent)
    try:
        assert agent.client.post("/api/v1/auth/logout").status == 204
        assert console.expect_close() == 4001
    finally:
        console.close()
