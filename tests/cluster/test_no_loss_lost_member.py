"""A member killed between storing a message and forwarding it: the recipient still gets it.

The message is written straight into the shared database as the killed
instance's last insert, whose frame never left it (with SIGKILL the moment
can't be hit reliably otherwise). The recipient's socket lives on a survivor:
nothing would make it sync before its next reconnection, so the survivor
must close it with 4012 once the member is lost.
"""

from __future__ import annotations

from tests.cluster.conftest import (
    TOLD_WITHIN_SECS,
    connect_home,
    homed_user,
    open_ws,
    store_unforwarded,
)
from tests.realtime.wsclient import WS
from whatsease.cluster.local import LocalCluster


def _sync_ids(ws: WS, cursor: str | None) -> set[str]:
    got: set[str] = set()
    while True:
        page = ws.call({"type": "sync", "after": cursor}, "synced", timeout=10)
        got.update(m["message_id"] for m in page["messages"])
        cursor = page["cursor"] or cursor
        if not page["more"]:
            return got


def test_the_recipients_of_a_lost_members_last_messages_are_told_to_sync(
        three_of_our_own: LocalCluster) -> None:
    cluster = three_of_our_own
    doomed_sender, _ = homed_user(cluster, "i2", "doomed")
    owed, owed_route = homed_user(cluster, "i3", "owed")
    owed_ws = connect_home(cluster, owed, owed_route)
    cursor = owed_ws.call({"type": "sync", "after": None}, "synced")["cursor"]
    lost_id = store_unforwarded(cluster, doomed_sender.email, owed.email)

    cluster.kill("i2")
    assert owed_ws.expect_close(timeout=TOLD_WITHIN_SECS) == 4012

    again = open_ws(cluster.ports["i3"], route=owed_route)  # i2's loss moved no i3 key
    again.call({"type": "auth", "token": owed.access_token}, "ready")
    assert lost_id in _sync_ids(again, cursor)
    again.close()
