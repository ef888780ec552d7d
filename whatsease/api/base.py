"""The base REST handler: JSON bodies, bearer authentication, problem+json errors, logging."""

from __future__ import annotations

import logging
import re
import secrets
import sys
import time
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


def route(template: str, handler: type[BaseHandler], services: Services,
          **kwargs: Any) -> URLSpec:
    """A URL rule from an OpenAPI-style template (``/api/v1/messages/{message_id}``)."""
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$"
    return URLSpec(pattern, handler, dict(services=services, route=template, **kwargs),
                   name=template)


def allowed_methods(handler: type[tornado.web.RequestHandler]) -> list[str]:
    """The HTTP methods ``handler`` implements (RequestHandler's own answer 405)."""
    return [m for m in handler.SUPPORTED_METHODS
            if getattr(handler, m.lower()) is not getattr(tornado.web.RequestHandler, m.lower())]


class AnnouncesAllowedMethods(tornado.web.RequestHandler):
    """Mixin: a 405 carries ``Allow``, for handlers that keep Tornado's error page."""

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 405:
            self.set_header("Allow", ", ".join(allowed_methods(type(self))))
        super().write_error(status_code, **kwargs)


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
        self.set_header("Location", location)
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
