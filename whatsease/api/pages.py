"""Pages of ES modules outside the web app's shell: the agent console and the analytics page.

Each logs in by itself and talks to the REST API; the server only serves its
HTML with a fresh CSP nonce and an import map that sends every module to its
content-hashed URL (a deploy never mixes stale and fresh modules).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import ClassVar

from whatsease.api import shell
from whatsease.api.base import BaseHandler
from whatsease.api.shell import connect_sources
from whatsease.errors import NotFound

STATIC_DIR = Path(__file__).resolve().parent.parent.parent / "static"
# Bytes of randomness per CSP nonce (CSP asks for at least 128 bits).
NONCE_BYTES = 18


def page_csp(nonce: str, socket_origin: str | None = None) -> str:
    """A module page's CSP: its own scripts and styles, plus the one inline import map (nonce)."""
    return (f"default-src 'self'; connect-src {connect_sources(socket_origin)}; "
            "img-src 'self' data:; "
            f"style-src 'self'; script-src 'self' 'nonce-{nonce}'; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'self'; object-src 'none'")


class ModulePage(BaseHandler):
    """Serves ``PAGE`` (a template under static/) with the import map of ``MODULE_DIRS``."""

    PAGE: ClassVar[str]
    MODULE_DIRS: ClassVar[tuple[str, ...]]
    TITLE: ClassVar[str]

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Frame-Options", "DENY")

    def get(self) -> None:
        page = STATIC_DIR / self.PAGE
        if not page.exists():
            raise NotFound(f"The {self.TITLE} is not installed.")
        nonce = secrets.token_urlsafe(NONCE_BYTES)
        self.set_header("Content-Security-Policy", page_csp(nonce, self.socket_origin()))
        self.render(self.PAGE, nonce=nonce,
                    import_map=shell.import_map(STATIC_DIR, self.static_url, dirs=self.MODULE_DIRS))

    def get_template_path(self) -> str:
        return str(STATIC_DIR)
