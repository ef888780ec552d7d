"""A development stand-in for Fly.io's proxy in front of a local cluster.

NOT FOR PRODUCTION: on Fly.io, Fly's own proxy does this job. The front lets
``scripts/cluster``, the tests and ``bench/cluster_load.py`` exercise the
cluster's routing on one machine, the way Fly's proxy would drive it:

- every new request, and every WebSocket upgrade, goes to an instance chosen by
  least connections (ties taken in turn) or round-robin;
- when an instance answers with a ``fly-replay`` header, the answer is dropped
  and the *same* request (method, path, headers, body) is sent again where the
  header says, with a ``fly-replay-src`` header (``instance``, ``region``,
  ``t`` in microseconds since the epoch, ``state``) saying who asked; a
  WebSocket upgrade is replayed the same way, as long as the instance that
  answers ``fly-replay`` did not upgrade it;
- a request with a body over 1 MB is not replayed: the client gets 502, as
  Fly's proxy answers with an error;
- once upgraded, a WebSocket's bytes are piped both ways in bounded chunks
  (each chunk is written before the next is read).

Fields of ``fly-replay`` understood: ``instance`` (that instance or an error),
``prefer_instance`` (that instance if listed, else any), ``region`` (every
local instance is in one region, `DEFAULT_REGION`, so any instance serves),
``elsewhere=true`` (not the one that answered), ``state``, ``timeout``
(connecting to the target) and ``fallback`` (``force_self``/``prefer_self``:
back to the instance that answered, with a ``fly-replay-failed`` header, and
no further replay). ``app`` (another app) and Fly's JSON replay body are not
supported and answer 502. A request is replayed at most `MAX_REPLAYS` times
(a loop guard of this stand-in). Headers the client sends under the names
``fly-replay-src`` and ``fly-replay-failed`` are dropped.

Instances come from a `Backends` source (``backends.py``): a fixed mapping or
a file of ``id=url`` lines re-read when it changes (``LocalCluster`` keeps
one); ``fly-replay`` is parsed in ``replay.py``.
Every answer it relays carries ``X-Front-Instance: <id>``, the instance that
gave it (a development aid that Fly's proxy does not add: the cluster bench
reads it to tell where a socket ended up).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import tornado.httpserver
import tornado.netutil
import tornado.web
from tornado import httputil
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.iostream import IOStream, StreamClosedError
from tornado.tcpclient import TCPClient

from whatsease.cluster.backends import (
    BALANCING,
    Backends,
    Balancer,
    FileBackends,
    FrontStats,
    StaticBackends,
)
from whatsease.cluster.replay import Replay, ReplayError, parse_replay, replay_source

logger = logging.getLogger("whatsease.cluster.front")

DEFAULT_REGION = "local"
# Fly's proxy does not replay requests over 1 MB.
REPLAY_MAX_BODY_BYTES = 1024 * 1024
# What the front accepts at all (the instances take 1 MiB; more is for the rule above).
MAX_BODY_BYTES = 4 * 1024 * 1024
MAX_HEADER_BYTES = 64 * 1024
MAX_REPLAYS = 5
CONNECT_TIMEOUT_SECS = 5.0
HEADER_TIMEOUT_SECS = 60.0
# One WebSocket direction holds at most this much in the front at a time.
PIPE_CHUNK_BYTES = 64 * 1024
# Hop-by-hop headers (RFC 9110 7.6.1) are the front's own, never forwarded;
# an upgrade keeps Connection and Upgrade, which are what it asks for.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authenticate",
                        "proxy-authorization", "te", "trailer", "transfer-encoding", "upgrade"})
# Only the proxy writes these on a request.
PROXY_ONLY = frozenset({"fly-replay-src", "fly-replay-failed"})
# Names the instance that gave an answer (the front's own addition).
INSTANCE_HEADER = "X-Front-Instance"


# -- the proxy --------------------------------------------------------------------------


class Front:
    """The proxy: `listen` on a port, `stop` to close it and every piped socket."""

    def __init__(self, backends: Backends | Mapping[str, str], *,
                 balancing: str = "least-connections", region: str = DEFAULT_REGION) -> None:
        self.backends: Backends = (StaticBackends(backends) if isinstance(backends, Mapping)
                                   else backends)
        self.balancer = Balancer(balancing)
        self.region = region
        self.stats = FrontStats()
        self.server: tornado.httpserver.HTTPServer | None = None
        self.port = 0
        self.pipes: set[IOStream] = set()
        self.app = tornado.web.Application([(r".*", ProxyHandler, {"front": self})])

    async def listen(self, port: int = 0, host: str = "127.0.0.1") -> int:
        """Start serving; returns the bound port."""
        self.server = tornado.httpserver.HTTPServer(
            self.app, max_body_size=MAX_BODY_BYTES, max_header_size=MAX_HEADER_BYTES,
            idle_connection_timeout=120, body_timeout=30)
        sockets = tornado.netutil.bind_sockets(port, host)
        self.port = sockets[0].getsockname()[1]
        self.server.add_sockets(sockets)
        logger.info("front (development stand-in for Fly's proxy) on http://%s:%d",
                    host, self.port)
        return self.port

    async def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
        for stream in list(self.pipes):
            stream.close()
        if self.server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.server.close_all_connections(), 5)

    def pick(self, exclude: Iterable[str] = ()) -> str | None:
        excluded = set(exclude)
        return self.balancer.pick(i for i in self.backends.current() if i not in excluded)

    def url_of(self, instance: str) -> str | None:
        return self.backends.current().get(instance)


class _Attempt(httputil.HTTPMessageDelegate):
    """Reads one instance's answer: relays it, or notes a replay, or takes an upgrade."""

    def __init__(self, handler: ProxyHandler, connection: HTTP1Connection, upgrade: bool,
                 instance: str) -> None:
        self.handler = handler
        self.instance = instance
        self.connection = connection
        self.upgrade = upgrade
        self.replay: str | None = None
        self.upstream: IOStream | None = None
        self.head: tuple[httputil.ResponseStartLine, httputil.HTTPHeaders] | None = None
        self.relaying = False
        self.broken = False

    def headers_received(self, start_line: httputil.RequestStartLine | httputil.ResponseStartLine,
                         headers: httputil.HTTPHeaders) -> None:
        assert isinstance(start_line, httputil.ResponseStartLine)
        replay = headers.get("fly-replay")
        if replay is not None:
            # The answer is dropped unread: the request goes elsewhere.
            self.replay = replay
            self.connection.detach().close()
            return
        if self.upgrade and start_line.code == 101:
            self.head = (start_line, headers)
            self.upstream = self.connection.detach()
            return
        self.relaying = True
        self.handler.relay_head(start_line, headers)
        self.handler.set_header(INSTANCE_HEADER, self.instance)

    def data_received(self, chunk: bytes) -> asyncio.Future[None]:
        self.handler.write(chunk)
        return self.handler.flush()


class ProxyHandler(tornado.web.RequestHandler):
    """Every request: pick an instance, forward, follow ``fly-replay``, relay or pipe."""

    SUPPORTED_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")

    def initialize(self, front: Front) -> None:
        self.front = front

    def set_default_headers(self) -> None:
        # The instance's answer is relayed as it is: no headers of the front's own.
        self.clear_header("Server")
        self.clear_header("Content-Type")

    def compute_etag(self) -> str | None:
        return None

    async def get(self) -> None:
        await self._proxy()

    head = post = delete = patch = put = options = get

    async def _proxy(self) -> None:
        front = self.front
        front.stats.requests += 1
        upgrade = _is_upgrade(self.request.headers)
        if upgrade:
            front.stats.upgrades += 1
        headers = self._forward_headers(upgrade)
        body = self.request.body
        target = front.pick()
        tried: set[str] = set()
        replays = 0
        replaying: Replay | None = None
        responder = ""
        fell_back = False
        timeout = CONNECT_TIMEOUT_SECS
        while True:
            if target is None:
                self._fail(502, "no instance available")
                return
            url = front.url_of(target)
            attempt = None if url is None else await self._attempt(
                target, url, headers, body, upgrade, timeout)
            if attempt is None:  # could not connect (or the instance is gone)
                front.stats.connect_failures += 1
                tried.add(target)
                if replaying is None:
                    target = front.pick(exclude=tried)
                    continue
                front.stats.replay_failures += 1
                if replaying.fallback and not fell_back:
                    fell_back = True
                    headers["fly-replay-failed"] = f"instance={target};reason=unreachable"
                    target = responder
                    if replaying.fallback == "prefer_self" and front.url_of(responder) is None:
                        target = front.pick()
                    continue
                self._fail(502, f"replay to instance {target} failed: unreachable")
                return
            if attempt.replay is None:
                if attempt.upstream is not None and attempt.head is not None:
                    await self._pipe(target, attempt.upstream, *attempt.head)
                elif attempt.broken:
                    self._cut()
                elif not self._finished:
                    self.finish()
                return
            # The instance asked for a replay.
            try:
                replaying = parse_replay(attempt.replay)
            except ReplayError as exc:
                self._fail(502, str(exc))
                return
            if len(body) > REPLAY_MAX_BODY_BYTES:
                front.stats.replay_failures += 1
                self._fail(502, "a request over 1 MB cannot be replayed")
                return
            if fell_back or replays >= MAX_REPLAYS:
                front.stats.replay_failures += 1
                self._fail(502, "too many replays" if not fell_back
                           else "a request that fell back cannot be replayed again")
                return
            replays += 1
            front.stats.replays += 1
            responder = target
            headers["fly-replay-src"] = replay_source(responder, front.region, replaying.state)
            timeout = replaying.timeout or CONNECT_TIMEOUT_SECS
            try:
                target = self._replay_target(replaying, responder)
            except ReplayError as exc:
                front.stats.replay_failures += 1
                self._fail(502, str(exc))
                return
            tried = set()
            if target is None:
                self._fail(502, "no instance to replay on")
                return

    def _replay_target(self, replay: Replay, responder: str) -> str | None:
        """Where ``replay`` sends the request; an unknown ``instance`` is returned as it is
        (the attempt then fails, as on Fly). Raises `ReplayError` for ``app``."""
        if replay.app:
            raise ReplayError("replaying to another app is not available on the local front")
        if replay.instance:
            return replay.instance
        if replay.prefer_instance and self.front.url_of(replay.prefer_instance):
            return replay.prefer_instance
        return self.front.pick(exclude=[responder] if replay.elsewhere else [])

    def _forward_headers(self, upgrade: bool) -> httputil.HTTPHeaders:
        request = self.request
        headers = httputil.HTTPHeaders()
        for name, value in request.headers.get_all():
            lower = name.lower()
            if lower in PROXY_ONLY or lower == "content-length":
                continue
            if lower in HOP_BY_HOP and not (upgrade and lower in ("connection", "upgrade")):
                continue
            headers.add(name, value)
        client = request.remote_ip or ""
        forwarded = request.headers.get("X-Forwarded-For")
        headers["X-Forwarded-For"] = f"{forwarded}, {client}" if forwarded else client
        headers["Fly-Client-IP"] = client
        headers["X-Forwarded-Proto"] = request.protocol
        headers["X-Forwarded-Port"] = str(self.front.port)
        headers["Via"] = "1.1 whatsease-front"
        if request.body or request.method in ("POST", "PUT", "PATCH"):
            headers["Content-Length"] = str(len(request.body))
        if not upgrade:
            headers["Connection"] = "close"
        return headers

    async def _attempt(self, target: str, url: str, headers: httputil.HTTPHeaders, body: bytes,
                       upgrade: bool, connect_timeout: float) -> _Attempt | None:
        """Send the request to ``target``; None if it cannot be reached before an answer."""
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        front = self.front
        front.balancer.acquire(target)
        try:
            try:
                stream = await TCPClient().connect(host, port, timeout=connect_timeout,
                                                   max_buffer_size=MAX_BODY_BYTES)
            except (OSError, StreamClosedError, TimeoutError) as exc:
                logger.info("front: cannot reach %s at %s: %s", target, url, exc)
                return None
            stream.set_nodelay(True)
            connection = HTTP1Connection(stream, True, HTTP1ConnectionParameters(
                no_keep_alive=True, max_header_size=MAX_HEADER_BYTES,
                max_body_size=64 * 1024 * 1024, header_timeout=HEADER_TIMEOUT_SECS,
                decompress=False, chunk_size=PIPE_CHUNK_BYTES))
            attempt = _Attempt(self, connection, upgrade, target)
            uri = self.request.uri or "/"
            try:
                await connection.write_headers(
                    httputil.RequestStartLine(self.request.method or "GET", uri, "HTTP/1.1"),
                    headers)
                if body:
                    await connection.write(body)
                connection.finish()
                await connection.read_response(attempt)
            except (StreamClosedError, httputil.HTTPInputError, OSError) as exc:
                if not (attempt.relaying or attempt.replay or attempt.upstream):
                    logger.info("front: %s closed before answering: %s", target, exc)
                    stream.close()
                    return None
                attempt.broken = attempt.relaying
            finally:
                if attempt.upstream is None:
                    stream.close()
            if attempt.relaying and not attempt.replay and attempt.upstream is None:
                front.stats.per_instance[target] = front.stats.per_instance.get(target, 0) + 1
            return attempt
        finally:
            front.balancer.release(target)

    def relay_head(self, start_line: httputil.ResponseStartLine,
                   headers: httputil.HTTPHeaders) -> None:
        """Take the instance's status and headers as this response's."""
        self.set_status(start_line.code, start_line.reason or "Unknown")
        for name in {n for n, _ in headers.get_all()}:
            if name.lower() in HOP_BY_HOP:
                continue
            self.clear_header(name)
            for value in headers.get_list(name):
                self.add_header(name, value)

    async def _pipe(self, target: str, upstream: IOStream, start_line: httputil.ResponseStartLine,
                    headers: httputil.HTTPHeaders) -> None:
        """Hand the upgrade's answer to the client, then pipe bytes both ways until one closes."""
        front = self.front
        front.stats.per_instance[target] = front.stats.per_instance.get(target, 0) + 1
        client = self.detach()
        # Frames are small and interactive: without this a frame written while the
        # previous one is unacknowledged waits for the client's delayed ACK.
        client.set_nodelay(True)
        lines = [f"HTTP/1.1 {start_line.code} {start_line.reason}"]
        lines += [f"{name}: {value}" for name, value in headers.get_all()]
        lines.append(f"{INSTANCE_HEADER}: {target}")
        front.balancer.acquire(target)
        front.stats.open_pipes += 1
        front.pipes.update((client, upstream))
        try:
            await client.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await asyncio.gather(_copy(client, upstream), _copy(upstream, client))
        except StreamClosedError:
            pass
        finally:
            client.close()
            upstream.close()
            front.pipes.difference_update((client, upstream))
            front.stats.open_pipes -= 1
            front.balancer.release(target)

    def _fail(self, status: int, reason: str) -> None:
        logger.info("front: %s %s: %d %s", self.request.method, self.request.path, status, reason)
        if self._finished:
            return
        if self._headers_written:
            self._cut()
            return
        self.clear()
        self.set_status(status)
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"front: {reason}\n")

    def _cut(self) -> None:
        """Part of an answer went out and the rest will not come: close the client's connection."""
        if not self._finished:
            self.detach().close()

    def log_exception(self, typ: Any, value: Any, tb: Any) -> None:
        if isinstance(value, StreamClosedError):  # the client left
            return
        super().log_exception(typ, value, tb)


async def _copy(source: IOStream, sink: IOStream) -> None:
    """Copy until ``source`` closes, one bounded chunk at a time; then close ``sink``."""
    try:
        while True:
            chunk = await source.read_bytes(PIPE_CHUNK_BYTES, partial=True)
            await sink.write(chunk)
    except StreamClosedError:
        pass
    finally:
        sink.close()


def _is_upgrade(headers: httputil.HTTPHeaders) -> bool:
    connection = {token.strip().lower() for token in headers.get("Connection", "").split(",")}
    return "upgrade" in connection and bool(headers.get("Upgrade"))


# -- command line -------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """``python -m whatsease.cluster.front --backends FILE``: serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(
        prog="python -m whatsease.cluster.front",
        description="Development stand-in for Fly.io's proxy in front of a local cluster "
                    "(follows fly-replay). Not for production.")
    parser.add_argument("--backends", required=True,
                        help="file of id=url lines (re-read when it changes)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int,
                        default=int(os.environ.get("WHATSEASE_PORT", "8080") or 8080))
    parser.add_argument("--balancing", choices=BALANCING, default="least-connections")
    parser.add_argument("--region", default=DEFAULT_REGION)
    args = parser.parse_args(argv)
    logging.basicConfig(level=os.environ.get("WHATSEASE_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s %(message)s")

    async def serve() -> None:
        front = Front(FileBackends(args.backends), balancing=args.balancing, region=args.region)
        await front.listen(args.port, args.host)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await front.stop()

    import uvloop

    uvloop.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
