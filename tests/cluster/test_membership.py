"""Membership: Fly's DNS answer (from a real local DNS server), the static list, heartbeats."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.cluster.dns_server import TxtServer
from whatsease.cluster.membership import (
    MAX_MEMBERS,
    DiscoveryError,
    FlyDiscovery,
    Member,
    Membership,
    StaticDiscovery,
    dns_txt_resolver,
    membership_from_config,
    parse_fly_vms,
    watch_members,
)
from whatsease.cluster.ring import Ring
from whatsease.config import Config
from whatsease.errors import ConfigError

APP = "whatsease-test"
VMS = f"vms.{APP}.internal"
ME = Member("3d8d9e1bc92e89", f"http://3d8d9e1bc92e89.vm.{APP}.internal:8080", "ams")


@pytest.fixture
async def dns_server() -> AsyncIterator[TxtServer]:
    server = TxtServer()
    await server.start()
    yield server
    server.close()


def fly(server: TxtServer) -> FlyDiscovery:
    return FlyDiscovery(APP, 8080, dns_txt_resolver("127.0.0.1", server.port, timeout=1.0))


def test_fly_answer_is_parsed_into_members_at_their_private_addresses() -> None:
    found = parse_fly_vms("3d8d9e1bc92e89 ams, e784079b449d38 fra,148ed127a03d89", APP, 8081)
    assert [(m.id, m.region, m.url) for m in found] == [
        ("3d8d9e1bc92e89", "ams", f"http://3d8d9e1bc92e89.vm.{APP}.internal:8081"),
        ("e784079b449d38", "fra", f"http://e784079b449d38.vm.{APP}.internal:8081"),
        ("148ed127a03d89", "", f"http://148ed127a03d89.vm.{APP}.internal:8081"),
    ]


def test_bad_entries_are_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, "whatsease.cluster"):
        found = parse_fly_vms("good1 ams,bad/id ams,a b c,,good2 fra", APP, 8080)
    assert [m.id for m in found] == ["good1", "good2"]
    assert caplog.text.count("skipped a bad entry") == 2


def test_an_answer_listing_too_many_machines_is_refused() -> None:
    text = ",".join(f"m{i} ams" for i in range(MAX_MEMBERS + 1))
    with pytest.raises(DiscoveryError, match="more than"):
        parse_fly_vms(text, APP, 8080)


async def test_fly_discovery_reads_txt_from_a_real_dns_server(dns_server: TxtServer) -> None:
    # Enough machines to pass 255 bytes: the record then arrives as several strings.
    ids = [f"{i:014x}" for i in range(20)]
    text = ",".join(f"{mid} ams" for mid in ids)
    dns_server.records[VMS] = [[text[:255], text[255:]]]
    found = await fly(dns_server).members()
    assert [m.id for m in found] == ids
    assert dns_server.queries == 1


async def test_fly_discovery_fails_on_no_answer_or_an_empty_one(dns_server: TxtServer) -> None:
    with pytest.raises(DiscoveryError, match="NXDOMAIN"):
        await fly(dns_server).members()
    dns_server.records[VMS] = [[""]]
    with pytest.raises(DiscoveryError, match="no machines"):
        await fly(dns_server).members()


def test_members_enter_and_leave_with_the_list(caplog: pytest.LogCaptureFixture) -> None:
    changes: list[tuple[int, str]] = []
    ms = Membership(ME, heartbeat_timeout=10, now=0,
                    on_change=lambda ring, why: changes.append((ring.generation, why)))
    assert ms.ring.members == {ME.id} and ms.ring.generation == 1
    b, c = Member("b", "http://b:1"), Member("c", "http://c:1")
    with caplog.at_level(logging.INFO, "whatsease.cluster"):
        ring = ms.update([b, c], now=1, reason="fly dns")
    assert ring is not None and ring.members == {ME.id, "b", "c"} and ring.generation == 2
    assert "ring generation 2: +b (listed by fly dns), +c (listed by fly dns)" in caplog.text
    assert ms.update([c, b, ME], now=2, reason="fly dns") is None  # nothing changed
    ring = ms.update([b], now=3, reason="fly dns")
    assert ring is not None and ring.members == {ME.id, "b"}
    assert changes[-1] == (3, "-c (no longer listed by fly dns)")
    # Self stays even when the list forgets it (a new machine DNS does not know yet).
    ms.update([], now=4, reason="fly dns")
    assert ms.ring.members == {ME.id}


def test_a_silent_member_is_taken_out_after_the_timeout_and_put_back_when_seen(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "whatsease.cluster")
    ms = Membership(ME, heartbeat_timeout=10, now=0)
    ms.update([Member("b", "http://b:1"), Member("c", "http://c:1")], now=0, reason="static list")
    ms.seen("c", 8)
    assert ms.check(10) is None  # exactly at the limit: still in
    ring = ms.check(10.5)
    assert ring is not None and ring.members == {ME.id, "c"} and ms.down == {"b"}
    assert "-b (no heartbeat for 10.5 s)" in caplog.text
    # Keys b held now have their previous owner: the one sockets move from.
    moved = [k for k in (f"user{i}" for i in range(300)) if ring.previous_owner(k)]
    assert moved and all(ring.previous_owner(k) == "b" for k in moved)
    assert ms.check(11) is None  # already out: no new generation
    ms.seen(ME.id, 11)
    ring = ms.seen("b", 12)
    assert ring is not None and ring.members == {ME.id, "b", "c"} and not ms.down
    assert "+b (heartbeat again after 12.0 s)" in caplog.text
    assert ms.check(12) is None
    assert ms.check(18.6) is not None and ms.down == {"c"}  # c last seen at 8


def test_heartbeats_from_unlisted_instances_are_ignored() -> None:
    ms = Membership(ME, heartbeat_timeout=10, now=0)
    assert ms.seen("stranger", 1) is None
    assert ms.ring.members == {ME.id}
    # Self is never taken out, whatever its own heartbeats say.
    assert ms.check(1000) is None


def test_a_late_heartbeat_does_not_turn_the_clock_back() -> None:
    ms = Membership(ME, heartbeat_timeout=10, now=0)
    ms.update([Member("b", "http://b:1")], now=0, reason="static list")
    ms.seen("b", 9)
    ms.seen("b", 3)  # delivered out of order
    assert ms.check(15) is None


async def test_watching_fly_dns_follows_machines_coming_and_going(dns_server: TxtServer) -> None:
    generations: asyncio.Queue[Ring] = asyncio.Queue()
    ms = Membership(ME, heartbeat_timeout=60, now=0,
                    on_change=lambda ring, why: generations.put_nowait(ring))
    dns_server.records[VMS] = [[f"{ME.id} ams,e784079b449d38 fra"]]
    stop = asyncio.Event()
    task = asyncio.create_task(
        watch_members(ms, fly(dns_server), reason="fly dns", interval=0.05, stop=stop)
    )
    try:
        ring = await asyncio.wait_for(generations.get(), timeout=10)
        assert ring.members == {ME.id, "e784079b449d38"}
        # A failing DNS keeps the last list.
        dns_server.failing = True
        dns_server.answered.clear()
        for _ in range(3):
            await asyncio.wait_for(dns_server.answered.wait(), timeout=10)
            dns_server.answered.clear()
        assert ms.ring.members == {ME.id, "e784079b449d38"}
        dns_server.failing = False
        dns_server.records[VMS] = [[f"{ME.id} ams,148ed127a03d89 ams"]]
        ring = await asyncio.wait_for(generations.get(), timeout=10)
        assert ring.members == {ME.id, "148ed127a03d89"}
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert task.done() and task.exception() is None


async def test_watching_takes_silent_members_out() -> None:
    clock = [0.0]
    whys: asyncio.Queue[str] = asyncio.Queue()
    ms = Membership(ME, heartbeat_timeout=5, now=0,
                    on_change=lambda ring, why: whys.put_nowait(why))
    static = StaticDiscovery([ME, Member("b", "http://127.0.0.1:1")])
    stop = asyncio.Event()
    task = asyncio.create_task(watch_members(
        ms, static, reason="static list", interval=0.02, stop=stop, clock=lambda: clock[0]
    ))
    try:
        assert await asyncio.wait_for(whys.get(), timeout=10) == "+b (listed by static list)"
        clock[0] = 6.0
        assert await asyncio.wait_for(whys.get(), timeout=10) == "-b (no heartbeat for 6.0 s)"
        assert ms.ring.members == {ME.id}
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)


def test_membership_from_config_static() -> None:
    env = {
        "WHATSEASE_CLUSTER": "static",
        "WHATSEASE_CLUSTER_MEMBERS": "a=http://127.0.0.1:8081, b=http://127.0.0.1:8082/",
        "WHATSEASE_CLUSTER_SELF": "b",
    }
    config = Config.from_env(env)
    assert config.cluster_members == (("a", "http://127.0.0.1:8081"), ("b", "http://127.0.0.1:8082"))
    built = membership_from_config(config, env, now=0)
    assert built is not None
    ms, discovery, reason = built
    assert ms.me == Member("b", "http://127.0.0.1:8082") and reason == "static list"
    assert isinstance(discovery, StaticDiscovery)


async def test_membership_from_config_fly(dns_server: TxtServer) -> None:
    env = {"WHATSEASE_CLUSTER": "fly", "WHATSEASE_CLUSTER_PORT": "9090",
           "FLY_MACHINE_ID": ME.id, "FLY_APP_NAME": APP, "FLY_REGION": "ams"}
    built = membership_from_config(
        Config.from_env(env), env, now=0,
        resolver=dns_txt_resolver("127.0.0.1", dns_server.port, timeout=1.0),
    )
    assert built is not None
    ms, discovery, reason = built
    assert ms.me == Member(ME.id, f"http://{ME.id}.vm.{APP}.internal:9090", "ams")
    assert reason == f"fly dns {VMS}"
    dns_server.records[VMS] = [[f"{ME.id} ams"]]
    assert [m.id for m in await discovery.members()] == [ME.id]


def test_cluster_off_is_the_default_and_builds_nothing() -> None:
    config = Config.from_env({})
    assert config.cluster == "off"
    assert membership_from_config(config, {}, now=0) is None


@pytest.mark.parametrize(("env", "message"), [
    ({"WHATSEASE_CLUSTER": "static"}, "needs WHATSEASE_CLUSTER_MEMBERS"),
    ({"WHATSEASE_CLUSTER": "static", "WHATSEASE_CLUSTER_MEMBERS": "a=http://h:1"},
     "WHATSEASE_CLUSTER_SELF=''"),
    ({"WHATSEASE_CLUSTER": "static", "WHATSEASE_CLUSTER_MEMBERS": "a=http://h:1",
      "WHATSEASE_CLUSTER_SELF": "b"}, "must be one of"),
    ({"WHATSEASE_CLUSTER": "fly"}, "FLY_MACHINE_ID and FLY_APP_NAME"),
    ({"WHATSEASE_CLUSTER": "fly", "FLY_MACHINE_ID": "abc"}, "needs FLY_APP_NAME"),
    ({"WHATSEASE_CLUSTER": "fly", "FLY_MACHINE_ID": "a b", "FLY_APP_NAME": "x"}, "not a plain id"),
])
def test_a_cluster_mode_without_its_inputs_is_refused(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Config.from_env(env)


def test_the_server_refuses_to_start_with_an_incomplete_cluster_mode() -> None:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("WHATSEASE_", "FLY_"))}
    env["WHATSEASE_CLUSTER"] = "fly"
    done = subprocess.run([sys.executable, "-m", "whatsease"], env=env, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert "WHATSEASE_CLUSTER=fly needs FLY_MACHINE_ID and FLY_APP_NAME" in done.stderr


def test_with_join_on_heartbeat_a_newly_listed_member_waits_for_its_first_heartbeat(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "whatsease.cluster")
    ms = Membership(ME, heartbeat_timeout=10, now=0, join_on_heartbeat=True)
    # The first list is trusted: the cluster forms at once.
    ring = ms.update([Member("b", "http://b:1")], now=0, reason="static list")
    assert ring is not None and ring.members == {ME.id, "b"}
    # A member listed later is not handed users before it answers.
    assert ms.update([Member("b", "http://b:1"), Member("c", "http://c:1")], now=1,
                     reason="static list") is None
    assert ms.ring.members == {ME.id, "b"} and "c" in ms.down
    assert ms.check(30) is not None  # b is silent: out; c stays waiting, not "taken out"
    ring = ms.seen("c", 31)
    assert ring is not None and "c" in ring.members
    assert "+c (first heartbeat)" in caplog.text


def test_a_leaving_member_is_out_at_once_and_back_only_after_a_new_link() -> None:
    ms = Membership(ME, heartbeat_timeout=10, now=0)
    ms.update([Member("b", "http://b:1")], now=0, reason="static list")
    ring = ms.leaving("b")
    assert ring is not None and ring.members == {ME.id}
    assert ms.seen("b", 1) is None  # the draining process's last heartbeats
    ms.reconnected("b")  # a new process dialled in
    ring = ms.seen("b", 2)
    assert ring is not None and ring.members == {ME.id, "b"}
    assert ms.leaving(ME.id) is None and ms.leaving("nobody") is None


def test_a_member_whose_process_refused_the_link_is_out_at_once_and_back_when_seen(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "whatsease.cluster")
    ms = Membership(ME, heartbeat_timeout=10, now=0)
    ms.update([Member("b", "http://b:1"), Member("c", "http://c:1")], now=0, reason="static list")
    ms.seen("b", 1)
    ring = ms.unreachable("b")
    assert ring is not None and ring.members == {ME.id, "c"} and ms.down == {"b"}
    assert "-b (refused the link)" in caplog.text
    assert ms.unreachable("b") is None  # already out
    assert ms.unreachable(ME.id) is None and ms.unreachable("stranger") is None
    ring = ms.seen("b", 2)  # a restarted process heartbeats again
    assert ring is not None and ring.members == {ME.id, "b", "c"}


def test_an_unclustered_server_does_not_import_dnspython() -> None:
    # ~2 MiB of modules only a DNS member list needs.
    probe = ("import sys, whatsease.app\n"
             "assert 'dns' not in sys.modules, 'imported at start-up'\n"
             "from whatsease.cluster.membership import dns_txt_resolver\n"
             "dns_txt_resolver('127.0.0.1')\n"
             "assert 'dns.asyncresolver' in sys.modules\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=120, check=False, cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
