"""The import map keeps its layers: every module's imports, read with ast, against the house rules.

Every import counts, including those inside functions and ``if TYPE_CHECKING`` blocks:
a cycle that only type-checks is still a cycle for a reader.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "whatsease"

# Packages and modules that hold the product's logic; storage/ must not depend on any of them.
DOMAIN = {"activity", "analytics", "api", "auth", "bot", "channels", "cluster", "delivery",
          "messaging", "realtime", "services", "support", "app"}
# Only these may import Tornado: HTTP handlers, socket classes, the application's assembly,
# and the front (the development stand-in for Fly's proxy, itself a Tornado server).
TORNADO_ALLOWED = ("api/", "realtime/transport.py", "realtime/handler.py", "app.py",
                   "cluster/front.py")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Every absolute module name ``path`` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package.pop()
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            found.add(module)
            # ``from whatsease.x import y`` may name a submodule: count it as one.
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _import_map() -> dict[str, set[str]]:
    return {str(p.relative_to(PACKAGE)): _imports(p) for p in sorted(PACKAGE.rglob("*.py"))}


def _top(module: str) -> str | None:
    """The first-level part of the package a ``whatsease.…`` module belongs to, else None."""
    parts = module.split(".")
    return parts[1] if parts[0] == "whatsease" and len(parts) > 1 else None


IMPORTS = _import_map()


def _offenders(source_prefix: str, forbidden: set[str]) -> list[str]:
    return sorted(f"{src} imports {mod}" for src, mods in IMPORTS.items()
                  if src.startswith(source_prefix) for mod in mods if _top(mod) in forbidden)


def test_the_map_is_read() -> None:
    # Guards the test itself: an empty or misparsed map would pass every rule below.
    assert "whatsease.delivery.hub" in IMPORTS["messaging/service.py"]
    assert "tornado.websocket" in IMPORTS["realtime/transport.py"]


def test_storage_imports_no_domain_package() -> None:
    assert _offenders("storage/", DOMAIN) == []


def test_messaging_does_not_import_realtime() -> None:
    # realtime/ (the socket) calls messaging; the other way round would be a cycle.
    assert _offenders("messaging/", {"realtime"}) == []


def test_delivery_imports_no_service() -> None:
    # The hub and the frames sit below every service and every socket.
    assert _offenders("delivery/", DOMAIN - {"delivery"}) == []


@pytest.mark.parametrize("package",
                         ["messaging/", "support/", "auth/", "bot/", "activity.py", "delivery/"])
def test_services_do_not_import_the_socket_layer(package: str) -> None:
    offenders = sorted(f"{src} imports {mod}" for src, mods in IMPORTS.items()
                       if src.startswith(package)
                       for mod in mods if mod.startswith(("whatsease.realtime", "whatsease.api")))
    assert offenders == []


def test_only_the_web_layer_imports_tornado() -> None:
    offenders = sorted(f"{src} imports {mod}" for src, mods in IMPORTS.items()
                       if not src.startswith(TORNADO_ALLOWED)
                       for mod in mods if mod.split(".")[0] == "tornado")
    assert offenders == []


def test_only_storage_imports_pymongo() -> None:
    offenders = sorted(f"{src} imports {mod}" for src, mods in IMPORTS.items()
                       if not src.startswith("storage/")
                       for mod in mods if mod.split(".")[0] in {"pymongo", "bson", "motor"})
    assert offenders == []
