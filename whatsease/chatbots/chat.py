"""Chat providers as chatbot instances see them: the channel seam's registry, plus groups.

The platforms live in ``whatsease/channels`` (entry-point group
``whatsease.chat_providers``); an instance's ``chat_provider_config`` names one
and carries its settings, validated by the provider's own `ConfigField` list.
One setting belongs to the instance rather than the platform and is taken
out first: ``allow_group_messages`` (default false), as in the seed's API.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from whatsease.channels.base import (
    ChannelProvider,
    ConfigError,
    ProviderContext,
    provider_class,
    provider_names,
    validate_config,
)
from whatsease.chatbots.llm import ConfigInvalid

GROUP_SETTING = "allow_group_messages"


def chat_provider_names() -> list[str]:
    """Every installed chat provider's name."""
    return provider_names()


def chat_provider_class(name: str) -> type[ChannelProvider]:
    """The provider class for ``name``; `ConfigInvalid` naming ``provider_name`` if none."""
    try:
        return provider_class(name)
    except ConfigError as exc:
        raise ConfigInvalid("provider_name", exc.message) from None


def validate_chat_config(cls: type[ChannelProvider],
                         config: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """The provider's settings (defaults filled in) and whether groups are answered.

    Raises `ConfigInvalid` naming the key.
    """
    settings = dict(config)
    groups = settings.pop(GROUP_SETTING, False)
    if not isinstance(groups, bool):
        raise ConfigInvalid(GROUP_SETTING, "must be true or false")
    try:
        checked = validate_config(cls.config_fields, settings)
    except ConfigError as exc:
        raise ConfigInvalid(exc.field, exc.message) from None
    return checked, groups


def build_chat_provider(name: str, config: Mapping[str, Any],
                        context: ProviderContext) -> ChannelProvider:
    """The provider for an instance's stored (already validated) settings, secrets included."""
    cls = provider_class(name)
    return cls(dict(config), context)
