"""The web client's app shell: its Content-Security-Policy and the import map that versions modules.

Why an import map: ``static_url`` puts a content hash (``?v=...``) on the URLs
written in ``index.html``, so those can be cached for ever; but an ES module's
own ``import "./api.js"`` statements resolve to bare ``/static/js/api.js``, which
would be cached without a version and go stale after a deploy. The shell
therefore inlines an import map that sends every ``/static/js/**.js`` URL to its
hashed twin. An inline script needs the CSP's permission: each response gets a
fresh nonce that only the import map carries, and ``script-src`` stays
``'self'`` for everything else.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import orjson

MODULES_DIR = "js"
STATIC_PREFIX = "/static/"
# Bytes of randomness per nonce (CSP asks for at least 128 bits).
NONCE_BYTES = 18


def new_nonce() -> str:
    return secrets.token_urlsafe(NONCE_BYTES)


def connect_sources(socket_origin: str | None) -> str:
    """``connect-src``: this origin and its own WebSocket origin, no other host.

    Browsers that predate CSP 3 do not count ``ws(s)://`` to the page's host as
    ``'self'``, so the socket origin is named explicitly.
    """
    return "'self'" + (f" {socket_origin}" if socket_origin else "")


def content_security_policy(nonce: str | None = None, socket_origin: str | None = None) -> str:
    """The shell's CSP; with ``nonce``, that one inline script (the import map) may run.

    ``socket_origin`` (``wss://host``) is the only WebSocket endpoint allowed.
    """
    scripts = "'self'" + (f" 'nonce-{nonce}'" if nonce else "")
    return (f"default-src 'self'; connect-src {connect_sources(socket_origin)}; "
            "img-src 'self' data:; "
            f"style-src 'self'; script-src {scripts}; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'self'; object-src 'none'")


def import_map(static_dir: Path, static_url: Callable[[str], str]) -> str:
    """JSON for ``<script type="importmap">``: every module URL → its content-hashed URL.

    Safe to inline in HTML: ``<`` is escaped, so no path can close the script element.
    """
    imports = {}
    for path in sorted((static_dir / MODULES_DIR).rglob("*.js")):
        relative = path.relative_to(static_dir).as_posix()
        imports[STATIC_PREFIX + relative] = static_url(relative)
    return orjson.dumps({"imports": imports}).decode().replace("<", "\\u003c")
