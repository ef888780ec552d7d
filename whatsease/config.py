"""Configuration: one frozen object built from ``WHATSEASE_*`` environment variables."""

from __future__ import annotations

import dataclasses
import os
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from whatsease.errors import ConfigError

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
JWT_SECRET_FILE = "jwt-secret"  # noqa: S105 (a file name)
# HS256 keys shorter than the hash output weaken the MAC (RFC 7518 §3.2).
MIN_JWT_SECRET_BYTES = 32


def _parse_int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _parse_float(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def _parse_str(raw: str) -> str:
    return raw.strip()


def _parse_host(raw: str) -> str:
    host = raw.strip()
    # A name or an IPv4/IPv6 address; an empty host would silently bind every interface.
    if not re.fullmatch(r"[A-Za-z0-9._:-]+", host):
        raise ValueError("must be a host name or an IP address such as 127.0.0.1 or 0.0.0.0")
    return host


def _parse_mongodb_uri(raw: str) -> str:
    uri = raw.strip()
    if uri and not re.match(r"mongodb(\+srv)?://[^/\s]", uri):
        raise ValueError("must start with mongodb:// or mongodb+srv://")
    return uri


def _parse_db_name(raw: str) -> str:
    name = raw.strip()
    # MongoDB refuses / \ . " $ and spaces in database names, and long ones.
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,63}", name):
        raise ValueError("must be 1-63 letters, digits, _ or -")
    return name


def _parse_dir(raw: str) -> str:
    path = raw.strip()
    if not path:
        raise ValueError("must name a directory")
    return path


def _parse_model_path(raw: str) -> str:
    """A model folder, or one .onnx file of it (a quantized variant, say)."""
    path = raw.strip()
    if path:
        found = Path(path).expanduser()
        if not (found.is_dir() or (found.is_file() and found.suffix == ".onnx")):
            raise ValueError("no such directory or .onnx file")
    return path


def _parse_url(raw: str) -> str:
    url = raw.strip()
    if url and not re.match(r"https?://[^/\s]", url):
        raise ValueError("must start with http:// or https://")
    return url


def _parse_file(raw: str) -> str:
    path = raw.strip()
    if path and not Path(path).expanduser().is_file():
        raise ValueError("no such file")
    return path


def _redact(raw: str) -> str:
    # A connection string may carry a password: never echo user:password@.
    return re.sub(r"//[^/@\s]*@", "//***@", raw)


def _parse_origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ValueError(f"origin {origin!r} must start with http:// or https://")
    return origins


def _parse_log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def _parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def _parse_auto_bool(raw: str) -> bool | None:
    # None: decide at start (on when the optional part is installed).
    if raw.strip().lower() in ("auto", ""):
        return None
    try:
        return _parse_bool(raw)
    except ValueError:
        raise ValueError("must be auto, true or false") from None


@dataclass(frozen=True)
class Setting:
    """One environment variable: its field, parser, default and help text."""

    env: str
    field: str
    parse: Callable[[str], Any]
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("WHATSEASE_HOST", "host", _parse_host, "127.0.0.1",
            "Address to listen on (0.0.0.0 in containers)."),
    Setting("WHATSEASE_PORT", "port", _parse_int(0, 65535), 8080, "TCP port to listen on."),
    Setting("WHATSEASE_MONGODB_URI", "mongodb_uri", _parse_mongodb_uri, "",
            "MongoDB connection string. Empty: start the embedded development database."),
    Setting("WHATSEASE_DB_NAME", "db_name", _parse_db_name, "whatsease", "Database name."),
    Setting("WHATSEASE_DATA_DIR", "data_dir", _parse_dir, "data",
            "Directory for the embedded database and the generated JWT secret."),
    Setting("WHATSEASE_JWT_SECRET", "jwt_secret", _parse_str, "",
            "Secret for signing access tokens (32+ bytes). Empty: generated once and kept "
            "in the data dir."),
    Setting("WHATSEASE_ACCESS_TOKEN_TTL", "access_token_ttl", _parse_int(30, 86400), 900,
            "Access token lifetime in seconds."),
    Setting("WHATSEASE_REFRESH_TOKEN_TTL", "refresh_token_ttl",
            _parse_int(300, 400 * 86400), 30 * 86400,
            "Refresh token (session) lifetime in seconds."),
    Setting("WHATSEASE_BCRYPT_ROUNDS", "bcrypt_rounds", _parse_int(4, 16), 12,
            "bcrypt cost factor (4 is for tests only)."),
    Setting("WHATSEASE_ALLOWED_ORIGINS", "allowed_origins", _parse_origins, (),
            "Comma-separated origins allowed to open WebSockets, besides the server's own."),
    Setting("WHATSEASE_LOG_LEVEL", "log_level", _parse_log_level, "INFO",
            "DEBUG, INFO, WARNING or ERROR."),
    Setting("WHATSEASE_LOGIN_MAX_FAILURES", "login_max_failures", _parse_int(1, 1000), 5,
            "Failed logins per account (x4 per IP) before 429."),
    Setting("WHATSEASE_LOGIN_WINDOW", "login_window", _parse_int(1, 86400), 300,
            "Window in seconds for counting failed logins."),
    Setting("WHATSEASE_WS_SEND_RATE", "ws_send_rate", _parse_float(0.1, 10000), 20.0,
            "Messages per second one user may send (sustained)."),
    Setting("WHATSEASE_WS_SEND_BURST", "ws_send_burst", _parse_int(1, 100000), 40,
            "Messages one user may send in a burst."),
    Setting("WHATSEASE_WS_QUEUE_FRAMES", "ws_queue_frames", _parse_int(8, 1000000), 1000,
            "Frames a socket may have unsent before it is closed with 4008."),
    Setting("WHATSEASE_WS_MAX_SOCKETS_PER_USER", "ws_max_sockets_per_user", _parse_int(1, 10000),
            20, "Sockets one user may have open; a new one closes the oldest with 4009."),
    Setting("WHATSEASE_BOT_CATALOGUE", "bot_catalogue", _parse_file, "",
            "TOML intent catalogue for bot:whatsease. Empty: the built-in one."),
    Setting("WHATSEASE_BOT_HISTORY_MAX_MESSAGES", "bot_history_max_messages",
            _parse_int(0, 10000), 50, "Bot turns kept per user."),
    Setting("WHATSEASE_BOT_HISTORY_MAX_CHARS", "bot_history_max_chars",
            _parse_int(0, 10_000_000), 20000, "Characters of bot history kept per user."),
    Setting("WHATSEASE_BOT_HISTORY_MAX_AGE", "bot_history_max_age",
            _parse_int(0, 3650 * 86400), 30 * 86400, "Seconds bot history is kept."),
    Setting("WHATSEASE_BOT_SEMANTIC", "bot_semantic", _parse_auto_bool, None,
            "The bot's sentence reader: a second opinion on messages its words cannot "
            "place or place with little to spare. auto: on unless its encoder package "
            "(installed with WhatsEase) is missing; true: required, the server refuses to "
            "start without it; false: words only, about 140 MiB less memory (docs/bot.md)."),
    Setting("WHATSEASE_BOT_SEMANTIC_MODEL", "bot_semantic_model", _parse_model_path, "",
            "Folder of a sentence-transformers model exported to ONNX (or one .onnx "
            "file in it) for the sentence reader instead of the built-in encoder; "
            "setting it turns the reader on (needs whatsease[semantic-onnx]; docs/bot.md)."),
    Setting("WHATSEASE_LLM_URL", "llm_url", _parse_url, "",
            "OpenAI-compatible chat-completions URL for the bot's fallback. Empty: none."),
    Setting("WHATSEASE_LLM_TOKEN", "llm_token", _parse_str, "",
            "Bearer token for the language-model endpoint."),
    Setting("WHATSEASE_LLM_MODEL", "llm_model", _parse_str, "",
            "Model name sent to the language-model endpoint."),
    Setting("WHATSEASE_LLM_TIMEOUT", "llm_timeout", _parse_float(0.1, 60), 4.0,
            "Seconds to wait for the language model before the fallback reply."),
    Setting("WHATSEASE_DEMO_USERS", "demo_users", _parse_bool, False,
            "Create two demo users on first start (scripts/run sets this)."),
    Setting("WHATSEASE_TRUSTED_PROXY", "trusted_proxy", _parse_bool, False,
            "Behind a reverse proxy (Fly.io): take the client's address from the last "
            "X-Forwarded-For entry. Never set it when clients connect directly."),
)


@dataclass(frozen=True)
class Config:
    """Validated settings. Build with `Config.from_env`; never mutate."""

    host: str = "127.0.0.1"
    port: int = 8080
    mongodb_uri: str = ""
    db_name: str = "whatsease"
    data_dir: str = "data"
    jwt_secret: str = ""
    access_token_ttl: int = 900
    refresh_token_ttl: int = 30 * 86400
    bcrypt_rounds: int = 12
    allowed_origins: tuple[str, ...] = ()
    log_level: str = "INFO"
    login_max_failures: int = 5
    login_window: int = 300
    ws_send_rate: float = 20.0
    ws_send_burst: int = 40
    ws_queue_frames: int = 1000
    ws_max_sockets_per_user: int = 20
    bot_catalogue: str = ""
    bot_history_max_messages: int = 50
    bot_history_max_chars: int = 20000
    bot_history_max_age: int = 30 * 86400
    bot_semantic: bool | None = None  # None: auto
    bot_semantic_model: str = ""
    llm_url: str = ""
    llm_token: str = ""
    llm_model: str = ""
    llm_timeout: float = 4.0
    demo_users: bool = False
    trusted_proxy: bool = False

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Config:
        """Read every ``WHATSEASE_*`` variable; raise `ConfigError` naming a bad one."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = env.get(setting.env)
            if raw is None:
                continue
            try:
                values[setting.field] = setting.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{setting.env}={_redact(raw)!r} is invalid: {exc}") from None
        config = cls(**values)
        if config.jwt_secret and len(config.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ConfigError(
                f"WHATSEASE_JWT_SECRET is too short: it needs at least "
                f"{MIN_JWT_SECRET_BYTES} bytes, got {len(config.jwt_secret.encode())}."
            )
        return config

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    def with_jwt_secret(self) -> Config:
        """Return a config whose JWT secret is set, generating one in the data dir if needed.

        The secret is created once with mode 0600 and reused on later starts, so
        tokens survive a restart; it is never logged.
        """
        if self.jwt_secret:
            return self
        path = self.data_path / JWT_SECRET_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            secret = path.read_text().strip()
            if len(secret.encode()) < MIN_JWT_SECRET_BYTES:
                raise ConfigError(f"{path} holds a JWT secret that is too short") from None
            return self.replace(jwt_secret=secret)
        secret = secrets.token_urlsafe(48)
        with os.fdopen(fd, "w") as handle:
            handle.write(secret + "\n")
        return self.replace(jwt_secret=secret)


def _show_default(value: Any) -> str:
    # As the variable would be written: "true", "a,b", "" for unset, "auto" for None.
    if value is None:
        return "auto"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def describe_settings() -> str:
    """The ``--help`` text for the environment variables."""
    lines = ["environment variables:"]
    for s in SETTINGS:
        default = _show_default(s.default)
        shown = "(empty)" if default == "" else default
        lines.append(f"  {s.env:<36} {s.help} Default: {shown}.")
    return "\n".join(lines)


def settings_markdown() -> str:
    """The README's configuration table, generated from `SETTINGS`."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for s in SETTINGS:
        default = _show_default(s.default)
        shown = "*(empty)*" if default == "" else f"`{default}`"
        rows.append(f"| `{s.env}` | {shown} | {s.help} |")
    return "\n".join(rows)
