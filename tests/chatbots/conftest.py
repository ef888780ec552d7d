"""Fixtures for chatbot instances: a loopback peer (a real local HTTP server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.platforms import FakeLoopbackPeer


@pytest.fixture
def peer() -> Iterator[FakeLoopbackPeer]:
    fake = FakeLoopbackPeer().start()
    yield fake
    fake.stop()
