"""The web client's app shell: its Content-Security-Policy and the import map that versions modules.

Why an import map: ``static_url`` puts a content hash (``?v=...``) on the URLs
written in ``index.html``, so those can be cached for ever; but an ES module's
own ``import "./api.js"`` statements resolve to bare ``/static/js/api.js``, which
would be cached without a version and go stale after a deploy. The shell
therefore inlines an import map that sends every ``/static/js/**.js`` and
``/static/shared/**.js`` (the core shared with the console and the widget) URL
to its hashed twin. An inline script needs the CSP's permission: each response gets a
fresh nonce that only the import map carries, and ``script-src`` stays
``'self'`` for everything else.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path

import orjson

# The messenger's modules and the front-end core they share with the console and the widget.
MODULES_DIRS = ("js", "shared")
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


def import_map(static_dir: Path, static_url: Callable[[str], str],
               dirs: tuple[str, ...] = MODULES_DIRS) -> str:
    """JSON for ``<script type="importmap">``: every module URL under ``dirs`` → its hashed URL.

    Safe to inline in HTML: ``<`` is escaped, so no path can close the script element.
    """
    imports = {}
    for directory in dirs:
        for path in sorted((static_dir / directory).rglob("*.js")):
            relative = path.relative_to(static_dir).as_posix()
            imports[STATIC_PREFIX + relative] = static_url(relative)
    return orjson.dumps({"imports": imports}).decode().replace("<", "\\u003c")


# widget.js is assembled from these, in this order, into one classic script: the
# shared core first, then the widget's connection, view and controller.
WIDGET_MODULES = ("shared/http.js", "shared/socket.js", "widget/connection.js",
                  "widget/view.js", "widget/main.js")
# Its stylesheet: the design tokens, then the widget's own rules.
WIDGET_STYLES = ("shared/tokens.css", "widget/widget.css")
_WIDGET_HEADER = b"""/*
 * WhatsEase chat widget. Embed on any page of a site the organisation allows:
 *
 *   <script src="https://HOST/widget.js" data-org="WIDGET_KEY" async></script>
 *
 * It adds a chat bubble in a shadow root (the host page's styles cannot reach
 * it, and it does not touch theirs). Assembled by the server from
 * static/shared/ and static/widget/ (see whatsease/api/shell.py).
 */
"""
_IMPORT = re.compile(r"^import\s.*\sfrom\s+['\"][^'\"]+['\"];\s*$")
_EXPORT_LIST = re.compile(r"^export\s*\{[^}]*\}\s*(from\s+['\"][^'\"]+['\"])?;\s*$")
_bundle_cache: dict[tuple[tuple[str, int], ...], bytes] = {}


def _strip_module(source: str, name: str) -> str:
    """One ES module as plain declarations: its imports and ``export`` keywords dropped.

    Raises ``ValueError`` for an import spread over several lines, which this
    build-free concatenation does not read.
    """
    lines = []
    for line in source.splitlines():
        if _IMPORT.match(line) or _EXPORT_LIST.match(line):
            continue
        if line.startswith(("import ", "import{")):
            raise ValueError(f"{name}: write each import on one line ending in ';', "
                             f"found {line!r}")
        lines.append(line.removeprefix("export "))
    return "\n".join(lines)


def widget_bundle(static_dir: Path) -> bytes:
    """``widget.js``: the widget's modules and styles as ONE embeddable classic script.

    The host page loads a single file with no imports (it may not allow our
    origin for modules, and a snippet is one ``<script>``), so the shared HTTP
    client and socket are concatenated in, every module inside one function
    scope, and the stylesheet becomes the ``WIDGET_CSS`` string. Rebuilt when a
    source file changes. Raises ``OSError`` if a source is missing.
    """
    sources = WIDGET_MODULES + WIDGET_STYLES
    key = tuple((name, (static_dir / name).stat().st_mtime_ns) for name in sources)
    cached = _bundle_cache.get(key)
    if cached is not None:
        return cached
    css = "\n".join((static_dir / name).read_text("utf-8") for name in WIDGET_STYLES)
    parts = ["(() => {", '"use strict";',
             f"const WIDGET_CSS = {orjson.dumps(css).decode()};"]
    for name in WIDGET_MODULES:
        parts.append(f"// ---- {name}")
        parts.append(_strip_module((static_dir / name).read_text("utf-8"), name))
    parts.append("})();\n")
    body = _WIDGET_HEADER + "\n".join(parts).encode()
    _bundle_cache.clear()
    _bundle_cache[key] = body
    return body
