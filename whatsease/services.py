"""The services one process shares, built once in ``make_app`` and handed to every handler."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from whatsease.activity import ActivityLog
from whatsease.auth.accounts import Accounts
from whatsease.auth.service import AuthService
from whatsease.config import Config
from whatsease.messaging.service import Messaging
from whatsease.realtime.hub import Hub
from whatsease.storage.store import Store


@dataclass
class Services:
    config: Config
    store: Store
    hub: Hub
    activity: ActivityLog
    auth: AuthService
    accounts: Accounts
    messaging: Messaging
    # Filled by later subsystems (bot, support, channels) when they are built.
    extras: dict[str, Any] = field(default_factory=dict)
    draining: bool = False
