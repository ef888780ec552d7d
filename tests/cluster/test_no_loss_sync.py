"""Sync alone brings every acknowledged message, whichever instance wrote it.

Senders homed on two instances write to one recipient who keeps syncing from
her cursor on the third. Her live frames are ignored on purpose: the fast path
may fail (a peer killed, a ring that moved), and then sync is all there is.

Ids (and so ``rev``) are ObjectIds: four bytes of seconds, then five bytes
drawn once per process, then a counter. Within one second two instances'
ids sort by those random bytes, not by time. The instances are therefore
cast by their random bytes: the recipient syncs on the instance whose ids
sort highest, and the two senders write from the others, so that a cursor
taken past one sender's message can sort above a message the other sender
stores a moment later — the order in which a cursor that trusts ids loses it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

from tests.cluster.conftest import connect_home, homed_user
from tests.realtime.wsclient import WS, ClosedError
from tests.support import User
from whatsease.cluster.local import LocalCluster
from whatsease.cluster.routing import WS_4012_MOVED

SENDERS_PER_INSTANCE = 2
SEND_SECS = 4.0
# Each sender stays under the per-socket send rate (20 a second).
SEND_EVERY_SECS = 0.06
# The reader stays under the per-socket rate of other frames (100 a second, a
# burst of 400): unpaced on a fast machine, her syncs were refused as rate
# limited and the test waited for a reply that never came.
SYNC_EVERY_SECS = 0.02


def _random_bytes(message_id: str) -> str:
    """The per-process part of an ObjectId (bytes 4-8)."""
    return message_id[8:18]


def _instance_order(cluster: LocalCluster) -> list[str]:
    """The members, ordered by the per-process bytes of the ids each one makes."""
    target, _ = homed_user(cluster, cluster.ids[0], "probe")
    made: dict[str, str] = {}
    for member in cluster.ids:
        user, route = homed_user(cluster, member, "probe")
        ws = connect_home(cluster, user, route)
        ack = ws.call({"type": "send", "client_id": "probe", "recipient": target.email,
                       "content": "which process am I"}, "ack")
        made[member] = _random_bytes(ack["message"]["message_id"])
        ws.close()
    return sorted(cluster.ids, key=made.__getitem__)


def _client_id_is(client_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame.get("client_id") == client_id


def _send_loop(cluster: LocalCluster, user: User, route: str, ws: WS, recipient: str,
               prefix: str, acked: list[str], stop: threading.Event,
               errors: list[str]) -> None:
    count = 1
    try:
        while not stop.is_set():
            client_id = f"{prefix}-{count}"
            try:
                ack = ws.call({"type": "send", "client_id": client_id,
                               "recipient": recipient, "content": f"{prefix} {count}"}, "ack",
                              where=_client_id_is(client_id))
            except ClosedError as exc:
                # Told to reconnect (a link to a peer was lost on a busy machine):
                # as a client does, reconnect and send the same message again.
                if exc.code != WS_4012_MOVED:
                    raise
                ws = connect_home(cluster, user, route)
                continue
            acked.append(ack["message"]["message_id"])
            count += 1
            ws.backlog.clear()
            time.sleep(SEND_EVERY_SECS)
    except Exception as exc:  # reported by the test, not lost in a thread
        errors.append(f"{prefix}: {exc!r}"[:300])
    finally:
        ws.close()


def _sync_all(ws: WS, cursor: str | None, synced: Counter[str]) -> str | None:
    """Sync from ``cursor`` until no page says more; returns the new cursor."""
    while True:
        page = ws.call({"type": "sync", "after": cursor}, "synced", timeout=10)
        ws.backlog[:] = [f for f in ws.backlog if f.get("type") == "synced"]
        synced.update(m["message_id"] for m in page["messages"])
        cursor = page["cursor"] or cursor
        if not page["more"]:
            return cursor


def test_a_recipient_syncing_on_a_third_instance_misses_nothing(
        cluster: LocalCluster) -> None:
    order = _instance_order(cluster)
    reader_member, writer_members = order[-1], order[:-1]
    reader, reader_route = homed_user(cluster, reader_member, "reader")
    senders: list[tuple[User, str, WS]] = []
    for member in writer_members:
        for _ in range(SENDERS_PER_INSTANCE):
            user, route = homed_user(cluster, member, "writer")
            senders.append((user, route, connect_home(cluster, user, route)))
    inbox = [connect_home(cluster, reader, reader_route)]
    synced: Counter[str] = Counter()

    def sync_from(cursor: str | None) -> str | None:
        # Told to reconnect, the reader does as a client does: a new socket, and
        # sync again from the same cursor (nothing else brings what was missed).
        while True:
            try:
                return _sync_all(inbox[0], cursor, synced)
            except ClosedError as exc:
                if exc.code != WS_4012_MOVED:
                    raise
                inbox[0] = connect_home(cluster, reader, reader_route)

    cursor = sync_from(None)
    stop = threading.Event()
    acked: list[list[str]] = [[] for _ in senders]
    errors: list[str] = []
    threads = [threading.Thread(target=_send_loop, daemon=True,
                                args=(cluster, user, route, ws, reader.email, f"w{i}",
                                      acked[i], stop, errors))
               for i, (user, route, ws) in enumerate(senders)]
    for thread in threads:
        thread.start()
    syncs = 0
    until = time.monotonic() + SEND_SECS
    while time.monotonic() < until:
        cursor = sync_from(cursor)
        syncs += 1
        time.sleep(SYNC_EVERY_SECS)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
        assert not thread.is_alive()
    assert not errors, errors
    cursor = sync_from(cursor)  # the last one, after every ack
    sent = [mid for ids in acked for mid in ids]
    assert len(sent) > 20 and syncs > 20, (len(sent), syncs)
    missed = [mid for mid in sent if mid not in synced]
    assert not missed, f"sync never brought {len(missed)} of {len(sent)} acknowledged messages"
    inbox[0].close()
