"""Configuration: every bad value named, --help complete, the JWT secret file, the README table."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from whatsease.config import SETTINGS, Config, describe_settings, settings_markdown
from whatsease.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent

# At least one bad value for every variable (a value each parser must refuse).
BAD_VALUES: dict[str, list[str]] = {
    "WHATSEASE_HOST": ["", "   ", "local host", "http://x"],
    "WHATSEASE_PORT": ["eighty", "-1", "65536", "80.5", ""],
    "WHATSEASE_MONGODB_URI": ["localhost:27017", "http://db.example.com", "mongodb//x"],
    "WHATSEASE_DB_NAME": ["", "a/b", "a.b", "a b", "x" * 64, "$db"],
    "WHATSEASE_DB_TIMEOUT": ["0", "0.1", "61", "soon"],
    "WHATSEASE_DB_RESTARTS": ["-1", "101", "many"],
    "WHATSEASE_DB_JOURNAL": ["maybe"],
    "WHATSEASE_PUBLIC_URL": ["chat.example.com", "ftp://chat.example.com"],
    "WHATSEASE_DATA_DIR": ["", "  "],
    "WHATSEASE_JWT_SECRET": ["abc123"],
    "WHATSEASE_ACCESS_TOKEN_TTL": ["0", "29", "86401", "15m"],
    "WHATSEASE_REFRESH_TOKEN_TTL": ["10", "forever"],
    "WHATSEASE_BCRYPT_ROUNDS": ["3", "17", "twelve"],
    "WHATSEASE_ALLOWED_ORIGINS": ["example.com", "ftp://example.com", "https://a.com,b.com"],
    "WHATSEASE_LOG_LEVEL": ["LOUD", "", "TRACE"],
    "WHATSEASE_LOGIN_MAX_FAILURES": ["0", "1001", "many"],
    "WHATSEASE_LOGIN_WINDOW": ["0", "86401", "5m"],
    "WHATSEASE_WS_SEND_RATE": ["0", "nan", "fast", "10001"],
    "WHATSEASE_WS_SEND_BURST": ["0", "1.5"],
    "WHATSEASE_WS_QUEUE_FRAMES": ["7", "lots"],
    "WHATSEASE_WS_MAX_SOCKETS_PER_USER": ["0", "many"],
    "WHATSEASE_BOT_CATALOGUE": ["/no/such/catalogue.toml"],
    "WHATSEASE_BOT_SEMANTIC_MODEL": ["/no/such/model/folder"],
    "WHATSEASE_BOT_HISTORY_MAX_MESSAGES": ["-1", "10001", "all"],
    "WHATSEASE_BOT_HISTORY_MAX_CHARS": ["-1", "lots"],
    "WHATSEASE_BOT_HISTORY_MAX_AGE": ["-1", "1y"],
    "WHATSEASE_BOT_SEMANTIC": ["maybe", "2"],
    "WHATSEASE_LLM_URL": ["localhost:8000/v1", "ftp://llm.example.com"],
    "WHATSEASE_LLM_TIMEOUT": ["0", "61", "soon"],
    "WHATSEASE_DEMO_USERS": ["maybe", "2"],
    "WHATSEASE_TRUSTED_PROXY": ["proxy", "-1"],
    "WHATSEASE_CLUSTER": ["on", "k8s"],
    "WHATSEASE_CLUSTER_MEMBERS": ["a", "a=ftp://x", "a b=http://x:1", "a=http://x:1,a=http://y:1"],
    "WHATSEASE_CLUSTER_SELF": ["a b", "a/b", "x" * 65],
    "WHATSEASE_CLUSTER_PORT": ["-1", "65536", "http"],
    "WHATSEASE_CLUSTER_POLL_INTERVAL": ["0", "301", "often"],
    "WHATSEASE_CLUSTER_HEARTBEAT_TIMEOUT": ["0.5", "601", "soon"],
    "WHATSEASE_CLUSTER_SECRET": ["short", "has a space in it, sadly"],
    "WHATSEASE_CLUSTER_MEMBERS_FILE": ["members.txt"],
    "WHATSEASE_OUTBOUND_ALLOW_PRIVATE": ["maybe"],
    "WHATSEASE_RESET_LINK_TTL": ["0", "299", "1h"],
    "WHATSEASE_SMTP_PORT": ["0", "smtp"],
    "WHATSEASE_SMTP_SECURITY": ["ssl3", "yes"],
    "WHATSEASE_METRICS_PORT": ["-1", "65536", "nine"],
    "WHATSEASE_METRICS_TOKEN": ["short", "has a space in it somewhere"],
    "WHATSEASE_WHATSAPP_PHONE_NUMBER_ID": ["+4915112345678", "abc"],
    "WHATSEASE_WHATSAPP_NUMBER": ["12", "+0123456", "phone"],
    "WHATSEASE_WHATSAPP_GRAPH_URL": ["graph.facebook.com", "ftp://graph.facebook.com"],
    "WHATSEASE_WHATSAPP_BINDING": ["whatsease", "user:x", "bot:", "org:a b"],
    "WHATSEASE_TELEGRAM_API_URL": ["api.telegram.org"],
    "WHATSEASE_TELEGRAM_BINDING": ["bot", "bot:a/b"],
    "WHATSEASE_LOOPBACK_PEER_URL": ["localhost:9000"],
    "WHATSEASE_LOOPBACK_BINDING": ["org:"],
    "WHATSEASE_CHANNEL_MAX_PENDING": ["0", "many"],
    "WHATSEASE_CHANNEL_MEDIA_MAX_BYTES": ["100", "16000000", "big"],
}
# Free-form strings: anything is acceptable, so there is no bad value to give.
FREE_FORM = {"WHATSEASE_LLM_TOKEN", "WHATSEASE_LLM_MODEL", "WHATSEASE_SMTP_HOST",
             "WHATSEASE_SMTP_USER", "WHATSEASE_SMTP_PASSWORD", "WHATSEASE_SMTP_FROM",
             "WHATSEASE_WHATSAPP_APP_SECRET", "WHATSEASE_WHATSAPP_VERIFY_TOKEN",
             "WHATSEASE_WHATSAPP_TOKEN", "WHATSEASE_TELEGRAM_TOKEN",
             "WHATSEASE_TELEGRAM_SECRET_TOKEN", "WHATSEASE_LOOPBACK_SECRET"}


def test_every_setting_has_bad_values_listed() -> None:
    names = {s.env for s in SETTINGS}
    assert names - FREE_FORM == set(BAD_VALUES), "update BAD_VALUES for new settings"


@pytest.mark.parametrize(("name", "value"), [(n, v) for n, vs in BAD_VALUES.items() for v in vs])
def test_a_bad_value_names_the_variable_and_the_value(name: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({name: value})
    message = str(caught.value)
    assert name in message
    if name != "WHATSEASE_JWT_SECRET":  # a secret is never echoed, even a bad one
        assert repr(value) in message or value in message, message
    else:
        assert value not in message


def test_a_bad_uri_does_not_echo_its_password() -> None:
    with pytest.raises(ConfigError) as caught:
        Config.from_env({"WHATSEASE_MONGODB_URI": "mongo://admin:hunter2secret@db.example.com"})
    assert "hunter2secret" not in str(caught.value)
    assert "WHATSEASE_MONGODB_URI" in str(caught.value)


def test_good_values_are_parsed() -> None:
    config = Config.from_env({
        "WHATSEASE_HOST": " 0.0.0.0 ", "WHATSEASE_PORT": "9000",
        "WHATSEASE_MONGODB_URI": "mongodb+srv://u:p@cluster0.example.net/?retryWrites=true",
        "WHATSEASE_DB_NAME": "whatsease_prod", "WHATSEASE_JWT_SECRET": "s" * 40,
        "WHATSEASE_ALLOWED_ORIGINS": "https://a.example.com/, http://localhost:3000",
        "WHATSEASE_LOG_LEVEL": "debug", "WHATSEASE_WS_SEND_RATE": "2.5",
        "WHATSEASE_DEMO_USERS": "yes", "WHATSEASE_LLM_URL": "http://127.0.0.1:8000/v1/chat",
    })
    assert config.host == "0.0.0.0" and config.port == 9000
    assert config.mongodb_uri.startswith("mongodb+srv://")
    assert config.allowed_origins == ("https://a.example.com", "http://localhost:3000")
    assert config.log_level == "DEBUG" and config.ws_send_rate == 2.5
    assert config.demo_users is True
    # The sentence reader: auto (None) by default, or on or off.
    for raw, expected in (("auto", None), (" AUTO ", None), ("true", True), ("0", False)):
        assert Config.from_env({"WHATSEASE_BOT_SEMANTIC": raw}).bot_semantic is expected, raw


def test_defaults_match_the_settings_table() -> None:
    config = Config.from_env({})
    for setting in SETTINGS:
        assert getattr(config, setting.field) == setting.default, setting.env
    assert config.bcrypt_rounds == 12 and config.access_token_ttl == 15 * 60


def test_other_environment_variables_are_ignored() -> None:
    assert Config.from_env({"PATH": "/bin", "WHATSEASE": "x"}) == Config()


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(AttributeError):
        config.port = 1  # type: ignore[misc]


def test_jwt_secret_is_generated_once_with_mode_0600_and_reused(tmp_path: Path) -> None:
    config = Config(data_dir=str(tmp_path / "data"))
    first = config.with_jwt_secret()
    path = tmp_path / "data" / "jwt-secret"
    assert len(first.jwt_secret.encode()) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == first.jwt_secret
    second = Config(data_dir=str(tmp_path / "data")).with_jwt_secret()
    assert second.jwt_secret == first.jwt_secret
    # Another data dir gets another secret: never a hard-coded default.
    other = Config(data_dir=str(tmp_path / "other")).with_jwt_secret()
    assert other.jwt_secret != first.jwt_secret
    # A configured secret wins and nothing is written.
    given = Config(data_dir=str(tmp_path / "given"), jwt_secret="g" * 40).with_jwt_secret()
    assert given.jwt_secret == "g" * 40 and not (tmp_path / "given").exists()


def test_a_short_secret_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "jwt-secret").write_text("short\n")
    with pytest.raises(ConfigError, match="jwt-secret"):
        Config(data_dir=str(tmp_path)).with_jwt_secret()


def _run_whatsease(*args: str,
                   env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("WHATSEASE_")}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "whatsease", *args], cwd=ROOT, env=clean,
                          capture_output=True, text=True, timeout=60, check=False)


def test_help_lists_every_variable() -> None:
    result = _run_whatsease("--help")
    assert result.returncode == 0, result.stderr
    for setting in SETTINGS:
        assert setting.env in result.stdout, setting.env
    assert describe_settings().splitlines()[1].split()[0] in result.stdout


def test_a_bad_variable_stops_the_server_before_it_starts() -> None:
    result = _run_whatsease(env={"WHATSEASE_PORT": "eighty"})
    assert result.returncode == 2
    assert "WHATSEASE_PORT" in result.stderr and "eighty" in result.stderr


def test_the_readme_table_is_generated_from_the_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    table = settings_markdown()
    assert table in readme, "regenerate the README table: python -c \"from whatsease.config " \
                            "import settings_markdown; print(settings_markdown())\""
    for setting in SETTINGS:
        assert readme.count(f"`{setting.env}`") >= 1
