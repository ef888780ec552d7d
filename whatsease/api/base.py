"""The base REST handler: JSON bodies, bearer authentication, problem+json errors, logging."""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
import urllib.parse
from types import TracebackType
from typing import Any

import orjson
import tornado.web
from tornado.routing import URLSpec

from whatsease.auth.service import Principal
from whatsease.errors import (
    AppError,
    BadRequest,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    invalid,
)
from whatsease.metrics import HTTP_LATENCY, HTTP_REQUESTS
from whatsease.services import Services

access_log = logging.getLogger("whatsease.access")
logger = logging.getLogger(__name__)

MAX_JSON_BODY_BYTES = 64 * 1024
# An IPv6 address with a zone fits; anything longer in a header is not an address.
MAX_IP_CHARS = 64
PROBLEM_TYPE = "application/problem+json"
JSON_TYPE = "application/json"
# One year, the value HSTS preload lists ask for; sent only over TLS.
HSTS_MAX_AGE_SECS = 365 * 24 * 3600
HSTS = f"max-age={HSTS_MAX_AGE_SECS}; includeSubDomains"
# What a Host header may hold for us to echo it into a CSP: a name or an
# address and a port, nothing that could end the directive.
_HOST = re.compile(r"^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?$")
# Characters a Location path may keep as they are (RFC 3986 pchar, "/", "?" and an
# existing "%" escape).
LOCATION_SAFE = "/?:@!$&'()*+,;=-._~%"
_METHODS = ("GET", "HEAD", "POST", "DELETE", "PATCH", "PUT", "OPTIONS")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise BadRequest(f"The body names {key!r} twice; send each key once.",
                             code="duplicate_key")
        seen[key] = value
    return seen


def check_duplicate_keys(raw: bytes) -> None:
    """Raise `BadRequest` if any JSON object in ``raw`` (already valid JSON) repeats a key.

    orjson keeps the last of repeated keys silently; a proxy or another parser
    may keep the first, so two readers of one body could disagree.
    """
    # Only an object with two or more members can repeat a key.
    if raw.count(b":") > 1:
        json.loads(raw, object_pairs_hook=_refuse_duplicates)


def served_over_tls(handler: tornado.web.RequestHandler, trusted_proxy: bool) -> bool:
    """True when the client reached us over TLS: directly, or at a trusted proxy that says so.

    Only the proxy's own (last) X-Forwarded-Proto entry counts, as for X-Forwarded-For.
    """
    if handler.request.protocol == "https":
        return True
    if trusted_proxy:
        proto = handler.request.headers.get("X-Forwarded-Proto", "")
        return proto.rsplit(",", 1)[-1].strip().lower() == "https"
    return False


def socket_origin(handler: tornado.web.RequestHandler, trusted_proxy: bool) -> str | None:
    """This server's own WebSocket origin as the client sees it (``wss://host``), for CSP.

    None when the Host header is not a plain host[:port] (it is the client's word).
    """
    host = handler.request.host or ""
    if not _HOST.match(host):
        return None
    return ("wss://" if served_over_tls(handler, trusted_proxy) else "ws://") + host


def allowed_methods(handler: type[tornado.web.RequestHandler]) -> list[str]:
    """The methods ``handler`` implements, for the ``Allow`` header of a 405."""
    base = tornado.web.RequestHandler
    found = [m for m in _METHODS
             if getattr(handler, m.lower(), None) is not getattr(base, m.lower(), None)]
    return found


def quote_segment(value: str) -> str:
    """``value`` as one URL path segment: every reserved or non-ASCII character escaped."""
    return urllib.parse.quote(value, safe="@")


def route(template: str, handler: type[BaseHandler], services: Services,
          **kwargs: Any) -> URLSpec:
    """A URL rule from an OpenAPI-style template (``/api/v1/messages/{message_id}``)."""
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"
    return URLSpec(pattern, handler, dict(services=services, route=template, **kwargs),
                   name=template)


class BaseHandler(tornado.web.RequestHandler):
    """Thin handlers: parse, authorise, call one service function, write JSON.

    Services raise `AppError`; `write_error` renders it as RFC 9457
    problem+json. Client errors are logged as warnings without a traceback,
    everything else as an error with one and an opaque ``ref`` for the user.
    """

    services: Services
    route: str
    principal: Principal | None = None

    def initialize(self, services: Services, route: str) -> None:
        self.services = services
        self.route = route
        self._started = time.perf_counter()
        self._error_ref: str | None = None

    async def _execute(self, transforms: list[tornado.web.OutputTransform], *args: bytes,
                       **kwargs: bytes) -> None:
        # Counted so that a graceful shutdown can wait for requests under way
        # instead of closing their connections mid-answer.
        self.services.requests.enter()
        try:
            await super()._execute(transforms, *args, **kwargs)
        finally:
            self.services.requests.leave()

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Referrer-Policy", "no-referrer")

    def flush(self, include_footers: bool = False) -> Any:
        # Every response (errors included) passes here before its headers go out.
        if not self._headers_written and self.over_tls():
            self.set_header("Strict-Transport-Security", HSTS)
        return super().flush(include_footers)

    def over_tls(self) -> bool:
        services = getattr(self, "services", None)
        return served_over_tls(self, bool(services and services.config.trusted_proxy))

    def socket_origin(self) -> str | None:
        """This server's WebSocket origin as the client reached it (for CSP ``connect-src``)."""
        services = getattr(self, "services", None)
        return socket_origin(self, bool(services and services.config.trusted_proxy))

    def prepare(self) -> None:
        size = len(self.request.body or b"")
        if self.request.method in ("POST", "PUT", "PATCH") and size > MAX_JSON_BODY_BYTES:
            raise PayloadTooLarge(f"The body is {size} bytes; the limit is "
                                  f"{MAX_JSON_BODY_BYTES}.")

    def get_query_argument(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """Tornado's, but a parameter given more than once is a 422 naming it.

        Tornado would silently take the last value; which one the caller meant is a
        guess, so it is refused (the OpenAPI document describes each parameter once).
        """
        if len(self.request.query_arguments.get(name, ())) > 1:
            raise invalid(name, "must be given at most once")
        return super().get_query_argument(name, *args, **kwargs)

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object: 415 if not JSON, 400 if malformed."""
        kind = self.request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if kind != JSON_TYPE:
            raise UnsupportedMediaType(f"Send the body as {JSON_TYPE}, not {kind or 'nothing'}.")
        try:
            body = orjson.loads(self.request.body or b"")
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"The body is not valid JSON: {exc}", code="malformed_json") from None
        if not isinstance(body, dict):
            raise BadRequest("The body must be a JSON object.", code="malformed_json")
        check_duplicate_keys(self.request.body)
        return body

    async def authenticate(self) -> Principal:
        """The caller, from ``Authorization: Bearer <access token>``; 401 otherwise."""
        header = self.request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("Send an access token: Authorization: Bearer <token>.",
                               code="missing_token")
        self.principal = await self.services.auth.authenticate(token.strip())
        return self.principal

    def replay_to_owner(self, route: str) -> None:
        """Clustering: when another instance owns ``route`` (an org's state lives on its
        owner), answer 307 with ``fly-replay`` so the proxy replays the request there, and
        stop handling it (`tornado.web.Finish`). Does nothing when clustering is off."""
        cluster = self.services.cluster
        if cluster is None:
            return
        owner = cluster.replay_target(route, replayed="fly-replay-src" in self.request.headers)
        if owner is None:
            return
        self.set_status(307)
        self.set_header("fly-replay", f"instance={owner}")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Type", "application/json")
        self.finish(orjson.dumps({"replay": owner, "detail": "this organisation is served by "
                                  "another instance; the proxy replays the request there"}))
        raise tornado.web.Finish

    def client_ip(self) -> str:
        """The caller's address; behind a trusted proxy, the one the proxy saw.

        The proxy appends the address it received the request from, so only the
        last X-Forwarded-For entry is trusted; earlier ones are the client's word.
        """
        if self.services.config.trusted_proxy:
            forwarded = self.request.headers.get("X-Forwarded-For", "")
            last = forwarded.rsplit(",", 1)[-1].strip()
            if last:
                return last[:MAX_IP_CHARS]
        return str(self.request.remote_ip or "")

    def user_agent(self) -> str:
        return self.request.headers.get("User-Agent", "")

    def write_json(self, body: Any, status: int = 200, content_type: str = JSON_TYPE) -> None:
        self.set_status(status)
        self.set_header("Content-Type", f"{content_type}; charset=utf-8")
        self.finish(orjson.dumps(body))

    def created(self, body: Any, location: str) -> None:
        """201 with ``Location``; callers quote path segments (`quote_segment`). Anything
        left that a header cannot carry (non-ASCII, controls) is percent-encoded here."""
        self.set_header("Location", urllib.parse.quote(location, safe=LOCATION_SAFE))
        self.write_json(body, status=201)

    def no_content(self) -> None:
        self.set_status(204)
        self.finish()

    def _handle_request_exception(self, e: BaseException) -> None:
        # Route our own typed errors to write_error with their status; anything
        # else is Tornado's usual 500 path.
        if isinstance(e, AppError):
            self.log_exception(*sys.exc_info())
            if self._finished:
                return
            self.send_error(e.status, exc_info=sys.exc_info())
            return
        super()._handle_request_exception(e)

    def log_exception(self, typ: type[BaseException] | None, value: BaseException | None,
                      tb: TracebackType | None) -> None:
        if isinstance(value, AppError | tornado.web.HTTPError):
            return  # the access log line records it
        self._error_ref = secrets.token_hex(6)
        logger.error("unhandled error in %s %s (ref %s)", self.request.method, self.route,
                     self._error_ref, exc_info=(typ, value, tb))  # type: ignore[arg-type]

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, AppError):
            error = exc
        elif isinstance(exc, tornado.web.HTTPError) and status_code < 500:
            error = AppError(exc.log_message or self._reason)
            error.status, error.code, error.title = status_code, "http_error", self._reason
        else:
            error = AppError("Something went wrong on our side; it has been logged"
                             + (f" with ref {self._error_ref}." if self._error_ref else "."))
            error.status, error.code, error.title = status_code, "internal", "Internal error"
        for name, value in error.headers.items():
            self.set_header(name, value)
        if status_code == 405:
            # RFC 9110: a 405 lists the methods the resource does answer.
            self.set_header("Allow", ", ".join(allowed_methods(type(self))))
        if error.status == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="whatsease"')
        body = error.to_problem(instance=self.request.path)
        if self._error_ref:
            body["ref"] = self._error_ref
        self.set_header("Content-Type", f"{PROBLEM_TYPE}; charset=utf-8")
        self.finish(orjson.dumps(body))

    def on_finish(self) -> None:
        elapsed = time.perf_counter() - self._started
        status = self.get_status()
        method = self.request.method or "GET"
        HTTP_REQUESTS.labels(method, self.route, str(status)).inc()
        HTTP_LATENCY.labels(method, self.route).observe(elapsed)
        # The path never holds a secret (tokens travel in headers and bodies);
        # the query string is left out all the same.
        access_log.info("request", extra={
            "method": method, "route": self.route, "path": self.request.path,
            "status": status, "ms": round(elapsed * 1000, 2), "ip": self.client_ip(),
            "user": self.principal.email if self.principal else None})


class NotFoundHandler(BaseHandler):
    """Unknown API paths: a problem+json 404 instead of Tornado's HTML page."""

    def prepare(self) -> None:
        raise NotFound(f"No API route {self.request.path}.")
