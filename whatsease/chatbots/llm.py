"""The LLM-provider interface: turn a conversation into one reply, found through entry points.

A provider is a class registered in the entry-point group
``whatsease.llm_providers`` (setup.cfg); installing a package that registers
one adds it without touching WhatsEase. The class validates its own
``provider_config`` (`validate`), names the fields that are secrets
(``SECRET_FIELDS``: write-only, sealed at rest) and answers with `complete`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from importlib.metadata import entry_points
from typing import Any, ClassVar, Protocol

from whatsease.net.outbound import OutboundPolicy

LLM_PROVIDER_GROUP = "whatsease.llm_providers"
USER_ROLE = "user"
ASSISTANT_ROLE = "assistant"
MAX_PROVIDER_NAME_CHARS = 64


class ConfigInvalid(ValueError):
    """A provider config is not acceptable; ``field`` is the key inside it (dotted)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class LLMProviderError(Exception):
    """The provider failed to answer; the message says why and never holds a secret."""


@dataclass(frozen=True)
class Turn:
    """One message of a conversation: ``role`` is "user" or "assistant"."""

    role: str
    content: str


@dataclass(frozen=True)
class Completion:
    """A provider's reply: its text, how sure it is (0..1), tokens used and seconds taken.

    ``wants_person`` is True when the sender asked for a person (a catalogue's
    ``action = "handoff"`` intent): an instance with a handoff org hands them
    over at once.
    """

    text: str
    confidence: float
    prompt_tokens: int
    completion_tokens: int
    latency: float
    wants_person: bool = False


@dataclass(frozen=True)
class ProviderContext:
    """What the server gives every provider it builds: the outbound guard for tenant URLs."""

    outbound: OutboundPolicy


class LLMProvider(Protocol):
    """One instance's language model, built from its validated config."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]]

    async def complete(self, conversation: Sequence[Turn], *, conversation_id: str) -> Completion:
        """Reply to the conversation's last user turn; raise `LLMProviderError` on failure."""
        ...

    async def close(self) -> None:
        """Release what the provider holds (called when its instance is replaced or deleted)."""
        ...


class LLMProviderClass(Protocol):
    """What the entry point names: a class with these class-level members."""

    SECRET_FIELDS: ClassVar[tuple[str, ...]]

    def __call__(self, config: Mapping[str, Any], context: ProviderContext) -> LLMProvider: ...

    def validate(self, config: Mapping[str, Any], context: ProviderContext) -> dict[str, Any]:
        """The config as the provider keeps it; raise `ConfigInvalid` naming the field."""
        ...


@cache
def llm_providers() -> dict[str, LLMProviderClass]:
    """Every installed LLM provider by name (read once per process)."""
    found: dict[str, LLMProviderClass] = {}
    for point in entry_points(group=LLM_PROVIDER_GROUP):
        found[point.name] = point.load()
    return found


def llm_provider(name: str) -> LLMProviderClass:
    """The provider class registered as ``name``; `KeyError` if none is."""
    return llm_providers()[name]


def estimate_tokens(text: str) -> int:
    """A rough token count (about four characters a token) for providers that report none."""
    return max(1, (len(text) + 3) // 4) if text else 0


def check_keys(config: Mapping[str, Any], allowed: Sequence[str]) -> None:
    """Raise `ConfigInvalid` for a key the provider does not know (typos must not pass)."""
    for key in config:
        if key not in allowed:
            raise ConfigInvalid(str(key)[:64], f"is not a setting of this provider; known: "
                                f"{', '.join(allowed) or 'none'}")


def bounded_str(config: Mapping[str, Any], key: str, *, maximum: int, default: str = "",
                required: bool = False) -> str:
    """``config[key]`` as a string of at most ``maximum`` characters, or `ConfigInvalid`."""
    value = config.get(key, default)
    if not isinstance(value, str):
        raise ConfigInvalid(key, "must be a string")
    if required and not value.strip():
        raise ConfigInvalid(key, "is required")
    if len(value) > maximum:
        raise ConfigInvalid(key, f"must be at most {maximum} characters")
    return value


def bounded_number(config: Mapping[str, Any], key: str, *, minimum: float, maximum: float,
                   default: float) -> float:
    """``config[key]`` as a number within [minimum, maximum], or `ConfigInvalid`."""
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigInvalid(key, "must be a number")
    if not minimum <= value <= maximum:
        raise ConfigInvalid(key, f"must be between {minimum:g} and {maximum:g}")
    return float(value)
