"""Recovery from a crash: the others take a killed instance out as soon as its port refuses.

Its heartbeats stopping is the slow proof (``WHATSEASE_CLUSTER_HEARTBEAT_TIMEOUT``);
a refused connection on its cluster port is the fast one: nothing listens there
any more. Until the ring drops it, every upgrade for a user it homed is replayed
to it and fails.
"""

from __future__ import annotations

import secrets
import time
from pathlib import Path

from tests.support import Client, wait_for
from whatsease.cluster.local import LocalCluster

# Far longer than the wait below: only the refused link can explain a fast drop.
SLOW_HEARTBEAT = {"WHATSEASE_BOT_SEMANTIC": "false", "WHATSEASE_LOG_LEVEL": "INFO",
                  "WHATSEASE_CLUSTER_HEARTBEAT_TIMEOUT": "30",
                  "WHATSEASE_CLUSTER_POLL_INTERVAL": "0.5"}


def _members(port: int) -> float:
    for line in Client(port).get("/metrics").body.decode().splitlines():
        if line.startswith("whatsease_cluster_members "):
            return float(line.split()[-1])
    raise AssertionError("no whatsease_cluster_members in /metrics")


def test_a_killed_instance_leaves_every_ring_within_seconds_not_the_heartbeat_timeout(
        mongo_uri: str, tmp_path: Path) -> None:
    with LocalCluster(tmp_path, 3, mongodb_uri=mongo_uri, db_name=f"c{secrets.token_hex(5)}",
                      bcrypt_rounds=4, env=SLOW_HEARTBEAT) as cluster:
        ports = cluster.ports
        wait_for(lambda: all(_members(ports[i]) == 3 for i in ("i2", "i3")) or None,
                 timeout=15, what="every instance to see three members")
        killed = time.monotonic()
        cluster.kill("i1")
        # Half the heartbeat timeout: room for a loaded machine, and still only the
        # refused link can explain the drop.
        wait_for(lambda: all(_members(ports[i]) == 2 for i in ("i2", "i3")) or None,
                 timeout=15, what="i2 and i3 to drop the killed i1")
        assert time.monotonic() - killed < 15
        wait_for(lambda: "i1 (refused the link)" in cluster.instance("i2").log_path.read_text(),
                 timeout=10, what="i2 to log why it dropped i1")



def test_a_new_instance_keeps_the_members_it_dials_while_it_waits_to_be_listed(
        mongo_uri: str, tmp_path: Path) -> None:
    """The members do not dial an instance they do not list yet; their acks on its own
    links keep them in its ring, so it does not start with a ring of itself alone."""
    env = {**SLOW_HEARTBEAT, "WHATSEASE_CLUSTER_HEARTBEAT_TIMEOUT": "3"}
    with LocalCluster(tmp_path, 2, mongodb_uri=mongo_uri, db_name=f"c{secrets.token_hex(5)}",
                      bcrypt_rounds=4, env=env) as cluster:
        standby = cluster.add(listed=False)
        wait_for(lambda: _members(standby.port) == 3 or None, timeout=10,
                 what="the new instance's links to be up")
        for _ in range(7):  # over twice the heartbeat timeout, once its links are up
            time.sleep(1)
            assert _members(standby.port) == 3
