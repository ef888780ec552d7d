"""Unicode identities (issue 16 item 3): one canonical address per account, no look-alikes."""

from __future__ import annotations

import secrets
from datetime import datetime

import pytest

from tests.api.checks import assert_problem
from tests.support import Client, Response, ServerThread
from whatsease.auth.identity import email_skeleton, mixes_scripts
from whatsease.auth.service import AuthService
from whatsease.services import Services
from whatsease.timeutil import utcnow

PASSWORD = "correct horse battery"


@pytest.fixture
def domain() -> str:
    return f"t{secrets.token_hex(4)}.example"


def _register(server: ServerThread, email: str, name: str = "Case") -> Response:
    return Client(server.port).post("/api/v1/auth/register",
                                    {"email": email, "name": name, "password": PASSWORD})


def test_a_cyrillic_letter_in_a_latin_address_is_refused(server: ServerThread,
                                                         domain: str) -> None:
    res = _register(server, f"c\u0430se@{domain}")  # Cyrillic а
    problem = assert_problem(res, 422, "email")
    assert "script" in problem["detail"]
    assert server.call(server.services.store.users.get(f"c\u0430se@{domain}")) is None


def test_full_width_letters_are_the_same_account(server: ServerThread, domain: str) -> None:
    res = _register(server, f"\uff43\uff41\uff53\uff45@{domain}")  # ｃａｓｅ
    assert res.status == 201, res.body
    assert res.json["user"]["email"] == f"case@{domain}"
    assert res.header("Location") == f"/api/v1/users/case@{domain}"
    assert_problem(_register(server, f"Case@{domain.upper()}"), 409, "email")


def test_a_trailing_zero_width_space_is_refused_not_a_500(server: ServerThread,
                                                          domain: str) -> None:
    for email in (f"case\u200b@{domain}", f"ca\u2060se@{domain}", f"case@{domain}\u200b",
                  f"\u202ecase@{domain}", f"ca se@{domain}", f"case\x00@{domain}"):
        assert_problem(_register(server, email), 422, "email")


def test_a_combining_accent_and_its_precomposed_form_are_one_account(
        server: ServerThread, domain: str) -> None:
    res = _register(server, f"cafe\u0301@{domain}")  # NFD
    assert res.status == 201, res.body
    assert res.json["user"]["email"] == f"caf\u00e9@{domain}"
    location = res.header("Location") or ""
    assert location == f"/api/v1/users/caf%C3%A9@{domain}"
    me = Client(server.port, token=res.json["access_token"])
    assert me.get(location).json["user"]["email"] == f"caf\u00e9@{domain}"
    assert_problem(_register(server, f"caf\u00e9@{domain}"), 409, "email")  # NFC
    login = Client(server.port).post("/api/v1/auth/login",
                                     {"email": f"CAF\u00c9@{domain}", "password": PASSWORD})
    assert login.status == 200, login.body


def test_an_address_that_looks_like_an_existing_one_is_refused(
        server: ServerThread, domain: str) -> None:
    assert _register(server, f"alice@{domain}").status == 201
    assert _register(server, f"scope@{domain}").status == 201
    assert _register(server, f"mary@{domain}").status == 201
    for lookalike in (f"a1ice@{domain}", f"rnary@{domain}",
                      f"\u0455\u0441\u043e\u0440\u0435@{domain}"):  # ѕсоре, all Cyrillic
        problem = assert_problem(_register(server, lookalike), 409, "email")
        assert problem["type"].endswith("email_confusable"), problem
        assert "alice" not in problem["detail"] and "scope" not in problem["detail"]


def test_an_international_domain_is_stored_in_its_ascii_form(server: ServerThread) -> None:
    label = f"b\u00fccher{secrets.token_hex(3)}"
    res = _register(server, f"ann@{label}.example")
    assert res.status == 201, res.body
    assert res.json["user"]["email"] == f"ann@{label.encode('idna').decode()}.example"


def test_scripts_a_language_writes_together_are_not_a_mix() -> None:
    assert not mixes_scripts("tanaka\u7530\u4e2d\u3072\u308d")  # Latin + Han + Hiragana
    assert not mixes_scripts("\u03b4\u03bf\u03ba\u03b9\u03bc\u03ae")  # Greek only
    assert mixes_scripts("b\u03bfb")  # Latin with a Greek omicron
    assert email_skeleton("b0b@x.example") == email_skeleton("bob@x.example")


async def test_register_leaves_no_account_when_a_later_step_fails(services: Services) -> None:
    # The clock is read once for the account and again for its session: make
    # the second read fail, as a database error there would.
    calls = 0

    def clock() -> datetime:
        nonlocal calls
        calls += 1
        if calls > 1:
            raise RuntimeError("the session could not be created")
        return utcnow()

    auth = AuthService(services.config, services.store, services.activity, services.hub, clock)
    with pytest.raises(RuntimeError):
        await auth.register("half@done.example", "Half", PASSWORD)
    assert await services.store.users.get("half@done.example") is None
    pair = await services.auth.register("half@done.example", "Half", PASSWORD)
    assert pair.user.email == "half@done.example"


def test_the_confusables_table_is_compact_and_reads_as_the_file() -> None:
    import gc
    import gzip
    import tracemalloc

    from whatsease.auth.identity import CONFUSABLES_FILE, _prototypes

    plain: dict[str, str] = {}
    with gzip.open(CONFUSABLES_FILE, "rt", encoding="utf-8-sig") as lines:
        for line in lines:
            data = line.split("#", 1)[0].strip()
            if data:
                source, target, _ = (part.strip() for part in data.split(";", 2))
                plain[chr(int(source, 16))] = "".join(chr(int(c, 16)) for c in target.split())
    gc.collect()
    tracemalloc.start()
    try:
        table = _prototypes.__wrapped__()
        gc.collect()
        kept = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(table) == len(plain) > 6000
    for source, target in plain.items():
        assert table.get(source, "") == target
    for other in ("a", "Z", "@", "中", "\U0001f600"):
        assert table.get(other, other) == plain.get(other, other)
    assert kept < 256 * 1024, kept  # a dict of the same took ~1 MiB
