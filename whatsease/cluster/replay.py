"""Fly.io's ``fly-replay`` header: parsing what an instance asks, and ``fly-replay-src``.

Used by the front (``whatsease/cluster/front.py``), the development stand-in
for Fly's proxy. Pure: no I/O, no Tornado.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s)")


class ReplayError(ValueError):
    """A ``fly-replay`` header the front cannot follow."""


@dataclass(frozen=True)
class Replay:
    """One ``fly-replay`` response header, parsed."""

    instance: str = ""
    prefer_instance: str = ""
    region: str = ""
    app: str = ""
    state: str = ""
    elsewhere: bool = False
    timeout: float | None = None
    fallback: str = ""


def parse_replay(value: str) -> Replay:
    """Parse ``fly-replay: instance=abc;state=x;timeout=2s``; raises `ReplayError` if bad.

    Fields are ``name=value`` pairs separated by ``;``; a value may be quoted.
    """
    fields: dict[str, str] = {}
    for part in value.split(";"):
        part = part.strip()
        if not part:
            continue
        name, sep, raw = part.partition("=")
        if not sep:
            raise ReplayError(f"fly-replay field without a value: {part!r}")
        raw = raw.strip()
        if len(raw) >= 2 and raw[0] == raw[-1] == '"':
            raw = raw[1:-1]
        fields[name.strip().lower()] = raw
    timeout = None
    if "timeout" in fields:
        match = _DURATION.fullmatch(fields["timeout"])
        if not match:
            raise ReplayError(f"fly-replay timeout is not a duration: {fields['timeout']!r}")
        timeout = float(match.group(1)) / (1000 if match.group(2) == "ms" else 1)
    fallback = fields.get("fallback", "")
    if fallback not in ("", "force_self", "prefer_self"):
        raise ReplayError(f"fly-replay fallback must be force_self or prefer_self: {fallback!r}")
    return Replay(instance=fields.get("instance", ""),
                  prefer_instance=fields.get("prefer_instance", ""),
                  region=fields.get("region", ""), app=fields.get("app", ""),
                  state=fields.get("state", ""),
                  elsewhere=fields.get("elsewhere", "").lower() == "true",
                  timeout=timeout, fallback=fallback)


def replay_source(instance: str, region: str, state: str, now: float | None = None) -> str:
    """The ``fly-replay-src`` value for a request replayed at the request of ``instance``."""
    micros = int((time.time() if now is None else now) * 1_000_000)
    value = f"instance={instance};region={region};t={micros}"
    return f"{value};state={state}" if state else value
