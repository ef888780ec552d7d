"""Two people in two browsers on two instances of a real cluster, through the front.

A local cluster (one database, two `python -m whatsease` processes, static
membership) and the front standing in for Fly's proxy: each browser loads the
web client through the front, its socket is replayed to the instance that owns
its user, and messages, ticks and typing cross between the two instances.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.ui import LIVE_MS, PASSWORD, bubbles, login_ui, open_chat, send, tick_state
from tests.support import Client, User, unique_email, wait_for
from whatsease.cluster.local import LocalCluster
from whatsease.cluster.ring import Ring

pytestmark = pytest.mark.e2e

FAST = {"WHATSEASE_BOT_SEMANTIC": "false", "WHATSEASE_LOG_LEVEL": "WARNING",
        "WHATSEASE_CLUSTER_HEARTBEAT_TIMEOUT": "3", "WHATSEASE_CLUSTER_POLL_INTERVAL": "0.5"}


@pytest.fixture(scope="module")
def cluster(mongo_uri: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    root = Path(tmp_path_factory.mktemp("browser-cluster"))
    with LocalCluster(root, 2, mongodb_uri=mongo_uri, db_name=f"b{secrets.token_hex(5)}",
                      bcrypt_rounds=4, env=FAST) as running:
        running.start_front()
        yield running


def register_through(cluster: LocalCluster, name: str) -> tuple[User, str]:
    """Register through the front; the user and the instance that owns them."""
    email = unique_email(name.split()[0].lower())
    res = Client(cluster.front_port).post(
        "/api/v1/auth/register", {"email": email, "name": name, "password": PASSWORD})
    assert res.status == 201, res.body
    body = res.json
    route = body.get("route")
    if not route:
        pytest.skip("the instances do not home users yet (no routing key in the login answer)")
    user = User(email=email, name=name, password=PASSWORD, access_token=body["access_token"],
                refresh_token=body["refresh_token"], client=Client(cluster.front_port))
    return user, Ring(cluster.ids).owner(route)


def sockets_on(cluster: LocalCluster) -> dict[str, int]:
    counts = {}
    for instance_id, url in cluster.urls.items():
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:
            counts[instance_id] = int(json.loads(response.read())["sockets"])
    return counts


def test_two_people_chat_across_two_instances(cluster: LocalCluster,
                                              new_page: Callable[..., Page]) -> None:
    alice, alice_home = register_through(cluster, "Alice Across")
    # Bob is someone the ring homes on the other instance.
    for _ in range(40):
        bob, bob_home = register_through(cluster, "Bob Across")
        if bob_home != alice_home:
            break
    assert bob_home != alice_home, "no user homed on the other instance in 40 tries"
    Client(cluster.front_port, token=alice.access_token).post(
        "/api/v1/messages", {"recipient": bob.email, "content": "first, before anyone is online"})

    alice_page, bob_page = new_page(), new_page()
    login_ui(alice_page, cluster.front_url, alice)
    login_ui(bob_page, cluster.front_url, bob)
    # One socket on each instance: each was replayed to its owner.
    wait_for(lambda: sockets_on(cluster) == {alice_home: 1, bob_home: 1},
             what="one socket on each user's own instance")

    open_chat(bob_page, "Alice Across")
    expect(bubbles(bob_page, "first, before anyone")).to_have_count(1)
    open_chat(alice_page, "Bob Across")
    send(alice_page, "Hello from the other instance")
    expect(bubbles(bob_page, "Hello from the other instance")).to_have_count(1, timeout=LIVE_MS)
    # Bob has the chat open: Read crosses back to Alice's instance.
    expect(tick_state(alice_page, "Hello from the other")).to_have_attribute(
        "aria-label", "Read", timeout=LIVE_MS)

    composer = bob_page.get_by_role("textbox", name="Message")
    composer.press_sequentially("Hi Alice")
    expect(alice_page.locator(".chat-sub")).to_have_text("typing…", timeout=LIVE_MS)
    composer.press("Enter")
    expect(bubbles(alice_page, "Hi Alice")).to_have_count(1, timeout=LIVE_MS)
    expect(bubbles(alice_page, "Hi Alice")).to_have_count(1)
    expect(bubbles(bob_page, "Hello from the other instance")).to_have_count(1)
