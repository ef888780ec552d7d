"""/ws frame counters, counted in plain ints, are exact when /metrics is scraped."""

from __future__ import annotations

from tests.realtime.wsclient import connect
from tests.support import Client, ServerThread, register

PINGS = 37  # under the socket's burst of 400 frames other than sends


def _count(port: int, name: str, kind: str) -> float:
    key = f'{name}{{type="{kind}"}} '
    for line in Client(port).get("/metrics").body.decode().splitlines():
        if line.startswith(key):
            return float(line.split()[-1])
    return 0.0


def test_every_frame_in_and_out_is_in_the_next_scrape(server: ServerThread) -> None:
    alice, bob = register(server.port, "alice"), register(server.port, "bob")
    a = connect(server, alice)
    b = connect(server, bob)
    names = (("whatsease_ws_frames_in_total", "ping"), ("whatsease_ws_frames_out_total", "pong"),
             ("whatsease_ws_frames_in_total", "send"), ("whatsease_ws_frames_out_total", "ack"),
             ("whatsease_ws_frames_out_total", "message"))
    before = {n: _count(server.port, *n) for n in names}
    for i in range(PINGS):
        a.call({"type": "ping", "ref": f"p{i}"}, "pong")
    a.call({"type": "send", "client_id": "counted", "recipient": bob.email, "content": "x"},
           "ack")
    b.expect("message")
    after = {n: _count(server.port, *n) for n in names}
    # Only this test's sockets send ping frames: the deltas are exact, not "at least".
    assert after[names[0]] - before[names[0]] == PINGS
    assert after[names[1]] - before[names[1]] == PINGS
    assert after[names[2]] - before[names[2]] == 1
    assert after[names[3]] - before[names[3]] == 1
    # The new message went to bob's socket and to alice's (her copy for other tabs is
    # skipped only on the socket that sent it): bob's one frame at least.
    assert after[names[4]] - before[names[4]] >= 1
    a.close()
    b.close()
