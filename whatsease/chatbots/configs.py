"""Reading ``PUT /api/v1/chatbots``: every entry validated before anything is created.

A problem is a 422 whose field names the entry's index and the key inside it
(``[2].llm_provider_config.provider_config.url``), so an operator sending fifty
configs finds the one that is wrong.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from whatsease.chatbots.chat import (
    chat_provider_class,
    chat_provider_names,
    validate_chat_config,
)
from whatsease.chatbots.llm import ConfigInvalid, ProviderContext, llm_providers
from whatsease.chatbots.queues import MAX_CHARACTERS, MAX_DAYS, MAX_MESSAGES, QueueLimits
from whatsease.errors import Unprocessable

MAX_INSTANCES_PER_REQUEST = 50
MAX_WHITELIST_ENTRIES = 1000
MAX_WHITELIST_ENTRY_CHARS = 64
USER_ID = re.compile(r"^[A-Za-z0-9_.:@+-]{1,128}$")
ENTRY_KEYS = ("user_id", "respond_to_whitelist", "chat_provider_config", "queue_config",
              "llm_provider_config", "handoff_config", "keep_secrets")
HANDOFF_KEYS = ("org_id", "auto_handoff_threshold", "low_confidence_turns")
MAX_LOW_CONFIDENCE_TURNS = 20
PROVIDER_KEYS = ("provider_name", "provider_config")
QUEUE_KEYS = ("max_messages", "max_characters", "max_days")
# A sender id in a whitelist: a phone number, a platform id or a contact such as wa:+49….
_SENDER = re.compile(r"^[A-Za-z0-9_.:@+-]+$")


@dataclass
class InstanceSpec:
    """One validated entry: public config and secrets apart, per provider."""

    index: int
    user_id: str
    whitelist: list[str]
    chat_provider: str
    chat_config: dict[str, Any]
    chat_secrets: dict[str, Any]
    allow_groups: bool
    queue: QueueLimits
    llm_provider: str
    llm_config: dict[str, Any]
    llm_secrets: dict[str, Any]
    keep_secrets: bool = False
    handoff: HandoffConfig | None = None


class _Bad(Exception):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(name, "must be an object")
    return value


def _known(value: Mapping[str, Any], keys: tuple[str, ...], prefix: str) -> None:
    for key in value:
        if key not in keys:
            raise _Bad(f"{prefix}{str(key)[:64]}",
                       f"is not a known field; known: {', '.join(keys)}")


def _provider(value: Any, name: str, known: Collection[str]) -> tuple[str, dict[str, Any]]:
    block = _object(value, name)
    _known(block, PROVIDER_KEYS, f"{name}.")
    provider = block.get("provider_name")
    if not isinstance(provider, str) or not provider:
        raise _Bad(f"{name}.provider_name", "is required (a string)")
    if provider not in known:
        raise _Bad(f"{name}.provider_name",
                   f"is not an installed provider; installed: {', '.join(sorted(known)) or 'none'}")
    config = _object(block.get("provider_config", {}), f"{name}.provider_config")
    return provider, config


def _integer(value: Any, name: str, minimum: int, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(name, "must be an integer")
    if not minimum <= value <= maximum:
        raise _Bad(name, f"must be between {minimum} and {maximum}")
    return value


def _queue(value: Any) -> QueueLimits:
    block = _object(value, "queue_config")
    _known(block, QUEUE_KEYS, "queue_config.")
    for key in QUEUE_KEYS:
        if key not in block:
            raise _Bad(f"queue_config.{key}", "is required")
    days = block["max_days"]
    if isinstance(days, bool) or not isinstance(days, int | float):
        raise _Bad("queue_config.max_days", "must be a number")
    if not 0 < days <= MAX_DAYS:
        raise _Bad("queue_config.max_days", f"must be more than 0 and at most {MAX_DAYS}")
    return QueueLimits(
        _integer(block["max_messages"], "queue_config.max_messages", 1, MAX_MESSAGES),
        _integer(block["max_characters"], "queue_config.max_characters", 1, MAX_CHARACTERS),
        float(days))


@dataclass(frozen=True)
class HandoffConfig:
    """Hand a sender to ``org_id``'s agents once ``turns`` answers in a row scored below
    ``threshold`` (the org's ``auto_handoff_threshold``)."""

    org_id: str
    threshold: float
    turns: int

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> HandoffConfig:
        return cls(str(doc["org_id"]), float(doc["auto_handoff_threshold"]),
                   int(doc["low_confidence_turns"]))

    def to_dict(self) -> dict[str, Any]:
        return {"org_id": self.org_id, "auto_handoff_threshold": self.threshold,
                "low_confidence_turns": self.turns}


def _handoff(value: Any) -> HandoffConfig | None:
    if value is None:
        return None
    block = _object(value, "handoff_config")
    _known(block, HANDOFF_KEYS, "handoff_config.")
    org_id = block.get("org_id")
    if not isinstance(org_id, str) or not 0 < len(org_id) <= 64:
        raise _Bad("handoff_config.org_id", "is required (an organisation id)")
    threshold = block.get("auto_handoff_threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise _Bad("handoff_config.auto_handoff_threshold", "must be a number")
    if not 0 < threshold <= 1:
        raise _Bad("handoff_config.auto_handoff_threshold",
                   "must be more than 0 and at most 1")
    turns = _integer(block.get("low_confidence_turns", 2), "handoff_config.low_confidence_turns",
                     1, MAX_LOW_CONFIDENCE_TURNS)
    return HandoffConfig(org_id, float(threshold), turns)


def _whitelist(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad("respond_to_whitelist", "must be an array of sender ids")
    if len(value) > MAX_WHITELIST_ENTRIES:
        raise _Bad("respond_to_whitelist", f"must have at most {MAX_WHITELIST_ENTRIES} entries")
    out: list[str] = []
    for n, item in enumerate(value):
        if (not isinstance(item, str) or not 0 < len(item) <= MAX_WHITELIST_ENTRY_CHARS
                or not _SENDER.match(item)):
            raise _Bad(f"respond_to_whitelist[{n}]",
                       f"must be a sender id of 1-{MAX_WHITELIST_ENTRY_CHARS} letters, digits "
                       "or _.:@+-")
        out.append(item)
    return out


def _split(config: dict[str, Any], secret_keys: tuple[str, ...]) -> tuple[dict[str, Any],
                                                                          dict[str, Any]]:
    public = {k: v for k, v in config.items() if k not in secret_keys}
    secret = {k: v for k, v in config.items() if k in secret_keys}
    return public, secret


def _entry(index: int, raw: Any, context: ProviderContext) -> InstanceSpec:
    body = _object(raw, "")
    _known(body, ENTRY_KEYS, "")
    user_id = body.get("user_id")
    if not isinstance(user_id, str) or not USER_ID.match(user_id):
        raise _Bad("user_id", "must be 1-128 letters, digits or _.:@+-")
    keep = body.get("keep_secrets", False)
    if not isinstance(keep, bool):
        raise _Bad("keep_secrets", "must be true or false")
    whitelist = _whitelist(body.get("respond_to_whitelist"))
    for name in ("chat_provider_config", "queue_config", "llm_provider_config"):
        if name not in body:
            raise _Bad(name, "is required")
    chat_name, chat_raw = _provider(body["chat_provider_config"], "chat_provider_config",
                                    chat_provider_names())
    chat_class = chat_provider_class(chat_name)
    try:
        chat_config, allow_groups = validate_chat_config(chat_class, chat_raw)
    except ConfigInvalid as exc:
        raise _Bad(f"chat_provider_config.provider_config.{exc.field}", exc.message) from None
    queue = _queue(body["queue_config"])
    llm_known = llm_providers()
    llm_name, llm_raw = _provider(body["llm_provider_config"], "llm_provider_config", llm_known)
    llm_class = llm_known[llm_name]
    try:
        llm_config = llm_class.validate(llm_raw, context)
    except ConfigInvalid as exc:
        raise _Bad(f"llm_provider_config.provider_config.{exc.field}", exc.message) from None
    chat_public, chat_secrets = _split(chat_config, tuple(chat_class.secret_fields()))
    llm_public, llm_secrets = _split(llm_config, tuple(llm_class.SECRET_FIELDS))
    handoff = _handoff(body.get("handoff_config"))
    return InstanceSpec(index, user_id, whitelist, chat_name, chat_public, chat_secrets,
                        allow_groups, queue, llm_name, llm_public, llm_secrets, keep, handoff)


def parse_instances(body: Any, context: ProviderContext) -> list[InstanceSpec]:
    """Every entry of the request, or `Unprocessable` listing each bad entry's first problem."""
    if not isinstance(body, list):
        raise Unprocessable("The body must be a JSON array of chatbot configurations.",
                            errors=[{"field": "body", "message": "must be an array"}])
    if not 0 < len(body) <= MAX_INSTANCES_PER_REQUEST:
        raise Unprocessable(
            f"Send 1 to {MAX_INSTANCES_PER_REQUEST} configurations, not {len(body)}.",
            errors=[{"field": "body", "message":
                     f"must hold 1 to {MAX_INSTANCES_PER_REQUEST} entries"}])
    specs: list[InstanceSpec] = []
    errors: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for index, raw in enumerate(body):
        try:
            spec = _entry(index, raw, context)
        except _Bad as exc:
            name = f"[{index}].{exc.field}" if exc.field else f"[{index}]"
            errors.append({"field": name, "message": exc.message})
            continue
        if spec.user_id in seen:
            errors.append({"field": f"[{index}].user_id",
                           "message": f"repeats entry {seen[spec.user_id]}'s user_id"})
            continue
        seen[spec.user_id] = index
        specs.append(spec)
    if errors:
        detail = "; ".join(f"entry {e['field']}: {e['message']}" for e in errors[:5])
        raise Unprocessable(f"Nothing was created. {detail}", errors=errors)
    return specs
