"""The app shell: client routes serve it, with a nonce'd import map versioning each module."""

from __future__ import annotations

import json
import re

import pytest

from tests.support import Client, ServerThread
from whatsease.app import STATIC_DIR


@pytest.mark.parametrize("path", ["/", "/login", "/register", "/chat/bob%40example.com", "/bot",
                                  "/activity", "/settings"])
def test_client_routes_serve_the_shell(server: ServerThread, path: str) -> None:
    res = Client(server.port).get(path)
    assert res.status == 200
    assert res.header("Content-Type") or "".startswith("text/html")
    assert res.header("Cache-Control") == "no-cache"
    assert b'<script type="module" src="/static/js/app.js?v=' in res.body


def test_import_map_versions_every_module_under_one_nonce(server: ServerThread) -> None:
    first, second = Client(server.port).get("/"), Client(server.port).get("/")
    html = first.body.decode()
    csp = first.header("Content-Security-Policy") or ""
    nonce = re.search(r"'nonce-([A-Za-z0-9_-]+)'", csp)
    assert nonce, csp
    assert "script-src 'self' 'nonce-" in csp and "unsafe-inline" not in csp
    # A fresh nonce per response, carried only by the import map.
    assert nonce.group(1) not in (second.header("Content-Security-Policy") or "")
    assert html.count(f'nonce="{nonce.group(1)}"') == 1
    found = re.search(r'<script type="importmap" nonce="[^"]+">(.*?)</script>', html, re.S)
    assert found
    imports = json.loads(found.group(1))["imports"]
    modules = sorted("/static/" + p.relative_to(STATIC_DIR).as_posix()
                     for d in ("js", "shared") for p in (STATIC_DIR / d).rglob("*.js"))
    assert sorted(imports) == modules
    for url, versioned in imports.items():
        assert re.fullmatch(re.escape(url) + r"\?v=[0-9a-f]+", versioned), versioned
        assert Client(server.port).get(versioned).status == 200
