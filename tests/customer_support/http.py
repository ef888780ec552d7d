"""Helpers for support tests over HTTP and WebSockets against a real server."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

import websocket

from tests.realtime.wsclient import WAIT_SECS, WS
from tests.support import Client, ServerThread, User, register

SHOP_ORIGIN = "http://shop.example"


async def _promote(server: ServerThread, email: str) -> None:
    services = server.services
    await services.store.users.update(email, {"role": "admin", "org": None})
    services.auth.forget_user(email)


def platform_admin(server: ServerThread) -> User:
    """A fresh account made platform admin the way an operator would (in the database)."""
    user = register(server.port, "root")
    server.call(_promote(server, user.email))
    return user


@dataclass
class Team:
    org: dict[str, Any]
    admin: User
    agents: list[User]

    @property
    def key(self) -> str:
        return str(self.org["widget_key"])

    @property
    def org_id(self) -> str:
        return str(self.org["id"])


def make_team(server: ServerThread, root: User, *, agents: int = 1,
              origins: tuple[str, ...] = (SHOP_ORIGIN,), **settings: Any) -> Team:
    """An org (created over the API) with an admin and ``agents`` agents."""
    admin = register(server.port, "boss", name="Boss")
    res = root.client.post("/api/v1/orgs", {
        "name": f"Shop {secrets.token_hex(3)}", "admin": admin.email,
        "settings": {"allowed_origins": list(origins), **settings}})
    assert res.status == 201, res.body
    members = []
    for n in range(agents):
        agent = register(server.port, f"agent{n}", name=f"Agent {n}")
        added = admin.client.post(f"/api/v1/orgs/{res.json['org']['id']}/agents",
                                  {"email": agent.email})
        assert added.status == 201, added.body
        members.append(agent)
    return Team(org=res.json["org"], admin=admin, agents=members)


def start_session(server: ServerThread, key: str, name: str = "Ann",
                  email: str = "ann@customer.test",
                  origin: str = SHOP_ORIGIN) -> dict[str, Any]:
    res = Client(server.port).post(f"/widget/v1/{key}/sessions",
                                   {"name": name, "email": email},
                                   headers={"Origin": origin})
    assert res.status == 201, res.body
    return dict(res.json)


def widget_socket(server: ServerThread, token: str, origin: str = SHOP_ORIGIN) -> WS:
    ws = WS(websocket.create_connection(f"ws://127.0.0.1:{server.port}/widget/ws",
                                        origin=origin, timeout=WAIT_SECS))
    ready = ws.call({"type": "auth", "token": token}, "ready")
    assert ready["session"]["id"] == token.split(".")[0]
    return ws


def console_socket(server: ServerThread, user: User, origin: str | None = None) -> WS:
    ws = WS(websocket.create_connection(
        f"ws://127.0.0.1:{server.port}/support/ws",
        origin=origin or f"http://127.0.0.1:{server.port}", timeout=WAIT_SECS))
    ready = ws.call({"type": "auth", "token": user.access_token}, "ready")
    assert ready["me"]["email"] == user.email
    ws.backlog.append(ready)
    return ws
