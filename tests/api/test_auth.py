"""Accounts and sessions over REST: register, login, refresh rotation, logout, sessions, tokens."""

from __future__ import annotations

import threading
from collections.abc import Callable

import bcrypt
import jwt
import pytest

from tests.api.checks import assert_problem, claims_for, expired_claims, hmac_signed, session_id
from tests.support import Client, HeldPasswordChecks, ServerThread, register, unique_email
from whatsease.timeutil import utcnow

PASSWORD = "correct horse battery"


def _login(port: int, email: str, password: str = PASSWORD) -> Client:
    res = Client(port).post("/api/v1/auth/login", {"email": email, "password": password})
    assert res.status == 200, res.body
    return Client(port, token=res.json["access_token"])


def test_register_returns_the_token_pair_and_location(server: ServerThread) -> None:
    email = unique_email("reg")
    res = Client(server.port).post("/api/v1/auth/register",
                                   {"email": email.upper(), "name": "  Reg   Ister ",
                                    "password": PASSWORD})
    assert res.status == 201, res.body
    body = res.json
    assert res.header("Location") == f"/api/v1/users/{email}"
    assert body["user"]["email"] == email  # stored lower-cased
    assert body["user"]["name"] == "Reg Ister"
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == server.config.access_token_ttl
    assert "password" not in res.body.decode() and "password_hash" not in body["user"]
    claims = jwt.decode(body["access_token"], server.config.jwt_secret, algorithms=["HS256"])
    assert set(claims) >= {"sub", "sid", "iat", "exp", "jti"}
    assert claims["sub"] == email
    assert claims["exp"] - claims["iat"] == server.config.access_token_ttl
    me = Client(server.port, token=body["access_token"]).get("/api/v1/users/me")
    assert me.status == 200 and me.json["user"]["email"] == email


def test_login_opens_a_new_session(server: ServerThread) -> None:
    user = register(server.port, "login")
    res = Client(server.port).post("/api/v1/auth/login",
                                   {"email": user.email.upper(), "password": user.password})
    assert res.status == 200, res.body
    body = res.json
    assert set(body) >= {"user", "access_token", "refresh_token", "expires_in"}
    assert session_id(body["access_token"]) != session_id(user.access_token)
    sessions = user.client.get("/api/v1/auth/sessions").json["sessions"]
    assert len(sessions) == 2
    assert [s["current"] for s in sessions].count(True) == 1


def test_login_failure_is_the_same_for_unknown_account_and_wrong_password(
        make_server: Callable[..., ServerThread]) -> None:
    server = make_server()
    user = register(server.port, "same")
    wrong = Client(server.port).post("/api/v1/auth/login",
                                     {"email": user.email, "password": "not the password"})
    unknown = Client(server.port).post("/api/v1/auth/login",
                                       {"email": unique_email("ghost"), "password": PASSWORD})
    short = Client(server.port).post("/api/v1/auth/login", {"email": user.email, "password": "x"})
    bodies = [assert_problem(r, 401) for r in (wrong, unknown, short)]
    assert bodies[0]["detail"] == bodies[1]["detail"] == bodies[2]["detail"]
    assert bodies[0]["type"] == bodies[1]["type"] == bodies[2]["type"]


def test_failed_logins_per_account_are_rate_limited(
        make_server: Callable[..., ServerThread]) -> None:
    server = make_server(login_max_failures=3, login_window=60)
    user = register(server.port, "limited")
    client = Client(server.port)
    for _ in range(3):
        assert_problem(client.post("/api/v1/auth/login",
                                   {"email": user.email, "password": "wrong password"}), 401)
    # Now even the right password is refused until the window passes.
    res = client.post("/api/v1/auth/login", {"email": user.email, "password": user.password})
    assert_problem(res, 429)
    retry_after = int(res.header("Retry-After") or "0")
    assert 1 <= retry_after <= 61
    # Another account from the same address is not yet affected.
    other = register(server.port, "unaffected")
    _login(server.port, other.email)


def test_failed_logins_per_ip_are_rate_limited(make_server: Callable[..., ServerThread]) -> None:
    # The per-IP limit is four times the per-account one: 2 x 4 = 8 failures.
    server = make_server(login_max_failures=2, login_window=60)
    victim = register(server.port, "victim")
    client = Client(server.port)
    for i in range(8):
        res = client.post("/api/v1/auth/login",
                          {"email": unique_email(f"spray{i}"), "password": "guess guess"})
        assert_problem(res, 401)
    res = client.post("/api/v1/auth/login", {"email": victim.email, "password": victim.password})
    assert_problem(res, 429)
    assert int(res.header("Retry-After") or "0") >= 1


def test_forwarded_for_is_ignored_unless_the_proxy_is_trusted(
        make_server: Callable[..., ServerThread]) -> None:
    # Directly reachable: a client cannot dodge the per-IP limit by inventing headers.
    direct = make_server(login_max_failures=1, login_window=60)
    for i in range(4):
        res = Client(direct.port).post(
            "/api/v1/auth/login", {"email": unique_email(f"d{i}"), "password": "guess guess"},
            headers={"X-Forwarded-For": f"10.0.0.{i}"})
        assert_problem(res, 401)
    assert_problem(Client(direct.port).post(
        "/api/v1/auth/login", {"email": unique_email("d"), "password": "guess guess"},
        headers={"X-Forwarded-For": "10.0.0.99"}), 429)
    # Behind a trusted proxy the last entry is the client: 4 failures from it (1 x 4),
    # whatever it put in front, then 429; another address still has its own count.
    proxied = make_server(login_max_failures=1, login_window=60, trusted_proxy=True)
    for i in range(4):
        res = Client(proxied.port).post(
            "/api/v1/auth/login", {"email": unique_email(f"p{i}"), "password": "guess guess"},
            headers={"X-Forwarded-For": f"203.0.113.{i}, 198.51.100.7"})
        assert_problem(res, 401)
    assert_problem(Client(proxied.port).post(
        "/api/v1/auth/login", {"email": unique_email("p"), "password": "guess guess"},
        headers={"X-Forwarded-For": "198.51.100.7"}), 429)
    fresh = Client(proxied.port).post(
        "/api/v1/auth/login", {"email": unique_email("q"), "password": "guess guess"},
        headers={"X-Forwarded-For": "198.51.100.7, 198.51.100.8"})
    assert_problem(fresh, 401)


def test_refresh_rotates_and_the_old_token_stops_working(server: ServerThread) -> None:
    user = register(server.port, "rotate")
    client = Client(server.port)
    res = client.post("/api/v1/auth/refresh", {"refresh_token": user.refresh_token})
    assert res.status == 200, res.body
    pair = res.json
    assert pair["refresh_token"] != user.refresh_token
    assert session_id(pair["access_token"]) == session_id(user.access_token)
    assert Client(server.port, token=pair["access_token"]).get("/api/v1/users/me").status == 200
    # The new refresh token works once more, and rotates again.
    again = client.post("/api/v1/auth/refresh", {"refresh_token": pair["refresh_token"]})
    assert again.status == 200
    assert again.json["refresh_token"] not in (pair["refresh_token"], user.refresh_token)


def test_reusing_a_rotated_refresh_token_revokes_the_session(server: ServerThread) -> None:
    user = register(server.port, "theft")
    client = Client(server.port)
    fresh = client.post("/api/v1/auth/refresh", {"refresh_token": user.refresh_token}).json
    thief = Client(server.port, token=fresh["access_token"])
    assert thief.get("/api/v1/users/me").status == 200
    replay = client.post("/api/v1/auth/refresh", {"refresh_token": user.refresh_token})
    body = assert_problem(replay, 401)
    assert body["type"].endswith("token_reused")
    # The whole session is gone at once: its access token and its newest refresh token.
    assert_problem(thief.get("/api/v1/users/me"), 401)
    assert_problem(client.post("/api/v1/auth/refresh",
                               {"refresh_token": fresh["refresh_token"]}), 401)
    assert_problem(user.client.get("/api/v1/users/me"), 401)


@pytest.mark.parametrize("token", ["", "no-dot", "0123456789abcdef01234567.nope",
                                   "not-an-id.abc", "x" * 300])
def test_refresh_with_a_bad_token_is_401_or_422(server: ServerThread, token: str) -> None:
    res = Client(server.port).post("/api/v1/auth/refresh", {"refresh_token": token})
    if token == "":
        assert_problem(res, 422, "refresh_token")
    else:
        assert_problem(res, 401)


def test_logout_revokes_the_session_at_once(server: ServerThread) -> None:
    user = register(server.port, "logout")
    other = _login(server.port, user.email)
    assert user.client.get("/api/v1/users/me").status == 200  # warm any cache
    res = user.client.post("/api/v1/auth/logout")
    assert res.status == 204 and res.body == b""
    assert_problem(user.client.get("/api/v1/users/me"), 401)
    assert_problem(Client(server.port).post("/api/v1/auth/refresh",
                                            {"refresh_token": user.refresh_token}), 401)
    # The other session of the same account goes on.
    assert other.get("/api/v1/users/me").status == 200
    assert_problem(Client(server.port).post("/api/v1/auth/logout"), 401)


def test_sessions_list_and_revoke(server: ServerThread) -> None:
    user = register(server.port, "sessions")
    second = _login(server.port, user.email)
    listed = user.client.get("/api/v1/auth/sessions")
    assert listed.status == 200
    sessions = {s["id"]: s for s in listed.json["sessions"]}
    mine, theirs = session_id(user.access_token), session_id(second.token or "")
    assert set(sessions) == {mine, theirs}
    assert sessions[mine]["current"] and not sessions[theirs]["current"]
    assert set(sessions[mine]) >= {"created_at", "last_used", "expires_at", "user_agent"}
    assert second.get("/api/v1/users/me").status == 200
    assert user.client.delete(f"/api/v1/auth/sessions/{theirs}").status == 204
    assert_problem(second.get("/api/v1/users/me"), 401)
    assert [s["id"] for s in user.client.get("/api/v1/auth/sessions").json["sessions"]] == [mine]
    # Revoking again, or someone else's session, or nonsense: 404.
    assert_problem(user.client.delete(f"/api/v1/auth/sessions/{theirs}"), 404)
    stranger = register(server.port, "stranger")
    assert_problem(stranger.client.delete(f"/api/v1/auth/sessions/{mine}"), 404)
    assert_problem(stranger.client.delete("/api/v1/auth/sessions/nonsense"), 404)
    assert user.client.get("/api/v1/users/me").status == 200


def test_expired_forged_and_wrong_algorithm_tokens_are_refused(server: ServerThread) -> None:
    user = register(server.port, "tokens")
    secret = server.config.jwt_secret
    good = claims_for(user.access_token)
    forged = {
        "expired": jwt.encode(expired_claims(user.access_token), secret, algorithm="HS256"),
        "wrong secret": jwt.encode(good, "another secret that is long enough 1234",
                                   algorithm="HS256"),
        "HS512": jwt.encode(good, secret, algorithm="HS512"),
        "none": jwt.encode(good, "", algorithm="none"),
        "RS256 header": hmac_signed({"alg": "RS256", "typ": "JWT"}, good, secret),
        "other user": jwt.encode(claims_for(user.access_token, sub="someone@example.com"),
                                 secret, algorithm="HS256"),
        "unknown session": jwt.encode(claims_for(user.access_token,
                                                 sid="0123456789abcdef01234567"),
                                      secret, algorithm="HS256"),
        "no sid": jwt.encode({k: v for k, v in good.items() if k != "sid"}, secret,
                             algorithm="HS256"),
        "garbage": "not.a.jwt",
    }
    for name, token in forged.items():
        res = Client(server.port, token=token).get("/api/v1/users/me")
        assert res.status == 401, name
        assert_problem(res, 401)
    for header in ("", "Bearer", "Basic dXNlcjpwYXNz", f"Token {user.access_token}"):
        res = Client(server.port).get("/api/v1/users/me", headers={"Authorization": header})
        assert_problem(res, 401)
    # The genuine token still works: nothing above broke the session.
    assert user.client.get("/api/v1/users/me").status == 200


def test_failed_register_leaves_no_record(server: ServerThread) -> None:
    user = register(server.port, "dup")
    store = server.services.store
    before = len(server.call(store.sessions.list_for(user.email, utcnow())))
    for email in (user.email, user.email.upper(), f"  {user.email.title()} "):
        res = Client(server.port).post("/api/v1/auth/register",
                                       {"email": email, "name": "Other", "password": PASSWORD})
        assert_problem(res, 409, "email")
    assert len(server.call(store.sessions.list_for(user.email, utcnow()))) == before
    assert server.call(store.users.get(user.email)).name == user.name  # type: ignore[union-attr]
    bad = unique_email("half")
    res = Client(server.port).post("/api/v1/auth/register",
                                   {"email": bad, "name": "", "password": PASSWORD})
    assert_problem(res, 422, "name")
    assert server.call(store.users.get(bad)) is None
    assert server.call(store.sessions.list_for(bad, utcnow())) == []


def test_bcrypt_runs_off_the_event_loop(server: ServerThread,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # Four logins are held inside their password checks. Were hashing on the
    # event loop, a held check would stall the whole server and the probes
    # below would time out; off the loop, they are answered while every check
    # is still under way. The gate, not a slow hash, keeps the checks running
    # for as long as the probes take, however loaded the machine is.
    user = register(server.port, "slowhash")
    held = HeldPasswordChecks()
    monkeypatch.setattr(bcrypt, "checkpw", held)
    results: list[int] = []

    def log_in() -> None:
        res = Client(server.port).post("/api/v1/auth/login",
                                       {"email": user.email, "password": user.password})
        results.append(res.status)

    threads = [threading.Thread(target=log_in) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        assert held.entered.wait(30), "no login reached its password check"
        for _ in range(5):
            assert Client(server.port).get("/healthz").status == 200
        assert user.client.get("/api/v1/users/me").status == 200
        assert not results, "a login finished while its password check was held"
    finally:
        held.release()
        for t in threads:
            t.join(60)
    assert results == [200] * 4
    assert not held.timed_out
    assert held.threads and all(name.startswith("bcrypt") for name in held.threads), held.threads
