"""Organisations: creation, settings and their validation, widget keys, and agents.

Who may do what: a platform admin (role ``admin`` with no org) creates and
deletes orgs and manages any of them; an org admin (role ``admin`` in the org)
manages its settings and agents; an agent (role ``agent`` in the org) may read
the org's name and agents. Everyone else is told the org does not exist.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from whatsease import validation
from whatsease.bot.catalogue import CatalogueError, loads_catalogue
from whatsease.errors import Conflict, Forbidden, NotFound, invalid
from whatsease.net import outbound
from whatsease.storage.errors import Duplicate
from whatsease.storage.models import User
from whatsease.storage.store import Store
from whatsease.storage.support import SupportStore
from whatsease.storage.support_models import (
    AGENT_ROLES,
    CHATBOT_KINDS,
    ROUTINGS,
    ChatbotSettings,
    Org,
    OrgSettings,
)
from whatsease.support import assignment
from whatsease.timeutil import utcnow

MAX_ORG_NAME_CHARS = 80
MAX_ORG_ID_CHARS = 40
MAX_ORGS_LISTED = 500
# How long a message path may reuse an organisation it read (`OrgService.current`).
ORG_CACHE_SECS = 5.0
MAX_ORGS_CACHED = 1000
MAX_AGENTS_LISTED = 500
MAX_ORIGINS = 20
MAX_ORIGIN_CHARS = 200
MAX_GREETING_CHARS = 500
# A catalogue must fit in one request body (64 KiB) with room for the JSON around it.
MAX_CATALOGUE_CHARS = 60_000
MAX_URL_CHARS = 2048
MAX_TOKEN_CHARS = 4096
MAX_MODEL_CHARS = 100
MIN_SESSION_TIMEOUT_SECS = 30
MAX_SESSION_TIMEOUT_SECS = 24 * 3600

_ORG_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
_COLOR = re.compile(r"^#[0-9a-fA-F]{6}$")
# Matched with fullmatch (Python's $ also matches before a final newline), and
# ASCII digits only, as the OpenAPI document's patterns say.
_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?$")
SETTINGS_FIELDS = ("routing", "assignment", "chatbot", "session_timeout", "greeting",
                   "brand_color", "allowed_origins")
CHATBOT_FIELDS = ("kind", "catalogue", "url", "token", "model")


def is_platform_admin(user: User) -> bool:
    return user.role == "admin" and user.org is None


def is_org_admin(user: User, org_id: str) -> bool:
    return is_platform_admin(user) or (user.role == "admin" and user.org == org_id)


def is_member(user: User, org_id: str) -> bool:
    """An agent or admin of this org (who may use its console)."""
    return user.role in AGENT_ROLES and user.org == org_id


def new_widget_key() -> str:
    """A public, unguessable key naming the org in the embed snippet."""
    return "wk_" + secrets.token_urlsafe(18)


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:MAX_ORG_ID_CHARS].strip("-")
    return slug or "org"


def normalise_origin(value: object, field: str = "allowed_origins") -> str:
    if not isinstance(value, str):
        raise invalid(field, "must hold strings such as https://shop.example")
    origin = value.strip().rstrip("/").lower()
    if origin == "*":
        return origin
    if len(origin) > MAX_ORIGIN_CHARS or not _ORIGIN.fullmatch(origin):
        raise invalid(field, f"{value!r} is not an origin: write scheme://host[:port] with "
                             "no path, such as https://shop.example")
    return origin


async def check_tenant_url(url: str, field: str, policy: outbound.OutboundPolicy) -> None:
    """Refuse (422 naming ``field``) a URL the outbound guard would not call.

    A name that does not resolve now is accepted: the guard checks again on
    every call, and that check is the one that counts.
    """
    try:
        await outbound.check_url_resolved(url, policy)
    except outbound.OutboundRefused as exc:
        raise invalid(field, str(exc)) from None
    except outbound.OutboundError:
        pass


def parse_settings(body: Mapping[str, object], current: OrgSettings) -> OrgSettings:
    """Apply a settings patch to ``current``; raise a 422 naming the first bad field.

    ``chatbot.token`` keeps its value unless given: a string replaces it, and
    null or "" clears it (the API never shows the token, so clients cannot echo it).
    """
    validation.check_fields(body, optional=SETTINGS_FIELDS)
    chatbot = ChatbotSettings(**current.chatbot.to_doc())
    new = OrgSettings(routing=current.routing, assignment=current.assignment, chatbot=chatbot,
                      session_timeout=current.session_timeout, greeting=current.greeting,
                      brand_color=current.brand_color,
                      allowed_origins=list(current.allowed_origins))
    if "routing" in body:
        new.routing = _choice(body["routing"], "routing", ROUTINGS)
    if "assignment" in body:
        new.assignment = _choice(body["assignment"], "assignment", assignment.STRATEGIES)
    if "session_timeout" in body:
        value = body["session_timeout"]
        if isinstance(value, float) and value.is_integer():
            value = int(value)  # JSON does not tell 60 from 60.0
        if (not isinstance(value, int) or isinstance(value, bool)
                or not MIN_SESSION_TIMEOUT_SECS <= value <= MAX_SESSION_TIMEOUT_SECS):
            raise invalid("session_timeout", f"must be a whole number of seconds between "
                                             f"{MIN_SESSION_TIMEOUT_SECS} and "
                                             f"{MAX_SESSION_TIMEOUT_SECS}")
        new.session_timeout = value
    if "greeting" in body:
        greeting = body["greeting"]
        if not isinstance(greeting, str) or len(greeting.strip()) > MAX_GREETING_CHARS:
            raise invalid("greeting", f"must be a string of at most {MAX_GREETING_CHARS} "
                                      "characters")
        new.greeting = greeting.strip()
    if "brand_color" in body:
        color = body["brand_color"]
        if not isinstance(color, str) or not _COLOR.fullmatch(color):
            raise invalid("brand_color", "must be a colour such as #0b6e4f")
        new.brand_color = color.lower()
    if "allowed_origins" in body:
        origins = body["allowed_origins"]
        if not isinstance(origins, list) or len(origins) > MAX_ORIGINS:
            raise invalid("allowed_origins", f"must be a list of at most {MAX_ORIGINS} origins")
        new.allowed_origins = sorted({normalise_origin(o) for o in origins})
    if "chatbot" in body:
        _apply_chatbot(body["chatbot"], chatbot)
    if chatbot.kind == "external" and not chatbot.url:
        raise invalid("chatbot.url", "is required when chatbot.kind is external")
    return new


def _apply_chatbot(raw: object, chatbot: ChatbotSettings) -> None:
    if not isinstance(raw, Mapping):
        raise invalid("chatbot", "must be an object")
    unknown = [k for k in raw if k not in CHATBOT_FIELDS]
    if unknown:
        raise invalid(f"chatbot.{unknown[0]}", "unknown field")
    if "kind" in raw:
        chatbot.kind = _choice(raw["kind"], "chatbot.kind", CHATBOT_KINDS)
    if "catalogue" in raw:
        text = raw["catalogue"] if raw["catalogue"] is not None else ""
        if not isinstance(text, str) or len(text) > MAX_CATALOGUE_CHARS:
            raise invalid("chatbot.catalogue", f"must be TOML text of at most "
                                               f"{MAX_CATALOGUE_CHARS} characters")
        if text.strip():
            try:
                loads_catalogue(text, source="catalogue")
            except CatalogueError as exc:
                raise invalid("chatbot.catalogue", str(exc)) from None
        chatbot.catalogue = text
    if "url" in raw:
        url = raw["url"] if raw["url"] is not None else ""
        if not isinstance(url, str) or len(url) > MAX_URL_CHARS or (
                url and not re.fullmatch(r"https?://\S+", url)):
            raise invalid("chatbot.url", "must be an http:// or https:// URL of the "
                                         "chat-completions endpoint")
        chatbot.url = url.strip()
    if "token" in raw:
        token = raw["token"]
        if token is None:
            token = ""
        if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or any(
                c in token for c in "\r\n"):
            raise invalid("chatbot.token", f"must be a string of at most {MAX_TOKEN_CHARS} "
                                           "characters on one line")
        chatbot.token = token.strip()
    if "model" in raw:
        model = raw["model"] if raw["model"] is not None else ""
        if not isinstance(model, str) or len(model) > MAX_MODEL_CHARS:
            raise invalid("chatbot.model", f"must be at most {MAX_MODEL_CHARS} characters")
        chatbot.model = model.strip()


def _choice(value: object, field: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise invalid(field, f"must be one of {', '.join(allowed)}")
    return str(value)


def parse_org_id(value: object, field: str = "id") -> str:
    if not isinstance(value, str) or not _ORG_ID.fullmatch(value):
        raise invalid(field, f"must be 1-{MAX_ORG_ID_CHARS} lower-case letters, digits or "
                             "hyphens")
    return value


class OrgService:
    """Organisations and their members, over the support and user collections."""

    def __init__(self, store: Store, support: SupportStore,
                 clock: Callable[[], datetime] = utcnow,
                 outbound_policy: outbound.OutboundPolicy | None = None) -> None:
        self.store = store
        self.support = support
        self.clock = clock
        self.outbound_policy = outbound_policy or outbound.OutboundPolicy()
        self._cached: dict[str, tuple[float, Org]] = {}

    async def get(self, org_id: str) -> Org:
        org = await self.support.orgs.get(org_id)
        if org is None:
            raise NotFound("No such organisation.")
        self._remember(org)
        return org

    async def current(self, org_id: str) -> Org:
        """`get`, answered from a read at most `ORG_CACHE_SECS` old: for the message paths.

        A widget message needs its organisation's settings (timeout, routing);
        reading them once per message was a database round trip each. Changes
        made through this service show at once here; made on another instance
        of a cluster, within `ORG_CACHE_SECS`. Writes read with `get`.
        """
        kept = self._cached.get(org_id)
        if kept is not None and time.monotonic() - kept[0] < ORG_CACHE_SECS:
            return kept[1]
        return await self.get(org_id)

    def _remember(self, org: Org) -> None:
        self._cached.pop(org.org_id, None)
        self._cached[org.org_id] = (time.monotonic(), org)
        while len(self._cached) > MAX_ORGS_CACHED:
            del self._cached[next(iter(self._cached))]

    def _forget(self, org_id: str) -> None:
        self._cached.pop(org_id, None)

    async def by_key(self, key: str) -> Org:
        org = await self.support.orgs.by_widget_key(key) if len(key) <= 100 else None
        if org is None:
            raise NotFound("No organisation has this widget key.")
        return org

    async def visible(self, user: User, org_id: str) -> Org:
        """The org if ``user`` may see it; `NotFound` otherwise (existence is not leaked)."""
        if not (is_platform_admin(user) or is_member(user, org_id)):
            raise NotFound("No such organisation.")
        return await self.get(org_id)

    async def administered(self, user: User, org_id: str) -> Org:
        """The org if ``user`` administers it; agents get 403, others 404."""
        org = await self.visible(user, org_id)
        if not is_org_admin(user, org_id):
            raise Forbidden("Only the organisation's admins may change it.")
        return org

    async def list_for(self, user: User) -> list[Org]:
        if is_platform_admin(user):
            return await self.support.orgs.find(limit=MAX_ORGS_LISTED)
        if user.role in AGENT_ROLES and user.org:
            org = await self.support.orgs.get(user.org)
            return [org] if org else []
        return []

    async def create(self, name: Any, *, org_id: Any = None,
                     settings: Mapping[str, object] | None = None) -> Org:
        """Create an org; its id is derived from the name unless given. 409 if the id is taken."""
        clean = validation.name(name, "name") if isinstance(name, str) else None
        if clean is None or len(clean) > MAX_ORG_NAME_CHARS:
            raise invalid("name", f"must be 1-{MAX_ORG_NAME_CHARS} characters")
        explicit = org_id is not None
        wanted = parse_org_id(org_id) if explicit else slugify(clean)
        parsed = parse_settings(settings or {}, OrgSettings())
        if parsed.chatbot.url:
            await check_tenant_url(parsed.chatbot.url, "chatbot.url", self.outbound_policy)
        for attempt in range(1, 21):
            candidate = wanted if attempt == 1 else f"{wanted[:MAX_ORG_ID_CHARS - 4]}-{attempt}"
            org = Org(org_id=candidate, name=clean, widget_key=new_widget_key(),
                      settings=parsed, created_at=self.clock())
            try:
                await self.support.orgs.insert(org)
            except Duplicate:
                if explicit:
                    raise Conflict(f"An organisation with id {wanted!r} already exists.",
                                   errors=[{"field": "id", "message": "is taken"}],
                                   code="org_exists") from None
                continue
            return org
        raise Conflict("Could not find a free id for this organisation; give one.",
                       errors=[{"field": "id", "message": "is taken"}], code="org_exists")

    async def update_settings(self, org_id: str, patch: Mapping[str, object]) -> Org:
        org = await self.get(org_id)
        settings = parse_settings(patch, org.settings)
        if settings.chatbot.url and settings.chatbot.url != org.settings.chatbot.url:
            await check_tenant_url(settings.chatbot.url, "chatbot.url", self.outbound_policy)
        updated = await self.support.orgs.update(org_id, {"settings": settings.to_doc()})
        if updated is None:
            self._forget(org_id)
            raise NotFound("No such organisation.")
        self._remember(updated)
        return updated

    async def create_with_admin(self, name: Any, *, org_id: Any = None,
                                settings: Mapping[str, object] | None = None,
                                admin: Any = None) -> tuple[Org, User | None]:
        """`create`, and make ``admin`` its admin; nothing is left behind when either fails."""
        if admin is not None:
            await self.joinable(admin, None, "admin")  # refuse before anything is written
        org = await self.create(name, org_id=org_id, settings=settings)
        if admin is None:
            return org, None
        try:
            return org, await self.add_member(org.org_id, admin, "admin")
        except BaseException:
            # The account changed between the check and now: undo the org.
            await self.support.orgs.delete(org.org_id)
            raise

    async def rename(self, org_id: str, name: Any) -> Org:
        clean = validation.name(name, "name")
        updated = await self.support.orgs.update(org_id, {"name": clean})
        if updated is None:
            self._forget(org_id)
            raise NotFound("No such organisation.")
        self._remember(updated)
        return updated

    async def rotate_key(self, org_id: str) -> Org:
        updated = await self.support.orgs.update(org_id, {"widget_key": new_widget_key()})
        if updated is None:
            self._forget(org_id)
            raise NotFound("No such organisation.")
        self._remember(updated)
        return updated

    async def set_last_assigned(self, org_id: str, agent: str) -> None:
        updated = await self.support.orgs.update(org_id, {"last_assigned": agent})
        if updated is None:
            self._forget(org_id)
        else:
            self._remember(updated)

    async def delete(self, org_id: str) -> list[str]:
        """Delete the org, its conversations and messages; its members become plain users.

        Returns the emails of the former members.
        """
        await self.get(org_id)
        members = [u.email for u in await self.members(org_id)]
        for email in members:
            await self.store.users.update(email, {"role": "user", "org": None})
        await self.support.messages.delete_for_org(org_id)
        await self.support.conversations.delete_for_org(org_id)
        await self.support.orgs.delete(org_id)
        self._forget(org_id)
        return members

    async def members(self, org_id: str) -> list[User]:
        """The org's agents and admins, by name."""
        users = await self.store.users.in_org(org_id, AGENT_ROLES, limit=MAX_AGENTS_LISTED)
        return sorted(users, key=lambda u: (u.name.lower(), u.email))

    async def joinable(self, email: Any, org_id: str | None, field: str = "email") -> User:
        """The account ``email`` names, if it may join ``org_id`` (None: an org not made yet).

        Errors name ``field``, so that a new org's ``admin`` is reported as such.
        """
        address = validation.email(email, field)
        user = await self.store.users.get(address)
        # The detail names the field when it is not plainly "email".
        prefix = "" if field == "email" else f"{field}: "
        if user is None:
            raise NotFound(f"{prefix}No account with this email; the person must register first.",
                           errors=[{"field": field, "message": "is not registered"}])
        if is_platform_admin(user):
            raise Conflict(f"{prefix}This account is a platform admin and cannot join an "
                           "organisation.",
                           errors=[{"field": field, "message": "is a platform admin"}],
                           code="platform_admin")
        if user.org not in (None, org_id) and user.role in AGENT_ROLES:
            raise Conflict(f"{field}: this account already belongs to another organisation.",
                           errors=[{"field": field, "message": "belongs to another org"}],
                           code="other_org")
        return user

    async def add_member(self, org_id: str, email: Any, role: Any = "agent") -> User:
        """Make an existing account an agent (or admin) of the org."""
        if role not in AGENT_ROLES:
            raise invalid("role", f"must be one of {', '.join(AGENT_ROLES)}")
        await self.get(org_id)
        address = (await self.joinable(email, org_id)).email
        updated = await self.store.users.update(address, {"role": role, "org": org_id})
        if updated is None:
            raise NotFound("No such user.")
        return updated

    async def remove_member(self, org_id: str, email: str) -> User:
        user = await self.store.users.get(email)
        if user is None or not is_member(user, org_id):
            raise NotFound("No such agent in this organisation.")
        updated = await self.store.users.update(email, {"role": "user", "org": None})
        if updated is None:
            raise NotFound("No such agent in this organisation.")
        return updated

