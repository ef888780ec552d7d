"""External chatbot URLs go through the outbound guard: when saved and when called."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.customer_support.http import make_team, platform_admin, start_session, widget_socket
from tests.fake_completions import FakeCompletions
from tests.support import ServerThread
from whatsease.support.chatbot import EXTERNAL_UNAVAILABLE
from whatsease.support.service import SupportService, get_support


@pytest.fixture
def completions() -> Iterator[FakeCompletions]:
    fake = FakeCompletions(lambda body: "I should never be asked")
    yield fake.start()
    fake.stop()


@pytest.fixture
def strict(make_server: Callable[..., ServerThread]) -> ServerThread:
    return make_server(outbound_allow_private=False)


@pytest.mark.parametrize("url", [
    "http://127.0.0.1:9/v1/chat/completions",
    "https://127.0.0.1/v1/chat/completions",
    "https://2130706433/v1/chat/completions",
    "https://[::ffff:127.0.0.1]/v1/chat/completions",
    "https://169.254.169.254/latest/meta-data",
    "https://localhost/v1/chat/completions",
])
def test_a_private_chatbot_url_is_refused_when_saved(strict: ServerThread, url: str) -> None:
    team = make_team(strict, platform_admin(strict), agents=0)
    res = team.admin.client.patch(f"/api/v1/orgs/{team.org_id}", {"settings": {"chatbot": {
        "kind": "external", "url": url, "token": "sk-x"}}})
    assert res.status == 422, res.body
    assert res.json["errors"][0]["field"] == "chatbot.url"


def test_a_public_https_url_is_accepted(strict: ServerThread) -> None:
    team = make_team(strict, platform_admin(strict), agents=0)
    res = team.admin.client.patch(f"/api/v1/orgs/{team.org_id}", {"settings": {"chatbot": {
        "kind": "external", "url": "https://93.184.216.34/v1/chat/completions"}}})
    assert res.status == 200, res.body


async def _store_url(server: ServerThread, org_id: str, url: str) -> None:
    # As if saved under an earlier, looser setting: the call must still be refused.
    support: SupportService = get_support(server.services)
    org = await support.orgs.get(org_id)
    org.settings.chatbot.kind, org.settings.chatbot.url = "external", url
    await support.store.orgs.update(org_id, {"settings": org.settings.to_doc()})


def test_a_private_chatbot_url_is_refused_when_called(
        strict: ServerThread, completions: FakeCompletions) -> None:
    team = make_team(strict, platform_admin(strict), agents=0)
    strict.call(_store_url(strict, team.org_id, completions.url))
    session = start_session(strict, team.key, "Ann", "ann@x.test")
    widget = widget_socket(strict, session["token"])
    try:
        widget.call({"type": "send", "client_id": "q1", "content": "do you sell boots?"},
                    "ack")
        reply = widget.expect("message", lambda f: f["message"]["kind"] == "bot")
        assert reply["message"]["content"] == EXTERNAL_UNAVAILABLE
    finally:
        widget.close()
    assert completions.requests == []
