"""The front (cluster/front.py): balancing, forwarding, and fly-replay as Fly documents it.

The instances here are tiny local Tornado apps that answer ``fly-replay`` by a
rule of their own, so these tests hold the front to Fly's behaviour without
depending on the instances' homing.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
import tornado.httpserver
import tornado.netutil
import tornado.web
import tornado.websocket
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.websocket import websocket_connect

from whatsease.cluster.backends import FileBackends, parse_backends
from whatsease.cluster.front import REPLAY_MAX_BODY_BYTES, Front
from whatsease.cluster.replay import ReplayError, parse_replay, replay_source


@dataclass
class Instance:
    """One fake instance: its id, its port and what it saw."""

    id: str
    port: int = 0
    upgrades: int = 0
    requests: list[str] = field(default_factory=list)
    server: tornado.httpserver.HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def seen(handler: tornado.web.RequestHandler, me: Instance) -> dict[str, object]:
    headers = handler.request.headers
    return {"id": me.id, "src": headers.get("fly-replay-src"),
            "failed": headers.get("fly-replay-failed"), "xff": headers.get("X-Forwarded-For"),
            "host": headers.get("Host"), "method": handler.request.method,
            "sha": hashlib.sha256(handler.request.body).hexdigest()}


class Base(tornado.web.RequestHandler):
    def initialize(self, me: Instance) -> None:
        self.me = me

    def prepare(self) -> None:
        self.me.requests.append(self.request.path)


class WhoAmI(Base):
    def get(self) -> None:
        self.set_header("Set-Cookie", "a=1")
        self.add_header("Set-Cookie", "b=2")
        self.write(seen(self, self.me))


class Home(Base):
    """Served only on ``owner``; elsewhere answered with fly-replay (and a body to drop)."""

    def _serve(self, owner: str) -> None:
        if owner != self.me.id:
            self.set_status(409)
            self.set_header("fly-replay", f"instance={owner};state=homing")
            self.finish("not here")
            return
        self.write(seen(self, self.me))

    get = post = put = delete = _serve


class Elsewhere(Base):
    def get(self) -> None:
        if not self.request.headers.get("fly-replay-src"):
            self.set_header("fly-replay", "elsewhere=true")
            self.finish()
            return
        self.write(seen(self, self.me))


class Loop(Base):
    def get(self) -> None:
        self.set_header("fly-replay", "elsewhere=true")
        self.finish()


class Fallback(Base):
    def get(self, target: str) -> None:
        if self.request.headers.get("fly-replay-failed"):
            self.write(seen(self, self.me))
            return
        self.set_header("fly-replay", f"instance={target};timeout=500ms;fallback=force_self")
        self.finish()


class Chunked(Base):
    async def get(self) -> None:
        for part in (b"one,", b"two,", b"three"):
            self.write(part)
            await self.flush()


class Socket(tornado.websocket.WebSocketHandler):
    """Upgrades only on ``owner``; elsewhere it answers fly-replay before upgrading."""

    def initialize(self, me: Instance) -> None:
        self.me = me

    async def get(self, owner: str) -> None:
        if owner != self.me.id:
            self.set_status(409)
            self.set_header("fly-replay", f"instance={owner}")
            self.finish()
            return
        self.me.upgrades += 1
        await super().get(owner)

    def open(self, owner: str) -> None:
        self.write_message(orjson.dumps(seen(self, self.me)))

    def on_message(self, message: str | bytes) -> None:
        self.write_message(message, binary=isinstance(message, bytes))

    def check_origin(self, origin: str) -> bool:
        return True


def fake_app(me: Instance) -> tornado.web.Application:
    args = {"me": me}
    return tornado.web.Application([
        (r"/whoami", WhoAmI, args), (r"/home/(\w+)", Home, args), (r"/elsewhere", Elsewhere, args),
        (r"/loop", Loop, args), (r"/fallback/(\w+)", Fallback, args), (r"/chunked", Chunked, args),
        (r"/ws/(\w+)", Socket, args)], websocket_max_message_size=4 * 1024 * 1024)


@dataclass
class Setup:
    front: Front
    instances: dict[str, Instance]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.front.port}"


async def start(ids: list[str], balancing: str = "round-robin",
                extra: dict[str, str] | None = None) -> Setup:
    instances = {}
    for instance_id in ids:
        me = Instance(instance_id)
        me.server = tornado.httpserver.HTTPServer(fake_app(me), max_body_size=8 * 1024 * 1024)
        sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
        me.port = sockets[0].getsockname()[1]
        me.server.add_sockets(sockets)
        instances[instance_id] = me
    backends = {i: m.url for i, m in instances.items()} | (extra or {})
    front = Front(backends, balancing=balancing)
    await front.listen(0)
    return Setup(front, instances)


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    made = await start(["a", "b", "c"])
    yield made
    await made.front.stop()
    for me in made.instances.values():
        assert me.server is not None
        me.server.stop()


async def fetch(url: str, **kwargs: Any) -> HTTPResponse:
    return await AsyncHTTPClient().fetch(HTTPRequest(url, request_timeout=10, **kwargs),
                                         raise_error=False)


def body(response: HTTPResponse) -> dict[str, object]:
    result: dict[str, object] = orjson.loads(response.body)
    return result


async def test_round_robin_spreads_requests(setup: Setup) -> None:
    served = [str(body(await fetch(f"{setup.url}/whoami"))["id"]) for _ in range(6)]
    assert sorted(served) == ["a", "a", "b", "b", "c", "c"]
    assert served[:3] != served[:1] * 3


async def test_forwards_headers_and_relays_the_answer(setup: Setup) -> None:
    response = await fetch(f"{setup.url}/whoami", headers={"fly-replay-src": "instance=forged"})
    assert response.code == 200
    seen_there = body(response)
    assert seen_there["src"] is None  # a client cannot pretend to be a replay
    assert seen_there["xff"] == "127.0.0.1"
    assert seen_there["host"] == f"127.0.0.1:{setup.front.port}"
    assert response.headers.get_list("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers["X-Front-Instance"] == seen_there["id"]


async def test_http_replay_goes_to_the_named_instance_with_fly_replay_src(setup: Setup) -> None:
    payload = b"x" * 5000
    for _ in range(3):  # whichever instance it lands on first
        response = await fetch(f"{setup.url}/home/b", method="POST", body=payload)
        assert response.code == 200, response.body
        served = body(response)
        assert served["id"] == "b" and served["method"] == "POST"
        assert served["sha"] == hashlib.sha256(payload).hexdigest()
    assert setup.front.stats.replays == 2  # two of the three landed elsewhere first
    response = await fetch(f"{setup.url}/home/c", method="PUT", body=b"{}")
    src = body(response)["src"]
    if src is not None:
        fields = dict(f.split("=", 1) for f in str(src).split(";"))
        assert fields["instance"] in ("a", "b") and fields["region"] == "local"
        assert fields["state"] == "homing" and int(fields["t"]) > 0
    # The replay's first answer (409 "not here") never reaches the client.
    assert b"not here" not in response.body


async def test_a_request_over_1_mb_is_not_replayed(setup: Setup) -> None:
    big = b"y" * (REPLAY_MAX_BODY_BYTES + 1)
    codes = []
    for _ in range(3):
        response = await fetch(f"{setup.url}/home/a", method="POST", body=big)
        codes.append(response.code)
        if response.code == 502:
            assert b"over 1 MB" in response.body
        else:  # landed on the owner: served, nothing to replay
            assert body(response)["sha"] == hashlib.sha256(big).hexdigest()
    assert sorted(codes) == [200, 502, 502]
    exactly = b"z" * REPLAY_MAX_BODY_BYTES
    for _ in range(3):
        assert (await fetch(f"{setup.url}/home/a", method="POST", body=exactly)).code == 200


async def test_websocket_upgrade_is_replayed_and_not_upgraded_elsewhere(setup: Setup) -> None:
    for _ in range(3):
        socket = await websocket_connect(f"ws://127.0.0.1:{setup.front.port}/ws/c")
        hello = orjson.loads(await socket.read_message() or b"{}")
        assert hello["id"] == "c" and socket.headers is not None
        assert socket.headers["X-Front-Instance"] == "c"
        big = b"\x01" * (300 * 1024)  # several of the pipe's chunks, both ways
        await socket.write_message(big, binary=True)
        assert await socket.read_message() == big
        await socket.write_message("hi")
        assert await socket.read_message() == "hi"
        socket.close()
    assert setup.instances["c"].upgrades == 3
    assert setup.instances["a"].upgrades == setup.instances["b"].upgrades == 0
    assert setup.front.stats.replays == 2
    await wait_for(lambda: setup.front.stats.open_pipes == 0)


async def test_a_closed_pipe_closes_the_other_side(setup: Setup) -> None:
    socket = await websocket_connect(f"ws://127.0.0.1:{setup.front.port}/ws/a")
    await socket.read_message()
    assert setup.front.stats.open_pipes == 1
    for stream in list(setup.front.pipes):
        peer = stream.socket.getpeername() if stream.socket is not None else None
        if peer is not None and peer[1] == setup.instances["a"].port:
            stream.close()  # the instance goes away
    assert await asyncio.wait_for(socket.read_message(), 5) is None
    await wait_for(lambda: setup.front.stats.open_pipes == 0)


async def test_elsewhere_excludes_the_responder(setup: Setup) -> None:
    for _ in range(6):
        response = await fetch(f"{setup.url}/elsewhere")
        served = body(response)
        src = dict(f.split("=", 1) for f in str(served["src"]).split(";"))
        assert served["id"] != src["instance"]


async def test_replays_are_bounded(setup: Setup) -> None:
    response = await fetch(f"{setup.url}/loop")
    assert response.code == 502 and b"too many replays" in response.body


async def test_replay_to_an_unreachable_instance_falls_back(setup: Setup) -> None:
    response = await fetch(f"{setup.url}/fallback/gone")
    served = body(response)
    assert response.code == 200 and "instance=gone" in str(served["failed"])
    assert str(served["src"]).startswith(f"instance={served['id']};")
    response = await fetch(f"{setup.url}/home/gone")
    assert response.code == 502 and b"gone" in response.body


async def test_an_unreachable_instance_is_skipped_for_new_requests() -> None:
    from whatsease.storage.launcher import free_port

    made = await start(["a", "b"], extra={"dead": f"http://127.0.0.1:{free_port()}"})
    try:
        served = [body(await fetch(f"{made.url}/whoami"))["id"] for _ in range(6)]
        assert set(served) == {"a", "b"}
        assert made.front.stats.connect_failures >= 1
    finally:
        await made.front.stop()


async def test_chunked_answers_and_least_connections() -> None:
    made = await start(["a", "b"], balancing="least-connections")
    try:
        response = await fetch(f"{made.url}/chunked")
        assert response.body == b"one,two,three"
        socket = await websocket_connect(f"ws://127.0.0.1:{made.front.port}/ws/a")
        await socket.read_message()
        # "a" holds a socket: new requests go to "b" while it does.
        served = [body(await fetch(f"{made.url}/whoami"))["id"] for _ in range(4)]
        assert served == ["b"] * 4
        socket.close()
    finally:
        await made.front.stop()


def test_parse_replay_and_source() -> None:
    replay = parse_replay('instance=abc; state="x y";timeout=800ms;fallback=prefer_self')
    assert (replay.instance, replay.state, replay.timeout, replay.fallback) == (
        "abc", "x y", 0.8, "prefer_self")
    assert parse_replay("region=\"sjc,any\";elsewhere=true").elsewhere
    with pytest.raises(ReplayError):
        parse_replay("instance")
    with pytest.raises(ReplayError):
        parse_replay("instance=a;timeout=soon")
    assert replay_source("a", "local", "", now=1.5) == "instance=a;region=local;t=1500000"


def test_backends_file_is_reread_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "backends"
    path.write_text("a=http://127.0.0.1:1\n# comment\nbad line\n")
    backends = FileBackends(path)
    assert backends.current() == {"a": "http://127.0.0.1:1"}
    path.write_text("a=http://127.0.0.1:1,b=http://127.0.0.1:22\n")
    assert backends.current() == {"a": "http://127.0.0.1:1", "b": "http://127.0.0.1:22"}
    path.unlink()
    assert backends.current() == {"a": "http://127.0.0.1:1", "b": "http://127.0.0.1:22"}
    assert parse_backends("x=ftp://nope") == {}


async def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)

