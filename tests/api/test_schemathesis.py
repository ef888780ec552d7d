"""The OpenAPI document is the contract: schemathesis runs every operation against a real server.

Every operation in /api/openapi.json gets a bounded, seeded set of generated
requests (positive and negative, the coverage phase's edge cases, undeclared
methods) with every check schemathesis has: no 5xx, only documented statuses,
headers and content types, responses matching their schemas, schema-valid
input accepted and schema-invalid input refused. A difference between what the
server does and what the document says fails the test.

The server is this module's own (the run registers accounts and fails logins,
which would trip the shared server's per-address login limit for other tests).
Operations that end the caller's session or account run with an account made
for that one request, so the rest of the run keeps a working token.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from tests import support
from tests.customer_support.http import Team, make_team, platform_admin
from tests.support import ServerThread, User, register
from whatsease.api.openapi import build_document
from whatsease.support.service import get_support

pytestmark = pytest.mark.slow

# Bounded so that the whole run stays within a couple of minutes on a loaded
# two-core machine; the seed and derandomisation make it the same run each time.
MAX_EXAMPLES = 12
SEED = 16

# The statuses each check accepts, widened only by what HTTP itself defines for
# our operations: 101 is a WebSocket handshake's success and 426 its answer to
# a version it does not speak (RFC 6455, section 4.4); 413 refuses a body too
# large, as negative data may be; 410, like 409, answers valid input sent to a
# conversation that has ended meanwhile.
CONFIG = f"""
seed = {SEED}

[generation]
max-examples = {MAX_EXAMPLES}
deterministic = true
no-shrink = true
# The server ignores query parameters it does not know, as HTTP servers do; the
# document does not promise otherwise.
allow-extra-parameters = false

[checks.not_a_server_error]
expected-statuses = ["101", "2xx", "3xx", "4xx"]

[checks.positive_data_acceptance]
expected-statuses = ["101", "2xx", "3xx", "401", "403", "404", "409", "410", "429", "5xx"]

[checks.negative_data_rejection]
expected-statuses = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "426", "428", "429", "5xx"]

[checks.missing_required_header]
expected-statuses = ["400", "401", "403", "406", "415", "422", "426"]
"""

# Operations that end the caller's session or account.
ENDS_THE_CALLER = {
    ("POST", "/api/v1/auth/logout"),
    ("DELETE", "/api/v1/users/me"),
    ("DELETE", "/api/v1/auth/sessions/{session_id}"),
}


@dataclass
class World:
    """Accounts, an org and its conversations, so that requests reach past 401 and 404."""

    server: ServerThread
    user: User
    root: User
    team: Team
    # One support conversation per operation: closing or ending one leaves the others.
    conversations: dict[tuple[str, str], tuple[str, str]] = field(default_factory=dict)

    def conversation(self, case: Any) -> tuple[str, str]:
        """The (conversation id, customer token) this operation works on."""
        key = (case.method.upper(), case.path)
        if key not in self.conversations:
            self.conversations[key] = self.server.call(self._start())
        return self.conversations[key]

    async def _start(self) -> tuple[str, str]:
        support = get_support(self.server.services)
        org = await support.orgs.get(self.team.org_id)
        # Started in-process, without an address, so the per-address limit on new
        # conversations stays for the run's own POST /widget/v1/{key}/sessions.
        conversation, token, _ = await support.start_session(
            org, "Contract Customer", "customer@contract.test")
        return conversation.conversation_id, token

    def fresh_org(self) -> str:
        res = self.root.client.post("/api/v1/orgs", {"name": f"Org {secrets.token_hex(4)}"})
        assert res.status == 201, res.body
        return str(res.json["org"]["id"])


@pytest.fixture(scope="module")
def contract_server(mongo_uri: str) -> Iterator[ServerThread]:
    thread = ServerThread(support.test_config(), mongo_uri).start()
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def world(contract_server: ServerThread) -> World:
    root = platform_admin(contract_server)
    return World(server=contract_server, user=register(contract_server.port, "contract"),
                 root=root, team=make_team(contract_server, root))


# The document exactly as the server serves it (test_openapi.py checks that it is).
schema = schemathesis.openapi.from_dict(build_document(),
                                        config=SchemathesisConfig.from_str(CONFIG))


def _prepare(case: Any, world: World) -> dict[str, str]:
    """Point the case at things that exist and pick its caller; the headers to send."""
    method, path = case.method.upper(), case.path
    security = case.operation.definition.raw.get("security", [{"bearer": []}])
    token: str | None = None
    if path.startswith("/api/v1/orgs/{org_id}"):
        # Each on an org of its own: rotating the key or deleting the org would
        # otherwise pull the ground from under the widget's operations.
        case.path_parameters["org_id"] = world.fresh_org()
        token = world.root.access_token
    elif path == "/api/v1/orgs":
        token = world.root.access_token
    elif path.startswith("/api/v1/support/"):
        token = world.team.admin.access_token
        if "{conversation_id}" in path:
            case.path_parameters["conversation_id"] = world.conversation(case)[0]
    elif path.startswith("/widget/v1/"):
        case.path_parameters["key"] = world.team.key
        if security == [{"widgetSession": []}]:
            token = world.conversation(case)[1]
    elif security == [{"bearer": []}]:
        token = world.user.access_token
        if (method, path) in ENDS_THE_CALLER:
            token = register(world.server.port, "leaving").access_token
    return {"Authorization": f"Bearer {token}"} if token else {}


@schema.parametrize()
def test_every_operation_keeps_the_contract(case: Any, world: World) -> None:
    headers = _prepare(case, world)
    case.call_and_validate(base_url=world.server.url, headers=headers, timeout=30)
