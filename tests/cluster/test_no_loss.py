"""No loss, no duplicates: chat traffic across a cluster while a member is killed and one joins.

Clients behave like the web client behind Fly's proxy: they open the socket on
any live instance with their routing key and follow ``fly-replay``; after
every ``ready`` they sync from their cursor (the one of their last ``synced``
reply, kept across reconnections, as the web client does); unacknowledged
sends are retried with the same client id. At the end every acknowledged message must have
reached its recipient, and no socket may have been sent the same message twice.
"""

from __future__ import annotations

import http.client
import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import websocket

from tests.cluster.conftest import FAST, connect_home, homed_user, register_on
from tests.realtime.wsclient import WS, ClosedError
from tests.support import User, wait_for
from whatsease.cluster.local import LocalCluster

USERS = 10
SEND_EVERY_SECS = 0.1


@dataclass
class Chatter:
    user: User
    route: str
    peer: str = ""
    acked: set[str] = field(default_factory=set)
    received: set[str] = field(default_factory=set)
    live: set[str] = field(default_factory=set)
    live_duplicates: int = 0
    connections: int = 0
    moved: int = 0
    cursor: str | None = None
    errors: list[str] = field(default_factory=list)


def _owner_by_replay(cluster: LocalCluster, route: str) -> WS | None:
    """Open the socket the way Fly's proxy would: land anywhere, follow fly-replay once."""
    ports = list(cluster.ports.values())
    random.shuffle(ports)
    for port in ports:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", f"/ws?route={route}", headers={
                "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="})
            response = conn.getresponse()
            replay = response.getheader("fly-replay") or ""
            conn.close()
        except OSError:
            continue
        target, headers = port, []
        if response.status == 307 and replay.startswith("instance="):
            # One look at the ports: the main thread may kill the member in between.
            member_port = cluster.ports.get(replay.removeprefix("instance="))
            if member_port is None:
                continue
            target, headers = member_port, ["fly-replay-src: instance=x"]
        try:
            return WS(websocket.create_connection(
                f"ws://127.0.0.1:{target}/ws?route={route}", timeout=3,
                origin=f"http://127.0.0.1:{target}", header=headers))
        except (OSError, websocket.WebSocketException):
            continue
    return None


def _absorb(chatter: Chatter, ws: WS, seen_here: set[str]) -> None:
    for frame in [f for f in ws.backlog if f.get("type") == "message"]:
        ws.backlog.remove(frame)
        mid = frame["message"]["message_id"]
        if mid in seen_here:
            chatter.live_duplicates += 1
        seen_here.add(mid)
        chatter.received.add(mid)
        chatter.live.add(mid)
    ws.backlog[:] = [f for f in ws.backlog if f.get("type") in ("ack", "synced")]


def _connect_and_sync(cluster: LocalCluster, chatter: Chatter,
                      give_up_after: float = 60.0) -> tuple[WS, set[str]]:
    deadline = time.monotonic() + give_up_after
    while True:
        if time.monotonic() > deadline:
            raise AssertionError(f"{chatter.user.email} could not reconnect: {chatter.errors[-3:]}")
        ws = _owner_by_replay(cluster, chatter.route)
        if ws is None:
            time.sleep(0.2)
            continue
        try:
            ws.call({"type": "auth", "token": chatter.user.access_token}, "ready")
            chatter.connections += 1
            seen_here: set[str] = set()
            while True:  # sync from the cursor until no page says more
                synced = ws.call({"type": "sync", "after": chatter.cursor}, "synced",
                                 timeout=5)
                chatter.received.update(m["message_id"] for m in synced["messages"])
                chatter.cursor = synced["cursor"] or chatter.cursor
                _absorb(chatter, ws, seen_here)
                if not synced["more"]:
                    break
            return ws, seen_here
        except (ClosedError, AssertionError, OSError, websocket.WebSocketException) as exc:
            chatter.errors.append(repr(exc)[:200])
            if isinstance(exc, ClosedError) and exc.code == 4012:
                chatter.moved += 1
            ws.close()
            time.sleep(random.uniform(0, 0.3))


def _client_id_is(client_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame.get("client_id") == client_id


def _chat(cluster: LocalCluster, chatter: Chatter, stop: threading.Event) -> None:
    ws, seen_here = _connect_and_sync(cluster, chatter)
    pending: str | None = None
    count = 0
    while not stop.is_set():
        if pending is None:
            count += 1
            pending = f"{chatter.route}-{count}"
        try:
            ws.send({"type": "send", "client_id": pending, "recipient": chatter.peer,
                     "content": f"message {count}"})
            ack = ws.expect("ack", _client_id_is(pending), timeout=3)
            chatter.acked.add(ack["message"]["message_id"])
            pending = None
            _absorb(chatter, ws, seen_here)
            deadline = time.monotonic() + SEND_EVERY_SECS
            while time.monotonic() < deadline:
                ws.expect_none("nothing", timeout=max(0.0, deadline - time.monotonic()))
            _absorb(chatter, ws, seen_here)
        except (ClosedError, AssertionError, OSError, websocket.WebSocketException) as exc:
            chatter.errors.append(repr(exc)[:200])
            if isinstance(exc, ClosedError) and exc.code == 4012:
                chatter.moved += 1
            ws.close()
            ws, seen_here = _connect_and_sync(cluster, chatter)
    # The end: one last sync picks up whatever the fast path did not bring.
    try:
        _absorb(chatter, ws, seen_here)
        ws.close()
    except OSError:
        pass
    ws, _ = _connect_and_sync(cluster, chatter)
    ws.close()


@pytest.fixture
def chaos_cluster(mongo_uri: str, tmp_path: Path) -> Any:
    with LocalCluster(tmp_path / "chaos", 3, mongodb_uri=mongo_uri,
                      db_name=f"x{secrets.token_hex(5)}", bcrypt_rounds=4,
                      env=FAST) as running:
        yield running


def test_kill_and_join_mid_traffic_lose_nothing_and_show_nothing_twice(
        chaos_cluster: LocalCluster) -> None:
    cluster = chaos_cluster
    chatters = []
    first = cluster.instance("i1")
    assert first.running, f"i1 exited ({first.process.returncode}):\n{first.log_tail()}"
    for _ in range(USERS):
        user, pair = register_on(first.port, "chaos")
        chatters.append(Chatter(user, pair["route"]))
    for a, b in zip(chatters[0::2], chatters[1::2], strict=True):
        a.peer, b.peer = b.user.email, a.user.email
    stop = threading.Event()
    threads = [threading.Thread(target=_chat, args=(cluster, c, stop), daemon=True)
               for c in chatters]
    for thread in threads:
        thread.start()

    def acked() -> int:
        return sum(len(c.acked) for c in chatters)

    # The scenario's phases last at least this long; traffic must also have flowed on
    # every pair before the kill, and go on after the join for long enough to count,
    # however slowly a loaded machine lets it run.
    time.sleep(2)
    wait_for(lambda: all(len(c.acked) >= 5 for c in chatters), timeout=60,
             what="every chatter's first acknowledged messages")
    cluster.kill("i2")
    time.sleep(5)
    cluster.add()
    time.sleep(4)
    enough = max(acked() + USERS * 2, USERS * 20 + 1)
    wait_for(lambda: acked() >= enough, timeout=120, what="traffic after the join")
    stop.set()
    for thread in threads:
        thread.join(timeout=120)
        assert not thread.is_alive()
    by_email = {c.user.email: c for c in chatters}
    sent = sum(len(c.acked) for c in chatters)
    assert sent > USERS * 20, (sent, [c.errors[:3] for c in chatters])
    for chatter in chatters:
        lost = by_email[chatter.peer].acked - chatter.received
        assert not lost, f"{chatter.user.email} never got {len(lost)} messages"
        assert chatter.live_duplicates == 0
    # The fast path carried nearly all of it; sync after a reconnect only the rest.
    live = sum(len(by_email[c.peer].acked & c.live) for c in chatters)
    assert live >= 0.8 * sent, (live, sent)
    print(f"sent {sent}, live {live}; reconnections {sum(c.connections - 1 for c in chatters)}; "
          f"moved {sum(c.moved for c in chatters)}; errors {sum(len(c.errors) for c in chatters)}")
    reconnects = Counter(c.connections > 1 for c in chatters)
    assert reconnects[True] > 0  # the kill and the join did move someone


def test_a_member_that_shuts_down_leaves_the_ring_at_once(mongo_uri: str, tmp_path: Path) -> None:
    # A long heartbeat timeout: only the goodbye can take i3 out within the test's bound.
    env = {**FAST, "WHATSEASE_CLUSTER_HEARTBEAT_TIMEOUT": "20"}
    with LocalCluster(tmp_path / "leave", 3, mongodb_uri=mongo_uri,
                      db_name=f"l{secrets.token_hex(5)}", bcrypt_rounds=4,
                      env=env) as cluster:
        user, route = homed_user(cluster, "i3", "leaver")
        ws = connect_home(cluster, user, route)
        stopping = threading.Thread(target=cluster.terminate, args=("i3",), daemon=True)
        stopping.start()
        with pytest.raises(ClosedError) as closed:
            ws.expect("message", timeout=10)
        assert closed.value.code == 1012
        started = time.monotonic()
        chatter = Chatter(user, route)
        # Without the goodbye the others would send it to i3 until its heartbeats
        # time out (20 s); half of that leaves room for a loaded machine.
        again, _ = _connect_and_sync(cluster, chatter, give_up_after=10.0)
        assert time.monotonic() - started < 10.0
        again.close()
        stopping.join(timeout=30)
