"""A channel setting that cannot work stops the server at start-up, naming the setting."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

from whatsease.storage.launcher import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
# Start-up up to the channels' set-up, on a loaded machine.
EXIT_WITHIN_SECS = 90.0


def test_a_malformed_channel_setting_stops_the_server_naming_it(mongo_uri: str,
                                                                tmp_path: Path) -> None:
    token = "123:not a bot token " + secrets.token_hex(6)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WHATSEASE_")}
    env.update(WHATSEASE_MONGODB_URI=mongo_uri, WHATSEASE_DB_NAME=f"s{secrets.token_hex(5)}",
               WHATSEASE_DATA_DIR=str(tmp_path), WHATSEASE_PORT=str(free_port()),
               WHATSEASE_HOST="127.0.0.1", WHATSEASE_BOT_SEMANTIC="false",
               WHATSEASE_TELEGRAM_TOKEN=token, WHATSEASE_TELEGRAM_SECRET_TOKEN="tg_secret-fine")
    # Before, the server hung on its way out (a background task of a service set up
    # earlier was left running) and never said why.
    done = subprocess.run([sys.executable, "-m", "whatsease"], cwd=ROOT, env=env,
                          capture_output=True, timeout=EXIT_WITHIN_SECS, check=False)
    stderr = done.stderr.decode(errors="replace")
    assert done.returncode == 2, stderr[-2000:]
    assert "WHATSEASE_TELEGRAM_TOKEN" in stderr and "<bot id>:<secret>" in stderr
    assert token not in stderr and "not a bot token" not in stderr
