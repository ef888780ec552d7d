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
from typing import Any

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from tests import support
from tests.support import Client, ServerThread
from whatsease.api.openapi import build_document

pytestmark = pytest.mark.slow

# Bounded so that the whole run stays within a couple of minutes on a loaded
# two-core machine; the seed and derandomisation make it the same run each time.
MAX_EXAMPLES = 12
SEED = 16

# The statuses each check accepts, widened only by what HTTP itself defines for
# our operations: 101 is a WebSocket handshake's success and 426 its answer to
# a version it does not speak (RFC 6455, section 4.4); 413 refuses a body too
# large, as negative data may be.
CONFIG = f"""
seed = {SEED}

[generation]
max-examples = {MAX_EXAMPLES}
deterministic = true
no-shrink = true

[checks.not_a_server_error]
expected-statuses = ["101", "2xx", "3xx", "4xx"]

[checks.positive_data_acceptance]
expected-statuses = ["101", "2xx", "3xx", "401", "403", "404", "409", "429", "5xx"]

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


def register(port: int) -> str:
    """A new account's access token."""
    email = f"contract-{secrets.token_hex(6)}@example.com"
    res = Client(port).post("/api/v1/auth/register", {
        "email": email, "name": "Contract", "password": "correct horse battery"})
    assert res.status == 201, res.body
    token: str = res.json["access_token"]
    return token


@pytest.fixture(scope="module")
def contract_server(mongo_uri: str) -> Iterator[ServerThread]:
    thread = ServerThread(support.test_config(), mongo_uri).start()
    yield thread
    thread.stop()


@pytest.fixture(scope="module")
def access_token(contract_server: ServerThread) -> str:
    return register(contract_server.port)


# The document exactly as the server serves it (test_openapi.py checks that it is).
schema = schemathesis.openapi.from_dict(build_document(),
                                        config=SchemathesisConfig.from_str(CONFIG))


@schema.parametrize()
def test_every_operation_keeps_the_contract(case: Any, contract_server: ServerThread,
                                            access_token: str) -> None:
    headers = {}
    if case.operation.definition.raw.get("security", [{"bearer": []}]) == [{"bearer": []}]:
        token = access_token
        if (case.method.upper(), case.path) in ENDS_THE_CALLER:
            token = register(contract_server.port)
        headers["Authorization"] = f"Bearer {token}"
    case.call_and_validate(base_url=contract_server.url, headers=headers, timeout=30)
