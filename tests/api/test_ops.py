"""Operations endpoints: liveness, readiness (and 503 without a database), Prometheus metrics."""

from __future__ import annotations

import gc
import re
import time
from pathlib import Path

from tests import support
from tests.api.checks import assert_problem
from tests.support import Client, ServerThread, register
from whatsease.storage.launcher import EmbeddedDatabase


def test_healthz(server: ServerThread) -> None:
    res = Client(server.port).get("/healthz")
    assert res.status == 200
    assert res.json == {"status": "ok"}
    assert (res.header("Content-Type") or "").startswith("application/json")
    assert res.header("X-Content-Type-Options") == "nosniff"


def test_readyz_when_the_database_answers(server: ServerThread) -> None:
    res = Client(server.port).get("/readyz")
    assert res.status == 200, res.body
    assert res.json["status"] == "ready"


def test_readyz_is_503_while_the_database_is_unreachable(tmp_path: Path) -> None:
    database = EmbeddedDatabase(tmp_path / "db", log_path=tmp_path / "secantusd.log")
    database.start()
    server = ServerThread(support.test_config(), database.uri).start()
    try:
        assert Client(server.port).get("/readyz").status == 200
        database.stop()
        started = time.monotonic()
        res = Client(server.port).get("/readyz")
        assert_problem(res, 503)
        assert time.monotonic() - started < 5  # bounded by the readiness timeout
        # Liveness does not depend on the database.
        assert Client(server.port).get("/healthz").status == 200
        # The same database back on the same port: ready again, without a restart.
        database = EmbeddedDatabase(tmp_path / "db", port=database.port,
                                    log_path=tmp_path / "secantusd.log")
        database.start()
        deadline = time.monotonic() + 20
        while Client(server.port).get("/readyz").status != 200:
            assert time.monotonic() < deadline, "never ready again"
    finally:
        server.stop()
        database.stop()


def _sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text format, or None if absent."""
    for line in text.splitlines():
        match = re.fullmatch(re.escape(name) + r"\{(.*)\} (\S+)", line)
        if match is None:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', match.group(1)))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(2))
    return None


def test_metrics_count_requests_by_route_and_status(server: ServerThread) -> None:
    client = Client(server.port)
    user = register(server.port, "metrics")
    before = client.get("/metrics").body.decode()
    route = "/api/v1/messages/{message_id}"
    base_404 = _sample(before, "whatsease_http_requests_total", method="GET", route=route,
                       status="404") or 0.0
    for _ in range(3):
        user.client.get("/api/v1/messages/0123456789abcdef01234567")
    res = client.get("/metrics")
    assert res.status == 200
    assert (res.header("Content-Type") or "").startswith("text/plain")
    text = res.body.decode()
    # Counted by the route template, never by the raw path (which would grow without bound).
    assert _sample(text, "whatsease_http_requests_total", method="GET", route=route,
                   status="404") == base_404 + 3
    assert "0123456789abcdef01234567" not in text
    assert (_sample(text, "whatsease_http_requests_total", method="POST",
                    route="/api/v1/auth/register", status="201") or 0) >= 1
    assert (_sample(text, "whatsease_http_request_seconds_count", method="GET", route=route)
            or 0) >= 3
    assert _sample(text, "whatsease_http_request_seconds_bucket", method="GET", route=route,
                   le="+Inf") is not None
    assert "# TYPE whatsease_http_request_seconds histogram" in text


def test_metrics_time_garbage_collector_pauses(server: ServerThread) -> None:
    client = Client(server.port)
    before = _sample(client.get("/metrics").body.decode(), "whatsease_gc_pause_seconds_count",
                     generation="2") or 0.0
    gc.collect()  # the server runs in this process: a full collection it must have timed
    after = _sample(client.get("/metrics").body.decode(), "whatsease_gc_pause_seconds_count",
                    generation="2")
    assert after is not None and after >= before + 1


def test_healthz_is_503_when_the_process_cannot_recover(server: ServerThread) -> None:

    server.services.health_check = lambda: "the embedded database is gone"
    try:
        res = Client(server.port).get("/healthz")
        body = assert_problem(res, 503)
        assert body["type"].endswith("/unhealthy")
        assert body["detail"] == "the embedded database is gone"
    finally:
        server.services.health_check = None
    assert Client(server.port).get("/healthz").status == 200
