"""A server of its own over a fresh database holding the known history, and its people."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.analytics.seed import seed
from tests.support import ServerThread, User, register, test_config


@dataclass
class People:
    operator: User
    acme_agent: User
    acme_admin: User
    person: User


async def _set_role(server: ServerThread, email: str, role: str, org: str | None) -> None:
    services = server.services
    await services.store.users.update(email, {"role": role, "org": org})
    services.auth.forget_user(email)


# Reports wait for their figures however long they take here (a loaded machine
# may take more than the few seconds a page waits): the tests assert exact ones.
PATIENT_SECS = 600.0


@pytest.fixture(autouse=True)
def patient_reports(request: pytest.FixtureRequest) -> None:
    if "services" in request.fixturenames:
        services = request.getfixturevalue("services")
        if services.analytics is not None:
            services.analytics.wait = services.analytics.history_wait = PATIENT_SECS


@pytest.fixture(scope="module")
def seeded(mongo_uri: str) -> Iterator[ServerThread]:
    """A server whose database holds only tests/analytics/seed.py's history."""
    thread = ServerThread(test_config(), mongo_uri).start()
    assert thread.services.analytics is not None
    thread.services.analytics.wait = thread.services.analytics.history_wait = PATIENT_SECS
    thread.call(seed(thread.services))
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def people(seeded: ServerThread) -> People:
    """An operator (platform admin), acme's agent and admin, and a plain person."""
    made = People(operator=register(seeded.port, "root"),
                  acme_agent=register(seeded.port, "agent"),
                  acme_admin=register(seeded.port, "boss"), person=register(seeded.port))
    seeded.call(_set_role(seeded, made.operator.email, "admin", None))
    seeded.call(_set_role(seeded, made.acme_agent.email, "agent", "acme"))
    seeded.call(_set_role(seeded, made.acme_admin.email, "admin", "acme"))
    return made
