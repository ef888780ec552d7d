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
for that one request, so the rest of the run keeps a working token. Requests
that prove a secret (the current password, a reset link's token) carry a real
one, so that they reach the rules behind it.

A few of the server's rules cannot be said in JSON Schema (a password's
strength, an internationalised domain's validity, mixed scripts, code points
unassigned in the server's Unicode version); the operations document them with
their 422. INEXPRESSIBLE names, per operation and field, the refusals that may
answer schema-valid input, each recognised by its message and by the value
sent; any other 422 for schema-valid input still fails the run.
"""

from __future__ import annotations

import re
import secrets
import unicodedata
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests import support
from tests.customer_support.http import Team, make_team, platform_admin
from tests.support import ServerThread, User, register
from whatsease.api.openapi import build_document
from whatsease.auth.service import AuthService
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


@dataclass(frozen=True)
class Rule:
    """A refusal no schema can state: its message, and when it can concern the value sent."""

    message: str
    concerns: Callable[[str, str], bool] = lambda value, message: True

    def explains(self, value: Any, message: str) -> bool:
        return (isinstance(value, str) and message.startswith(self.message)
                and self.concerns(value, message))


def _names_an_unassigned_code_point(value: str, message: str) -> bool:
    # The pattern refuses every control, format, separator and private-use
    # character; only one unassigned in the server's Unicode version may remain.
    found = re.search(r"\(found U\+([0-9A-F]{4,6})\)", message)
    char = chr(int(found.group(1), 16)) if found else ""
    return bool(char) and char in value and unicodedata.category(char) == "Cn"


def _domain_is_not_ascii(value: str, message: str) -> bool:
    return not value.rpartition("@")[2].isascii()


def _local_part_is_not_ascii(value: str, message: str) -> bool:
    return not value.rpartition("@")[0].isascii()


# validation.email: for an ASCII address the pattern is exact, so each rule
# applies only where the address is not ASCII (IDNA, case folding, width folding).
EMAIL = (
    Rule("must not contain invisible, control or space characters",
         _names_an_unassigned_code_point),
    Rule("must have a valid domain name", _domain_is_not_ascii),
    # Its canonical form: over 254 characters once folded and in IDNA form, or
    # no dot left in the domain (a full-width full stop folds to a final dot).
    Rule("must be a valid email address", lambda value, message: not value.isascii()),
)
MIXED_SCRIPTS = Rule("must not mix letters of different scripts", _local_part_is_not_ascii)
# zxcvbn's estimate (score under 3, or built from the account's email or name).
WEAK_PASSWORD = Rule("is too easy to guess")
SAME_PASSWORD = Rule("must differ from the current password")
# An org's settings: a catalogue is TOML the intent engine must load (its
# errors start with "catalogue:"; "must be TOML text of at most ..." is the
# schema's own maxLength), and the outbound guard judges a chatbot URL's host
# and where it resolves (and refuses http unless the operator allows it).
CATALOGUE = (Rule("catalogue: "),)
OUTBOUND = (Rule("has a host name that is not valid"), Rule("must not point at"),
            Rule("", lambda value, message: " resolves to " in message),
            Rule("must be an https:// URL"))
# The assistant's language must be one its running catalogue speaks, and the
# catalogue is the operator's to choose, so the schema cannot list them.
BOT_LANGUAGE = (Rule("must be one of "),)
SETTINGS: dict[str, Where] = {
    "chatbot.catalogue": ("body", "settings.chatbot.catalogue", CATALOGUE),
    "chatbot.url": ("body", "settings.chatbot.url", OUTBOUND)}

# (method, path) -> {field named in errors[]: (where the value is, its name, rules)}.
Where = tuple[str, str, tuple[Rule, ...]]
INEXPRESSIBLE: dict[tuple[str, str], dict[str, Where]] = {
    ("POST", "/api/v1/auth/register"): {
        "email": ("body", "email", (*EMAIL, MIXED_SCRIPTS)),
        "password": ("body", "password", (WEAK_PASSWORD,))},
    ("POST", "/api/v1/auth/login"): {"email": ("body", "email", EMAIL)},
    ("POST", "/api/v1/auth/password"): {
        "new_password": ("body", "new_password", (WEAK_PASSWORD, SAME_PASSWORD))},
    ("POST", "/api/v1/auth/password-reset"): {"email": ("body", "email", EMAIL)},
    ("POST", "/api/v1/auth/password-reset/confirm"): {
        "password": ("body", "password", (WEAK_PASSWORD,))},
    ("POST", "/api/v1/messages"): {"recipient": ("body", "recipient", EMAIL)},
    ("GET", "/api/v1/messages"): {"with": ("query", "with", EMAIL)},
    ("POST", "/api/v1/orgs"): {"admin": ("body", "admin", EMAIL), **SETTINGS},
    ("PATCH", "/api/v1/orgs/{org_id}"): SETTINGS,
    ("POST", "/api/v1/orgs/{org_id}/agents"): {"email": ("body", "email", EMAIL)},
    ("DELETE", "/api/v1/orgs/{org_id}/agents/{email}"): {"email": ("path", "email", EMAIL)},
    ("GET", "/api/v1/support/conversations"): {"customer": ("query", "customer", EMAIL)},
    ("POST", "/api/v1/support/conversations/{conversation_id}/transfer"): {
        "agent": ("body", "agent", EMAIL)},
    ("POST", "/widget/v1/{key}/sessions"): {"email": ("body", "email", EMAIL)},
    ("PUT", "/api/v1/bot/language"): {"language": ("body", "language", BOT_LANGUAGE)},
}


def _sent(case: Any, where: str, name: str) -> Any:
    """The value sent at ``where`` under ``name`` (dotted for a nested member)."""
    value: Any = {"body": case.body, "query": case.query, "path": case.path_parameters}[where]
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    # Path values may reach here percent-encoded; the server decodes them.
    return urllib.parse.unquote(value) if where == "path" and isinstance(value, str) else value


def refused_by_inexpressible_rule(case: Any, response: Any) -> bool:
    """True when a 422 names only fields of INEXPRESSIBLE, each for one of its rules."""
    fields = INEXPRESSIBLE.get((case.method.upper(), case.path))
    if response.status_code != 422 or not fields:
        return False
    errors = response.json().get("errors") or []
    for error in errors:
        where = fields.get(error.get("field"))
        if where is None:
            return False
        value = _sent(case, where[0], where[1])
        if not any(rule.explains(value, str(error.get("message"))) for rule in where[2]):
            return False
    return bool(errors)


@dataclass
class World:
    """Accounts, an org and its conversations, so that requests reach past 401 and 404."""

    server: ServerThread
    user: User
    root: User
    team: Team
    # The account whose password POST /api/v1/auth/password changes, and that password.
    changer: User
    changer_password: str
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

    def reset_token(self) -> str:
        """A fresh reset link's token for the changer's account (the older ones stop working)."""
        auth: AuthService = self.server.services.auth
        link = self.server.call(auth.resets.issue(self.changer.email))
        return link.split("#", 1)[1]

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
    changer = register(contract_server.port, "changer")
    return World(server=contract_server, user=register(contract_server.port, "contract"),
                 root=root, team=make_team(contract_server, root), changer=changer,
                 changer_password=changer.password)


def _is_schema_valid_secret(value: Any, max_chars: int) -> bool:
    # A negative case's mutation of the secret itself stays as generated.
    return isinstance(value, str) and len(value) <= max_chars


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
    elif path == "/api/v1/auth/password-reset/confirm":
        if isinstance(case.body, dict) and _is_schema_valid_secret(case.body.get("token"), 100):
            case.body["token"] = world.reset_token()
    elif security == [{"bearer": []}]:
        token = world.user.access_token
        if path == "/api/v1/auth/password":
            token = world.changer.access_token
            if (isinstance(case.body, dict)
                    and _is_schema_valid_secret(case.body.get("current_password"), 256)):
                case.body["current_password"] = world.changer_password
        if (method, path) in ENDS_THE_CALLER:
            token = register(world.server.port, "leaving").access_token
    return {"Authorization": f"Bearer {token}"} if token else {}


@schema.parametrize()
# Generating examples of the larger bodies is slow on a loaded two-core machine; that
# is no failure of the contract, so Hypothesis's "too slow" health check is off.
@settings(suppress_health_check=[HealthCheck.too_slow])
def test_every_operation_keeps_the_contract(case: Any, world: World) -> None:
    headers = _prepare(case, world)
    response = case.call(base_url=world.server.url, headers=headers, timeout=30)
    if (case.path == "/api/v1/auth/password" and response.status_code == 204
            and isinstance(case.body, dict)):
        world.changer_password = case.body["new_password"]
    # Only the acceptance of schema-valid input is waived, and only for a rule
    # no schema can state; every other check judges the same response.
    excluded = ([positive_data_acceptance] if refused_by_inexpressible_rule(case, response)
                else [])
    case.validate_response(response, headers=headers, excluded_checks=excluded,
                           transport_kwargs={"base_url": world.server.url, "headers": headers,
                                             "timeout": 30})
