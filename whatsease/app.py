"""Assembling the application: services, routes, the HTTP server and its shutdown."""

from __future__ import annotations

import asyncio
import gc
import logging
import secrets
import signal
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import tornado.httpserver
import tornado.netutil
import tornado.web

from whatsease.activity import ActivityLog
from whatsease.api import ops, shell
from whatsease.api.base import BaseHandler, NotFoundHandler
from whatsease.api.registry import route_modules, service_modules
from whatsease.api.static import StaticHandler
from whatsease.auth.accounts import Accounts
from whatsease.auth.backfill import backfill_skeletons
from whatsease.auth.service import AuthService
from whatsease.config import Config
from whatsease.delivery.frames import WS_1012_SERVICE_RESTART
from whatsease.delivery.hub import Hub
from whatsease.messaging.service import Messaging
from whatsease.metrics import probe_loop_lag, watch_gc
from whatsease.services import Services
from whatsease.storage.store import Store
from whatsease.timeutil import utcnow
from whatsease.writelane import WriteLane

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = ROOT / "static"
# Bodies larger than this are cut off by Tornado before a handler runs; the
# handlers' own limit (64 KiB) answers 413 with a problem body below it.
MAX_BODY_BYTES = 1024 * 1024
# After SIGTERM: at most this long for the requests under way, then at most
# `SHUTDOWN_FLUSH_SECS` for the services' shutdowns and the write queues, then
# the database client is closed (fly.toml's kill_timeout exceeds the sum).
SHUTDOWN_GRACE_SECS = 10.0
SHUTDOWN_FLUSH_SECS = 5.0
# Closing the database client, even when the flush used up its time.
STORE_CLOSE_SECS = 1.0
DEMO_USERS = (("alice@example.com", "Alice Example"), ("bob@example.com", "Bob Example"))
# Paths the single-page client owns; each serves the app shell.
CLIENT_ROUTES = r"/(?:login|register|chat/[^/]+|bot|activity|settings)?"


async def build_services(config: Config, mongodb_uri: str,
                         clock: Callable[[], datetime] = utcnow,
                         **client_options: object) -> Services:
    """Connect to the database, create indexes and build every service.

    ``client_options`` go to the database client (tests pass ``event_listeners``
    to count round trips).
    """
    store = Store(mongodb_uri, config.db_name, timeout=config.db_timeout, **client_options)
    await store.ensure_indexes()
    await backfill_skeletons(store.users)
    hub = Hub()
    lane = WriteLane()
    activity = ActivityLog(store, hub, clock, lane=lane)
    auth = AuthService(config, store, activity, hub, clock)
    messaging = Messaging(store, hub, activity, lane, clock)
    services = Services(
        config=config, store=store, hub=hub, activity=activity, auth=auth,
        accounts=Accounts(store, hub, auth, activity, messaging.summaries_written),
        messaging=messaging, lane=lane)
    ready = []
    try:
        for module in service_modules():
            await module.setup(services)
            ready.append(module)
    except BaseException:
        # A service that cannot start (a bad setting): stop those already running,
        # whose background tasks would otherwise keep the process from exiting.
        flushed = time.monotonic() + SHUTDOWN_FLUSH_SECS
        for module in reversed(ready):
            shutdown = getattr(module, "shutdown", None)
            if shutdown is not None:
                await _bounded(shutdown(services), max(0.0, flushed - time.monotonic()),
                               f"{module.__name__} shutdown")
        await _bounded(store.close(), STORE_CLOSE_SECS, "closing the database client")
        raise
    return services


class AppShellHandler(BaseHandler):
    """Serves the client's index.html for every client route (deep links, reloads)."""

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("Content-Security-Policy", shell.content_security_policy())
        self.set_header("X-Frame-Options", "DENY")

    def head(self) -> None:
        # Monitors and link checkers probe the root with HEAD: same headers, no body.
        self.set_header("Content-Security-Policy",
                        shell.content_security_policy(None, self.socket_origin()))
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.finish()

    def get(self) -> None:
        index = STATIC_DIR / "index.html"
        if not index.exists():
            self.write_json({"name": "WhatsEase", "api": "/api/openapi.json"})
            return
        # A fresh nonce per response lets exactly one inline script run: the
        # import map that versions every ES module (see api/shell.py).
        nonce = shell.new_nonce()
        self.set_header("Content-Security-Policy",
                        shell.content_security_policy(nonce, self.socket_origin()))
        self.render(str(index), nonce=nonce,
                    import_map=shell.import_map(STATIC_DIR, self.static_url))

    def get_template_path(self) -> str:
        return str(STATIC_DIR)


def make_app(services: Services, **settings: Any) -> tornado.web.Application:
    """The Tornado application: every route module's routes, static files and the app shell."""
    rules: list[Any] = []
    for module in route_modules():
        rules.extend(module.routes(services))
    rules.append((r"/api/.*", NotFoundHandler, {"services": services, "route": "/api/*"}))
    rules.append((CLIENT_ROUTES + "$", AppShellHandler,
                  {"services": services, "route": "/ (app shell)"}))
    return tornado.web.Application(
        rules,
        static_path=str(STATIC_DIR),
        static_url_prefix="/static/",
        static_handler_class=StaticHandler,
        whatsease_trusted_proxy=services.config.trusted_proxy,  # read by StaticHandler
        template_path=str(STATIC_DIR),
        compress_response=True,
        # Tornado's access log writes the query string, where Meta puts the verify
        # token: never call it, whatever the logging configuration
        # (BaseHandler.on_finish writes ours, without the query string).
        log_function=_no_access_log,
        websocket_ping_interval=25,
        websocket_ping_timeout=20,
        websocket_max_message_size=64 * 1024,
        default_handler_class=NotFoundHandler,
        default_handler_args={"services": services, "route": "(unknown)"},
        **settings,
    )


async def create_demo_users(services: Services) -> list[tuple[str, str]]:
    """Create the demo accounts once; their passwords are kept in the data dir (mode 0600)."""
    path = services.config.data_path / "demo-users.txt"
    if path.exists():
        return [(email, password) for email, _, password in
                (line.partition(" ") for line in path.read_text().splitlines()) if password]
    created = []
    for email, name in DEMO_USERS:
        if await services.store.users.get(email) is not None:
            continue
        password = secrets.token_urlsafe(9)
        await services.auth.register(email, name, password)
        created.append((email, password))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text("".join(f"{email} {password}\n" for email, password in created))
    return created


class WhatsEaseServer:
    """One running server: services, the listening HTTP server, and background tasks."""

    def __init__(self, config: Config, mongodb_uri: str,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self.config = config
        self.mongodb_uri = mongodb_uri
        self.clock = clock
        self.services: Services | None = None
        self.app: tornado.web.Application | None = None
        self.http: tornado.httpserver.HTTPServer | None = None
        self.metrics_http: tornado.httpserver.HTTPServer | None = None
        self.port = 0
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        """Build everything and listen; returns the bound port."""
        self.services = await build_services(self.config, self.mongodb_uri, self.clock)
        self.app = make_app(self.services)
        self.http = tornado.httpserver.HTTPServer(
            self.app, max_body_size=MAX_BODY_BYTES, idle_connection_timeout=120,
            body_timeout=30)
        sockets = tornado.netutil.bind_sockets(self.config.port, self.config.host)
        self.port = sockets[0].getsockname()[1]
        self.http.add_sockets(sockets)
        if self.config.metrics_port:
            self.metrics_http = tornado.httpserver.HTTPServer(
                ops.metrics_application(self.services), idle_connection_timeout=60)
            self.metrics_http.add_sockets(
                tornado.netutil.bind_sockets(self.config.metrics_port, self.config.host))
        task = asyncio.get_running_loop().create_task(probe_loop_lag(), name="loop-lag")
        self._tasks.add(task)
        # Everything allocated so far lives for the whole process: keep the
        # collector from walking it on every full collection.
        gc.collect()
        gc.freeze()
        watch_gc()
        logger.info("listening", extra={"url": f"http://{self.config.host}:{self.port}"})
        return self.port

    async def stop(self, grace: float = SHUTDOWN_GRACE_SECS,
                   flush: float = SHUTDOWN_FLUSH_SECS) -> None:
        """Stop accepting, tell sockets to reconnect (1012), finish requests, flush, close.

        Bounded, whatever the database does: the requests under way get
        ``grace`` seconds in all (leaving the cluster, finishing, closing
        connections), then the services' shutdowns and the write queues'
        flush get ``flush`` seconds in all, then the database client is
        closed (Fly kills the machine at ``kill_timeout``, which must exceed
        the sum). Nothing acknowledged can be lost by the bound: a send is
        acknowledged only once its insert is durable; what is still queued
        when time runs out was never acknowledged, and its client sends it
        again (same client id) to the instance it reconnects to. The last_seen
        of every user online here is written as the shutdown starts, beside
        the requests' grace, and may take the flush's time too.
        """
        requests_done = time.monotonic() + grace

        def left(deadline: float) -> float:
            return max(0.0, deadline - time.monotonic())

        services = self.services
        if self.http is not None:
            self.http.stop()
        if self.metrics_http is not None:
            self.metrics_http.stop()
        last_seen: asyncio.Task[int] | None = None
        if services is not None:
            services.draining = True
            if services.realtime is not None:
                # Before the sockets close, and beside the requests' grace: the
                # users' last_seen must not wait for the flush (nor be cut off by it).
                last_seen = services.realtime.presence.stopping()
            if services.cluster is not None:
                await _bounded(services.cluster.leave(), left(requests_done),
                               "leaving the cluster")
            services.hub.close_all(WS_1012_SERVICE_RESTART, "server restarting")
            # Tornado's close_all_connections closes sockets at once, answered
            # or not: let the REST requests under way finish first.
            waited = left(requests_done)
            if not await services.requests.wait_idle(waited):
                logger.warning("%d requests still running after %.1f s; closing them",
                               services.requests.count, waited)
            if last_seen is not None:
                # Shielded: what this grace leaves undone continues in the flush.
                await _bounded(asyncio.shield(last_seen), left(requests_done),
                               "storing the users' last-seen times")
        if self.http is not None:
            await _bounded(self.http.close_all_connections(), left(requests_done),
                           "closing connections")
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if services is not None:
            flushed = time.monotonic() + flush
            if last_seen is not None:
                await _bounded(last_seen, left(flushed), "storing the users' last-seen times")
            for module in reversed(service_modules()):
                shutdown = getattr(module, "shutdown", None)
                if shutdown is not None:
                    await _bounded(shutdown(services), left(flushed),
                                   f"{module.__name__} shutdown")
            # Inserts first: the ones someone still waits for.
            await _bounded(services.messaging.drain(), left(flushed), "flushing messages")
            await _bounded(services.activity.drain(), left(flushed), "flushing the activity log")
            await _bounded(services.store.close(), max(left(flushed), STORE_CLOSE_SECS),
                           "closing the database client")
        logger.info("stopped")


def _no_access_log(handler: tornado.web.RequestHandler) -> None:
    """Tornado's per-request log, replaced by ``whatsease.access`` (api/base.py)."""


async def _bounded(step: Awaitable[object], secs: float, what: str) -> bool:
    """Await ``step`` for ``secs`` at most (cancelled after); False, logged, if it took longer."""
    try:
        async with asyncio.timeout(secs):
            await step
        return True
    except TimeoutError:
        logger.warning("shutdown: %s did not finish in the time it had; going on without "
                       "it (what is left was never acknowledged: clients send it again)", what)
        return False


async def serve(config: Config, mongodb_uri: str,
                health: Callable[[], str | None] | None = None) -> None:
    """Run until SIGTERM or SIGINT, then shut down gracefully.

    ``health`` says why the process is unhealthy (``/healthz`` answers 503), or None.
    """
    _reader_on_first_need()
    server = WhatsEaseServer(config, mongodb_uri)
    await server.start()
    assert server.services is not None
    if health is not None:
        server.services.health_check = health
    if config.demo_users:
        server.services.starting = True  # /readyz waits for the demo accounts
        created = await create_demo_users(server.services)
        server.services.starting = False
        for email, password in created:
            print(f"demo user: {email} / password: {password}", flush=True)
    print(f"WhatsEase is serving on http://{_display_host(config.host)}:{server.port}",
          flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    logger.info("shutting down")
    await server.stop()


def _reader_on_first_need() -> None:
    """Let the assistant's sentence reader load when first asked, not at start-up.

    It is most of an idle server's memory (~140 MiB of ~250); the first answers
    come from the words while it loads (whatsease/bot/semantic.py)."""
    try:
        from whatsease.bot.semantic import train_on_first_need
    except ImportError:  # not installed: the assistant reads with words alone anyway
        return
    train_on_first_need()


def _display_host(host: str) -> str:
    return "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
