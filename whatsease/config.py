"""Configuration: one frozen object built from ``WHATSEASE_*`` environment variables."""

from __future__ import annotations

import dataclasses
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from whatsease.errors import ConfigError
from whatsease.settings_values import (
    MEMBER_ID,
    parse_absolute_path,
    parse_auto_bool,
    parse_binding,
    parse_bool,
    parse_cluster_members,
    parse_cluster_mode,
    parse_db_name,
    parse_digits,
    parse_dir,
    parse_file,
    parse_float,
    parse_host,
    parse_int,
    parse_log_level,
    parse_member_id,
    parse_model_path,
    parse_mongodb_uri,
    parse_origins,
    parse_phone,
    parse_smtp_security,
    parse_str,
    parse_token,
    parse_url,
    redact,
)

JWT_SECRET_FILE = "jwt-secret"  # noqa: S105 (a file name)
# HS256 keys shorter than the hash output weaken the MAC (RFC 7518 §3.2).
MIN_JWT_SECRET_BYTES = 32

@dataclass(frozen=True)
class Setting:
    """One environment variable: its field, parser, default and help text."""

    env: str
    field: str
    parse: Callable[[str], Any]
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting("WHATSEASE_HOST", "host", parse_host, "127.0.0.1",
            "Address to listen on (0.0.0.0 in containers)."),
    Setting("WHATSEASE_PORT", "port", parse_int(0, 65535), 8080, "TCP port to listen on."),
    Setting("WHATSEASE_MONGODB_URI", "mongodb_uri", parse_mongodb_uri, "",
            "MongoDB connection string. Empty: start the embedded development database."),
    Setting("WHATSEASE_DB_NAME", "db_name", parse_db_name, "whatsease", "Database name."),
    Setting("WHATSEASE_DB_TIMEOUT", "db_timeout", parse_float(0.2, 60), 2.0,
            "Seconds a request waits for a database it cannot reach (server selection and "
            "connect) before answering 503 with Retry-After; while the outage lasts, "
            "requests answer 503 at once."),
    Setting("WHATSEASE_DB_RESTARTS", "db_restarts", parse_int(0, 100), 5,
            "Times in a row the embedded database is restarted (1, 2, 4... s apart) after "
            "it dies; after that /healthz answers 503 so that the platform restarts the "
            "machine."),
    Setting("WHATSEASE_DATA_DIR", "data_dir", parse_dir, "data",
            "Directory for the embedded database and the generated JWT secret."),
    Setting("WHATSEASE_JWT_SECRET", "jwt_secret", parse_str, "",
            "Secret for signing access tokens (32+ bytes). Empty: generated once and kept "
            "in the data dir."),
    Setting("WHATSEASE_ACCESS_TOKEN_TTL", "access_token_ttl", parse_int(30, 86400), 900,
            "Access token lifetime in seconds."),
    Setting("WHATSEASE_REFRESH_TOKEN_TTL", "refresh_token_ttl",
            parse_int(300, 400 * 86400), 30 * 86400,
            "Refresh token (session) lifetime in seconds."),
    Setting("WHATSEASE_BCRYPT_ROUNDS", "bcrypt_rounds", parse_int(4, 16), 12,
            "bcrypt cost factor (4 is for tests only)."),
    Setting("WHATSEASE_ALLOWED_ORIGINS", "allowed_origins", parse_origins, (),
            "Comma-separated origins allowed to open WebSockets, besides the server's own."),
    Setting("WHATSEASE_LOG_LEVEL", "log_level", parse_log_level, "INFO",
            "DEBUG, INFO, WARNING or ERROR."),
    Setting("WHATSEASE_LOGIN_MAX_FAILURES", "login_max_failures", parse_int(1, 1000), 5,
            "Failed logins per account (x4 per IP) before 429."),
    Setting("WHATSEASE_LOGIN_WINDOW", "login_window", parse_int(1, 86400), 300,
            "Window in seconds for counting failed logins."),
    Setting("WHATSEASE_WS_SEND_RATE", "ws_send_rate", parse_float(0.1, 10000), 20.0,
            "Messages per second one user may send (sustained)."),
    Setting("WHATSEASE_WS_SEND_BURST", "ws_send_burst", parse_int(1, 100000), 40,
            "Messages one user may send in a burst."),
    Setting("WHATSEASE_WS_QUEUE_FRAMES", "ws_queue_frames", parse_int(8, 1000000), 1000,
            "Frames a socket may have unsent before it is closed with 4008."),
    Setting("WHATSEASE_WS_MAX_SOCKETS_PER_USER", "ws_max_sockets_per_user", parse_int(1, 10000),
            20, "Sockets one user may have open; a new one closes the oldest with 4009."),
    Setting("WHATSEASE_BOT_CATALOGUE", "bot_catalogue", parse_file, "",
            "TOML intent catalogue for bot:whatsease. Empty: the built-in one."),
    Setting("WHATSEASE_BOT_HISTORY_MAX_MESSAGES", "bot_history_max_messages",
            parse_int(0, 10000), 50, "Bot turns kept per user."),
    Setting("WHATSEASE_BOT_HISTORY_MAX_CHARS", "bot_history_max_chars",
            parse_int(0, 10_000_000), 20000, "Characters of bot history kept per user."),
    Setting("WHATSEASE_BOT_HISTORY_MAX_AGE", "bot_history_max_age",
            parse_int(0, 3650 * 86400), 30 * 86400, "Seconds bot history is kept."),
    Setting("WHATSEASE_BOT_SEMANTIC", "bot_semantic", parse_auto_bool, None,
            "The bot's sentence reader: a second opinion on messages its words cannot "
            "place or place with little to spare. auto: on unless its encoder package "
            "(installed with WhatsEase) is missing; true: required, the server refuses to "
            "start without it; false: words only, about 140 MiB less memory (docs/bot.md)."),
    Setting("WHATSEASE_BOT_SEMANTIC_MODEL", "bot_semantic_model", parse_model_path, "",
            "Folder of a sentence-transformers model exported to ONNX (or one .onnx "
            "file in it) for the sentence reader instead of the built-in encoder; "
            "setting it turns the reader on (needs whatsease[semantic-onnx]; docs/bot.md)."),
    Setting("WHATSEASE_LLM_URL", "llm_url", parse_url, "",
            "OpenAI-compatible chat-completions URL for the bot's fallback. Empty: none."),
    Setting("WHATSEASE_LLM_TOKEN", "llm_token", parse_str, "",
            "Bearer token for the language-model endpoint."),
    Setting("WHATSEASE_LLM_MODEL", "llm_model", parse_str, "",
            "Model name sent to the language-model endpoint."),
    Setting("WHATSEASE_LLM_TIMEOUT", "llm_timeout", parse_float(0.1, 60), 4.0,
            "Seconds to wait for the language model before the fallback reply."),
    Setting("WHATSEASE_DB_JOURNAL", "db_journal", parse_bool, True,
            "The embedded database acknowledges a write only once it is in its journal on "
            "disk, so a crash of the database loses nothing acknowledged (a few ms per "
            "write). false: faster, but up to a second of acknowledged writes can be lost "
            "if it is killed. A MongoDB URI sets its own write concern."),
    Setting("WHATSEASE_PUBLIC_URL", "public_url", parse_url, "",
            "The address people reach this server at (https://chat.example.com), used in "
            "the links it sends (password resets) and the snippets the org command prints. "
            "Empty: the address it listens on."),
    Setting("WHATSEASE_DEMO_USERS", "demo_users", parse_bool, False,
            "Create two demo users on first start (scripts/run sets this)."),
    Setting("WHATSEASE_TRUSTED_PROXY", "trusted_proxy", parse_bool, False,
            "Behind a reverse proxy (Fly.io): take the client's address from the last "
            "X-Forwarded-For entry. Never set it when clients connect directly."),
    Setting("WHATSEASE_CLUSTER", "cluster", parse_cluster_mode, "off",
            "Scale-out membership: off (one instance), fly (members from Fly.io's private "
            "DNS, self is FLY_MACHINE_ID) or static (WHATSEASE_CLUSTER_MEMBERS). Needs "
            "WHATSEASE_CLUSTER_SECRET (docs/architecture.md, \"Cluster\")."),
    Setting("WHATSEASE_CLUSTER_MEMBERS", "cluster_members", parse_cluster_members, (),
            "static: comma-separated id=url pairs, every instance's id and internal URL."),
    Setting("WHATSEASE_CLUSTER_SELF", "cluster_self", parse_member_id, "",
            "static: this instance's id in WHATSEASE_CLUSTER_MEMBERS."),
    Setting("WHATSEASE_CLUSTER_PORT", "cluster_port", parse_int(0, 65535), 0,
            "The internal link's port, never the public one. static: each member's URL "
            "names it; fly: peers reach each other on it over the private network (0: 7946)."),
    Setting("WHATSEASE_CLUSTER_SECRET", "cluster_secret", parse_token, "",
            "The shared secret instances prove to each other (HMAC challenge) on the "
            "internal link; the same on every instance, at least 16 characters."),
    Setting("WHATSEASE_CLUSTER_MEMBERS_FILE", "cluster_members_file", parse_absolute_path, "",
            "static: a file of id=url lines (or commas) read at every poll instead of "
            "WHATSEASE_CLUSTER_MEMBERS, so members join and leave without a restart."),
    Setting("WHATSEASE_CLUSTER_POLL_INTERVAL", "cluster_poll_interval",
            parse_float(0.5, 300), 5.0, "fly: seconds between reads of the member list."),
    Setting("WHATSEASE_CLUSTER_HEARTBEAT_TIMEOUT", "cluster_heartbeat_timeout",
            parse_float(1, 600), 10.0,
            "Seconds without a heartbeat before a member is taken out of the ring."),
    Setting("WHATSEASE_METRICS_PORT", "metrics_port", parse_int(0, 65535), 0,
            "Serve /metrics on this port only (Fly.io's [metrics] section scrapes it) and "
            "answer 404 for it on the public port. 0: on the public port."),
    Setting("WHATSEASE_METRICS_TOKEN", "metrics_token", parse_token, "",
            "Bearer token /metrics asks for (Authorization: Bearer ...). Empty: none; set it "
            "whenever /metrics is reachable from the internet."),
    Setting("WHATSEASE_RESET_LINK_TTL", "reset_link_ttl", parse_int(300, 7 * 86400), 3600,
            "Seconds a password-reset link stays valid (it works once)."),
    Setting("WHATSEASE_SMTP_HOST", "smtp_host", parse_str, "",
            "SMTP server for password-reset mails. Empty: no mail; only an operator can "
            "issue reset links (python -m whatsease user reset-link EMAIL)."),
    Setting("WHATSEASE_SMTP_PORT", "smtp_port", parse_int(1, 65535), 587,
            "SMTP server port."),
    Setting("WHATSEASE_SMTP_SECURITY", "smtp_security", parse_smtp_security, "starttls",
            "starttls, tls (implicit TLS, usually port 465) or none (a local relay only)."),
    Setting("WHATSEASE_SMTP_USER", "smtp_user", parse_str, "",
            "SMTP user name. Empty: no login."),
    Setting("WHATSEASE_SMTP_PASSWORD", "smtp_password", parse_str, "",
            "SMTP password."),
    Setting("WHATSEASE_SMTP_FROM", "smtp_from", parse_str, "",
            "Sender address of the mails (required with WHATSEASE_SMTP_HOST)."),
    Setting("WHATSEASE_OUTBOUND_ALLOW_PRIVATE", "outbound_allow_private", parse_bool, False,
            "Let URLs that organisations set (external chatbots, webhooks) use http:// and "
            "loopback or private addresses. For development against local fakes only: "
            "in production it opens the server's network to its tenants (SSRF)."),
    Setting("WHATSEASE_WHATSAPP_APP_SECRET", "whatsapp_app_secret", parse_str, "",
            "The Meta app's secret: every WhatsApp webhook must be signed with it "
            "(X-Hub-Signature-256). The WhatsApp channel is on when this, the verify token, "
            "the token and the phone number id are set (docs/channels.md)."),
    Setting("WHATSEASE_WHATSAPP_VERIFY_TOKEN", "whatsapp_verify_token", parse_str, "",
            "A string of your choice that Meta sends back when it verifies the webhook URL."),
    Setting("WHATSEASE_WHATSAPP_TOKEN", "whatsapp_token", parse_str, "",
            "The Graph API access token (a system user's, with whatsapp_business_messaging)."),
    Setting("WHATSEASE_WHATSAPP_PHONE_NUMBER_ID", "whatsapp_phone_number_id", parse_digits, "",
            "The id Meta gives the business phone number (not the number itself)."),
    Setting("WHATSEASE_WHATSAPP_NUMBER", "whatsapp_number", parse_phone, "",
            "The business number in E.164, for wa.me links and their QR codes."),
    Setting("WHATSEASE_WHATSAPP_GRAPH_URL", "whatsapp_graph_url", parse_url,
            "https://graph.facebook.com/v23.0",
            "The versioned Graph API base URL replies are sent to."),
    Setting("WHATSEASE_WHATSAPP_BINDING", "whatsapp_binding", parse_binding, "bot:whatsease",
            "Who answers WhatsApp: bot:<name> (a bot) or org:<id> (that organisation's "
            "support routing: bot, agents, handoff)."),
    Setting("WHATSEASE_TELEGRAM_TOKEN", "telegram_token", parse_str, "",
            "The bot token from @BotFather. With the secret token, turns the Telegram "
            "channel on."),
    Setting("WHATSEASE_TELEGRAM_SECRET_TOKEN", "telegram_secret_token", parse_str, "",
            "The secret_token given to setWebhook (1-256 of A-Z a-z 0-9 _ -); Telegram sends "
            "it in X-Telegram-Bot-Api-Secret-Token."),
    Setting("WHATSEASE_TELEGRAM_API_URL", "telegram_api_url", parse_url,
            "https://api.telegram.org", "The Bot API base URL."),
    Setting("WHATSEASE_TELEGRAM_BINDING", "telegram_binding", parse_binding, "bot:whatsease",
            "Who answers Telegram: bot:<name> or org:<id>, as for WhatsApp."),
    Setting("WHATSEASE_LOOPBACK_PEER_URL", "loopback_peer_url", parse_url, "",
            "A local test peer's URL that gets the loopback channel's replies; with the "
            "loopback secret, turns that channel on (for trying channels out)."),
    Setting("WHATSEASE_LOOPBACK_SECRET", "loopback_secret", parse_str, "",
            "The HMAC key that signs the loopback channel both ways."),
    Setting("WHATSEASE_LOOPBACK_BINDING", "loopback_binding", parse_binding, "bot:whatsease",
            "Who answers the loopback channel: bot:<name> or org:<id>."),
    Setting("WHATSEASE_CHANNEL_MAX_PENDING", "channel_max_pending", parse_int(10, 1_000_000),
            10000, "Webhook events accepted but not yet processed, over all channels; beyond "
            "it a webhook is answered 503 so that the platform delivers it again later."),
    Setting("WHATSEASE_CHANNEL_MEDIA_MAX_BYTES", "channel_media_max_bytes",
            parse_int(64 * 1024, 15 * 1024 * 1024), 5 * 1024 * 1024,
            "The largest attachment (WhatsApp media, Telegram file) downloaded for the agent "
            "console, in bytes; a larger one shows as unavailable."),
)


@dataclass(frozen=True)
class Config:
    """Validated settings. Build with `Config.from_env`; never mutate."""

    host: str = "127.0.0.1"
    port: int = 8080
    mongodb_uri: str = ""
    db_name: str = "whatsease"
    db_timeout: float = 2.0
    db_restarts: int = 5
    db_journal: bool = True
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
    public_url: str = ""
    demo_users: bool = False
    trusted_proxy: bool = False
    cluster: str = "off"
    cluster_members: tuple[tuple[str, str], ...] = ()
    cluster_self: str = ""
    cluster_port: int = 0
    cluster_secret: str = field(default="", repr=False)
    cluster_members_file: str = ""
    cluster_poll_interval: float = 5.0
    cluster_heartbeat_timeout: float = 10.0
    metrics_port: int = 0
    metrics_token: str = ""
    reset_link_ttl: int = 3600
    smtp_host: str = ""
    smtp_port: int = 587
    smtp_security: str = "starttls"
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    outbound_allow_private: bool = False
    whatsapp_app_secret: str = ""
    whatsapp_verify_token: str = ""
    whatsapp_token: str = ""
    whatsapp_phone_number_id: str = ""
    whatsapp_number: str = ""
    whatsapp_graph_url: str = "https://graph.facebook.com/v23.0"
    whatsapp_binding: str = "bot:whatsease"
    telegram_token: str = ""
    telegram_secret_token: str = ""
    telegram_api_url: str = "https://api.telegram.org"
    telegram_binding: str = "bot:whatsease"
    loopback_peer_url: str = ""
    loopback_secret: str = ""
    loopback_binding: str = "bot:whatsease"
    channel_max_pending: int = 10000
    channel_media_max_bytes: int = 5 * 1024 * 1024

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
                raise ConfigError(f"{setting.env}={redact(raw)!r} is invalid: {exc}") from None
        config = cls(**values)
        if config.smtp_host and not config.smtp_from:
            raise ConfigError("WHATSEASE_SMTP_FROM is required when WHATSEASE_SMTP_HOST is set "
                              "(the sender address of password-reset mails).")
        if config.jwt_secret and len(config.jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise ConfigError(
                f"WHATSEASE_JWT_SECRET is too short: it needs at least "
                f"{MIN_JWT_SECRET_BYTES} bytes, got {len(config.jwt_secret.encode())}."
            )
        _check_cluster(config, env)
        return config

    def replace(self, **changes: Any) -> Config:
        return dataclasses.replace(self, **changes)

    @property
    def base_url(self) -> str:
        """Where people reach the server: ``WHATSEASE_PUBLIC_URL``, or the address it
        listens on (``http://localhost:8080`` for a loopback or wildcard host)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "localhost" if self.host in ("127.0.0.1", "0.0.0.0", "::") else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

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


def _check_cluster(config: Config, env: Mapping[str, str]) -> None:
    """Raise `ConfigError` when ``WHATSEASE_CLUSTER``'s mode lacks what it needs."""
    if config.cluster == "static":
        if not config.cluster_members:
            raise ConfigError(
                "WHATSEASE_CLUSTER=static needs WHATSEASE_CLUSTER_MEMBERS (id=url,...)"
            )
        ids = [member for member, _ in config.cluster_members]
        if config.cluster_self not in ids:
            raise ConfigError(
                f"WHATSEASE_CLUSTER_SELF={config.cluster_self!r} must be one of "
                f"WHATSEASE_CLUSTER_MEMBERS' ids: {', '.join(ids)}"
            )
    elif config.cluster == "fly":
        missing = [name for name in ("FLY_MACHINE_ID", "FLY_APP_NAME") if not env.get(name)]
        if missing:
            raise ConfigError(
                f"WHATSEASE_CLUSTER=fly needs {' and '.join(missing)}, "
                "which Fly.io sets on its machines"
            )
        if not MEMBER_ID.fullmatch(env["FLY_MACHINE_ID"]):
            raise ConfigError(f"FLY_MACHINE_ID={env['FLY_MACHINE_ID'][:80]!r} is not a plain id")


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
