"""Static files: Tornado's handler with our security headers and problem+json errors."""

from __future__ import annotations

from typing import Any

import orjson
import tornado.web

from whatsease.api.base import HSTS, PROBLEM_TYPE, served_over_tls
from whatsease.errors import AppError, NotFound

TRUSTED_PROXY_SETTING = "whatsease_trusted_proxy"


class StaticHandler(tornado.web.StaticFileHandler):
    """``/static/...``: files served with ``nosniff``, HSTS over TLS, and errors as problem+json.

    A path Tornado cannot map to a file (a NUL byte, a directory, ``..``) is a
    404 like any missing file, never a 500.
    """

    def set_default_headers(self) -> None:
        # A browser must never guess that a .txt or .json file is a script or a page.
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")

    def flush(self, include_footers: bool = False) -> Any:
        # make_app copies the setting into the application's settings.
        trusted = bool(self.settings.get(TRUSTED_PROXY_SETTING))
        if not self._headers_written and served_over_tls(self, trusted):
            self.set_header("Strict-Transport-Security", HSTS)
        return super().flush(include_footers)

    def parse_url_path(self, url_path: str) -> str:
        if "\x00" in url_path or any(ord(ch) < 0x20 for ch in url_path):
            raise tornado.web.HTTPError(404)
        return super().parse_url_path(url_path)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        if status_code == 404:
            error: AppError = NotFound(f"No static file {self.request.path}.")
        else:
            error = AppError(self._reason)
            error.status, error.code, error.title = status_code, "http_error", self._reason
        if status_code == 405:
            self.set_header("Allow", "GET, HEAD")
        self.set_header("Content-Type", f"{PROBLEM_TYPE}; charset=utf-8")
        self.finish(orjson.dumps(error.to_problem(instance=self.request.path)))
