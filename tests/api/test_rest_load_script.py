"""bench/rest_load.py still runs: a tiny load against the test server, with no errors."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support import ServerThread

SCRIPT = Path(__file__).resolve().parent.parent.parent / "bench" / "rest_load.py"


@pytest.fixture(scope="module")
def rest_load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_rest_load", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def test_the_rest_load_script_runs_without_errors(server: ServerThread, rest_load: ModuleType,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code = rest_load.main(["--url", server.url, "--users", "4", "--concurrency", "2",
                           "--duration", "1"])
    out = capsys.readouterr().out
    assert code == 0, out
    for row in ("| register |", "| login |", "| send |", "| history |", "| **mixed total** |"):
        assert row in out, out


def test_the_rest_load_script_refuses_remote_targets(rest_load: ModuleType) -> None:
    with pytest.raises(SystemExit):
        rest_load.main(["--url", "http://example.com:8080"])
