"""Who may see which analytics scope, and how a scope's fallback replies are recognised."""

from __future__ import annotations

from dataclasses import dataclass

from whatsease.errors import Forbidden, NotFound
from whatsease.services import Services
from whatsease.storage.models import User
from whatsease.support.orgs import is_member, is_platform_admin

# The orgs whose fallback replies are recognised for the whole messenger.
MAX_ORGS = 500


@dataclass(frozen=True)
class Scope:
    """An organisation's figures, or (``org`` None) the whole messenger's."""

    org: str | None


def scope_for(user: User, org: str | None) -> Scope:
    """What ``user`` may see for the ``org`` asked (None: their own, or everything).

    Platform admins see any org or the whole messenger; an org's agents and
    admins see their org only (another org is `NotFound`, as elsewhere);
    everyone else is `Forbidden`.
    """
    if is_platform_admin(user):
        return Scope(org)
    if user.role not in ("agent", "admin") or not user.org:
        raise Forbidden("Only operators and organisations' agents and admins see analytics.")
    if org is not None and not is_member(user, org):
        raise NotFound("No such organisation.")
    return Scope(user.org)


async def fallback_replies(services: Services, scope: Scope) -> list[str]:
    """The fallback replies of the support bots in scope (how a fallback is recognised)."""
    support = services.support
    if support is None:
        return []
    chatbot = support.chatbot
    texts = set(chatbot.default_catalogue.bot.fallback)
    if scope.org is not None:
        one = await support.store.orgs.get(scope.org)
        if one is None:
            raise NotFound("No such organisation.")
        orgs = [one]
    else:
        orgs = await support.store.orgs.find(limit=MAX_ORGS)
    for org in orgs:
        if org.settings.chatbot.kind == "builtin":
            texts.update(chatbot.engine_for(org).catalogue.bot.fallback)
    return sorted(texts)
