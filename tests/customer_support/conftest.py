"""Fixtures for customer support: the service on the test's loop with a clock the test moves."""

from __future__ import annotations

import asyncio
import random
import secrets
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import orjson
import pytest

from whatsease.services import Services
from whatsease.storage.models import User
from whatsease.storage.support_models import Org, SupportConversation
from whatsease.support.service import SupportService, console_key, customer_key, get_support
from whatsease.timeutil import utcnow

WAIT_SECS = 15.0  # for what must arrive: a passing test never waits it out


class FakeClock:
    """A settable UTC clock: the service reads it; the test moves it."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or utcnow()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class FakeSocket:
    """A hub connection that records the frames it is sent and lets a test wait for one."""

    def __init__(self, user: str, session_id: str = "test") -> None:
        self.user = user
        self.session_id = session_id
        self.home_route = ""
        self.frames: list[dict[str, Any]] = []
        self.closed: tuple[int, str] | None = None
        self._changed = asyncio.Event()

    def send_frame(self, data: bytes) -> None:
        self.frames.append(orjson.loads(data))
        self._changed.set()

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)
        self._changed.set()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["type"] == kind]

    async def expect(self, kind: str, where: Callable[[dict[str, Any]], bool] | None = None,
                     wait_secs: float = WAIT_SECS) -> dict[str, Any]:
        """The first recorded frame of ``kind`` matching ``where``, waiting up to ``wait_secs``."""
        async def found() -> dict[str, Any]:
            while True:
                for frame in self.frames:
                    if frame["type"] == kind and (where is None or where(frame)):
                        return frame
                self._changed.clear()
                await self._changed.wait()

        try:
            return await asyncio.wait_for(found(), wait_secs)
        except TimeoutError:
            raise AssertionError(f"no {kind} frame within {wait_secs} s; got "
                                 f"{[f['type'] for f in self.frames]}") from None


@pytest.fixture
async def support(services: Services) -> AsyncIterator[SupportService]:
    """The process's support service with a fake clock, no offline grace and a seeded rng."""
    service = get_support(services)
    service.clock = FakeClock()
    service.rng = random.Random(1234)
    service.presence.grace_secs = 0
    yield service
    await service.stop()


def clock_of(support: SupportService) -> FakeClock:
    assert isinstance(support.clock, FakeClock)
    return support.clock


async def make_org(support: SupportService, **settings: Any) -> Org:
    return await support.orgs.create(f"Shop {secrets.token_hex(3)}", settings=settings)


async def make_agent(services: Services, support: SupportService, org: Org, name: str,
                     role: str = "agent") -> User:
    email = f"{name.lower()}.{secrets.token_hex(3)}@agents.test"
    await services.store.users.insert(User(email=email, name=name, created_at=utcnow()))
    return await support.orgs.add_member(org.org_id, email, role)


async def go_online(support: SupportService, user: User) -> FakeSocket:
    """Open a (fake) console for ``user``; queued customers may get assigned."""
    console = FakeSocket(console_key(user.email))
    await support.console_connected(console, user)
    return console


async def go_offline(support: SupportService, console: FakeSocket, user: User) -> None:
    await support.console_disconnected(console, user)


def watch_customer(support: SupportService, conversation: SupportConversation) -> FakeSocket:
    """A (fake) widget socket on the customer's conversation."""
    widget = FakeSocket(customer_key(conversation.conversation_id),
                        conversation.conversation_id)
    support.customer_connected(widget)
    return widget


async def messages_of(support: SupportService, conversation_id: str) -> list[dict[str, Any]]:
    """The conversation's messages, oldest first, as (kind, content) pairs' dicts."""
    page = await support.store.messages.history(conversation_id, before=None, limit=100)
    return [{"kind": m.kind, "content": m.content, "sender": m.sender}
            for m in reversed(page)]


async def current(support: SupportService, conversation_id: str) -> SupportConversation:
    conversation = await support.store.conversations.get(conversation_id)
    assert conversation is not None
    return conversation
