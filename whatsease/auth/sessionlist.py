"""The session list people read: device, browser and approximate place, and "log out the others".

A session list of seven "Mozilla/5.0 (X11; Linux x86_64) ..." rows tells nobody
which one is their phone. These pure functions turn the stored user agent into
"Chrome 120" on "Linux computer", and read an approximate place from headers
that a trusted proxy (Cloudflare's visitor-location headers) adds. WhatsEase
ships no GeoIP database, so without such a proxy there is no place, and a
session's place is known only for the request at hand (this device).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from whatsease.auth.service import AuthService, Principal
from whatsease.storage.models import Session

# (marker in the user agent, browser name); the first match wins, so the
# browsers that also claim "Chrome" or "Safari" come before those two.
_BROWSERS: tuple[tuple[str, str], ...] = (
    ("Edg", "Edge"), ("EdgA", "Edge"), ("EdgiOS", "Edge"), ("OPR", "Opera"),
    ("SamsungBrowser", "Samsung Internet"), ("FxiOS", "Firefox"), ("Firefox", "Firefox"),
    ("CriOS", "Chrome"), ("HeadlessChrome", "Chrome (headless)"), ("Chromium", "Chromium"),
    ("Chrome", "Chrome"), ("Version", "Safari"), ("curl", "curl"),
    ("python-requests", "Python script"), ("Python-urllib", "Python script"),
)
# (pattern, device); the first match wins.
_DEVICES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"iPhone"), "iPhone"), (re.compile(r"iPad"), "iPad"),
    (re.compile(r"Android.*Mobile"), "Android phone"), (re.compile(r"Android"), "Android tablet"),
    (re.compile(r"CrOS"), "Chromebook"), (re.compile(r"Windows"), "Windows computer"),
    (re.compile(r"Macintosh|Mac OS X"), "Mac"), (re.compile(r"Linux|X11"), "Linux computer"),
)
# Cloudflare's codes for "unknown" and "Tor", which are no place.
_NO_COUNTRY = frozenset({"", "XX", "T1"})
MAX_PLACE_CHARS = 80


def browser_of(user_agent: str) -> str:
    """"Chrome 120", "Safari 17", "Firefox"...; "Unknown browser" if nothing matches."""
    for marker, name in _BROWSERS:
        found = re.search(rf"\b{re.escape(marker)}/(\d+)", user_agent, re.IGNORECASE)
        if found:
            if name in ("curl", "Python script"):
                return name
            return f"{name} {found.group(1)}"
    return "Unknown browser"


def device_of(user_agent: str) -> str:
    """"iPhone", "Android phone", "Mac", "Linux computer"...; "Unknown device" otherwise."""
    for pattern, name in _DEVICES:
        if pattern.search(user_agent):
            return name
    return "Unknown device"


def approximate_place(headers: Mapping[str, str], trusted_proxy: bool) -> str | None:
    """"Berlin, DE" or "DE" from a trusted proxy's location headers; None without one.

    The headers are only believed behind a trusted proxy: a client talking to
    us directly could send any place it likes.
    """
    if not trusted_proxy:
        return None
    country = headers.get("CF-IPCountry", "").strip().upper()
    if country in _NO_COUNTRY:
        return None
    city = headers.get("CF-IPCity", "").strip()
    place = f"{city}, {country}" if city else country
    return place[:MAX_PLACE_CHARS]


def describe_session(session: Session, current_sid: str | None,
                     place: str | None = None) -> dict[str, Any]:
    """A session as the list shows it: the stored fields plus device, browser,
    last active and, for this device, its approximate place."""
    body = session.to_json(current_sid)
    current = bool(body["current"])
    body.update({"device": device_of(session.user_agent),
                 "browser": browser_of(session.user_agent),
                 "last_active": body["last_used"],
                 "place": place if current else None})
    return body


async def revoke_other_sessions(auth: AuthService, principal: Principal) -> int:
    """Log out every session of the caller but the current one; returns how many ended.

    Each one's sockets close at once (as for a single revoke), and each is
    recorded in the activity log, which shows them as one line.
    """
    revoked = 0
    for session in await auth.list_sessions(principal):
        if session.session_id != principal.session_id and await auth.revoke_session(
                principal, session.session_id):
            revoked += 1
    return revoked
