"""Parsers for ``WHATSEASE_*`` values: each takes the raw string and returns the typed value.

Every parser raises `ValueError` with a message a person can act on; `whatsease.config` names the
variable that was wrong.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


def parse_int(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        value = int(raw)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def parse_float(low: float, high: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        value = float(raw)
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}")
        return value

    return parse


def parse_str(raw: str) -> str:
    return raw.strip()


def parse_host(raw: str) -> str:
    host = raw.strip()
    # A name or an IPv4/IPv6 address; an empty host would silently bind every interface.
    if not re.fullmatch(r"[A-Za-z0-9._:-]+", host):
        raise ValueError("must be a host name or an IP address such as 127.0.0.1 or 0.0.0.0")
    return host


def parse_mongodb_uri(raw: str) -> str:
    uri = raw.strip()
    if uri and not re.match(r"mongodb(\+srv)?://[^/\s]", uri):
        raise ValueError("must start with mongodb:// or mongodb+srv://")
    return uri


def parse_db_name(raw: str) -> str:
    name = raw.strip()
    # MongoDB refuses / \ . " $ and spaces in database names, and long ones.
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,63}", name):
        raise ValueError("must be 1-63 letters, digits, _ or -")
    return name


def parse_dir(raw: str) -> str:
    path = raw.strip()
    if not path:
        raise ValueError("must name a directory")
    return path


def parse_model_path(raw: str) -> str:
    """A model folder, or one .onnx file of it (a quantized variant, say)."""
    path = raw.strip()
    if path:
        found = Path(path).expanduser()
        if not (found.is_dir() or (found.is_file() and found.suffix == ".onnx")):
            raise ValueError("no such directory or .onnx file")
    return path


def parse_url(raw: str) -> str:
    url = raw.strip()
    if url and not re.match(r"https?://[^/\s]", url):
        raise ValueError("must start with http:// or https://")
    return url


# A bearer token shorter than this can be guessed over the network.
MIN_TOKEN_CHARS = 16


def parse_token(raw: str) -> str:
    token = raw.strip()
    if token and (len(token) < MIN_TOKEN_CHARS or not re.fullmatch(r"[\x21-\x7e]+", token)):
        raise ValueError(f"must be at least {MIN_TOKEN_CHARS} visible ASCII characters "
                         "without spaces")
    return token


SMTP_SECURITY = ("starttls", "tls", "none")


def parse_smtp_security(raw: str) -> str:
    value = raw.strip().lower()
    if value not in SMTP_SECURITY:
        raise ValueError(f"must be one of {', '.join(SMTP_SECURITY)}")
    return value


def parse_file(raw: str) -> str:
    path = raw.strip()
    if path and not Path(path).expanduser().is_file():
        raise ValueError("no such file")
    return path


def parse_binding(raw: str) -> str:
    binding = raw.strip()
    if not re.fullmatch(r"(bot|org):[A-Za-z0-9._-]{1,64}", binding):
        raise ValueError("must be bot:<name> (a bot answers) or org:<id> (an organisation's "
                         "support routing answers)")
    return binding


def parse_phone(raw: str) -> str:
    number = raw.strip().replace(" ", "")
    if number and not re.fullmatch(r"\+?[1-9][0-9]{5,14}", number):
        raise ValueError("must be a phone number in E.164, such as +4915112345678")
    return number


def parse_digits(raw: str) -> str:
    value = raw.strip()
    if value and not re.fullmatch(r"[0-9]{1,32}", value):
        raise ValueError("must be digits only (the id Meta shows, not the phone number)")
    return value


def redact(raw: str) -> str:
    # A connection string may carry a password: never echo user:password@.
    return re.sub(r"//[^/@\s]*@", "//***@", raw)


def parse_origins(raw: str) -> tuple[str, ...]:
    origins = tuple(o.strip().rstrip("/") for o in raw.split(",") if o.strip())
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise ValueError(f"origin {origin!r} must start with http:// or https://")
    return origins


def parse_log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return level


def parse_bool(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false")


def parse_auto_bool(raw: str) -> bool | None:
    # None: decide at start (on when the optional part is installed).
    if raw.strip().lower() in ("auto", ""):
        return None
    try:
        return parse_bool(raw)
    except ValueError:
        raise ValueError("must be auto, true or false") from None


CLUSTER_MODES = ("off", "fly", "static")
# Cluster member ids go into URLs and fly-replay headers (whatsease/cluster/ring.py).
MEMBER_ID = re.compile(r"[A-Za-z0-9_.-]{1,64}")


def parse_cluster_mode(raw: str) -> str:
    mode = raw.strip().lower() or "off"
    if mode not in CLUSTER_MODES:
        raise ValueError(f"must be one of {', '.join(CLUSTER_MODES)}")
    return mode


def parse_absolute_path(raw: str) -> str:
    path = raw.strip()
    if path and not path.startswith("/"):
        raise ValueError("must be an absolute path")
    return path


def parse_member_id(raw: str) -> str:
    member = raw.strip()
    if member and not MEMBER_ID.fullmatch(member):
        raise ValueError("must be 1-64 letters, digits, _, - or .")
    return member


def parse_cluster_members(raw: str) -> tuple[tuple[str, str], ...]:
    # "a=http://10.0.0.1:8080,b=http://10.0.0.2:8080": each instance's id and internal URL.
    members: dict[str, str] = {}
    for entry in (e.strip() for e in raw.split(",")):
        if not entry:
            continue
        member, sep, url = (part.strip() for part in entry.partition("="))
        if not sep or not MEMBER_ID.fullmatch(member):
            raise ValueError(f"entry {entry!r} must be id=url, the id plain (letters, digits, _-.)")
        if not re.fullmatch(r"https?://[^/\s]+/?", url):
            raise ValueError(f"entry {entry!r}: the url must be http(s)://host:port")
        if member in members:
            raise ValueError(f"member {member!r} is listed twice")
        members[member] = url.rstrip("/")
    if len(members) > 256:
        raise ValueError("lists more than 256 members")
    return tuple(members.items())
