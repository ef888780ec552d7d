"""``python -m whatsease org ...``: set up support organisations, their agents and settings.

It talks to the database directly: ``WHATSEASE_MONGODB_URI``, or the embedded
development database in the data dir, the one a running server started (found
through the state file the launcher keeps beside it) or, with no server
running, one started for the command. A running server picks the changes up
at once. Links are printed with ``WHATSEASE_PUBLIC_URL`` (or the address the
server listens on).
Accounts that do not exist yet are created with a generated password, printed
once. Secrets are never taken from the command line (other users can read it
in the process list): an external chatbot's token comes from an environment
variable named with ``--chatbot-token-env``.
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from whatsease import validation
from whatsease.auth.passwords import hash_password
from whatsease.commands import run_command
from whatsease.config import Config
from whatsease.errors import ConfigError
from whatsease.storage.errors import Duplicate
from whatsease.storage.models import User
from whatsease.storage.store import Store
from whatsease.storage.support import SUPPORT_INDEXES, SupportStore
from whatsease.support.orgs import OrgService
from whatsease.timeutil import utcnow

GENERATED_PASSWORD_BYTES = 12


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whatsease org", description="Manage customer-support organisations.")
    sub = parser.add_subparsers(dest="action", required=True)

    create = sub.add_parser("create", help="create an organisation")
    create.add_argument("--name", required=True, help="the organisation's display name")
    create.add_argument("--id", help="its id (default: from the name, e.g. acme-shoes)")
    create.add_argument("--admin", help="email of its first admin (created if new)")
    create.add_argument("--admin-name", help="display name when the admin account is new")
    _settings_arguments(create)

    sub.add_parser("list", help="list organisations and their widget keys")

    show = sub.add_parser("show", help="an organisation's settings, key and agents")
    show.add_argument("org")

    settings = sub.add_parser("set", help="change an organisation's settings")
    settings.add_argument("org")
    _settings_arguments(settings)

    add = sub.add_parser("add-agent", help="make an account an agent (or admin) of an org")
    add.add_argument("org")
    add.add_argument("--email", required=True)
    add.add_argument("--name", help="display name when the account is new")
    add.add_argument("--admin", action="store_true", help="make them an org admin")

    remove = sub.add_parser("remove-agent", help="take an agent out of an org")
    remove.add_argument("org")
    remove.add_argument("--email", required=True)

    root = sub.add_parser("platform-admin",
                          help="make an account a platform admin (may create orgs via the API)")
    root.add_argument("--email", required=True)
    root.add_argument("--name", help="display name when the account is new")
    return parser


def _settings_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--routing", choices=("bot", "agent"))
    parser.add_argument("--assignment", choices=("least_busy", "random"))
    parser.add_argument("--timeout", type=int, help="session timeout in seconds (default 300)")
    parser.add_argument("--greeting")
    parser.add_argument("--brand-color", help="e.g. #0b6e4f")
    parser.add_argument("--origin", action="append", dest="origins", metavar="URL",
                        help="a site allowed to embed the widget (repeatable)")
    parser.add_argument("--catalogue", type=Path, metavar="FILE",
                        help="TOML intent catalogue for the built-in chatbot")
    parser.add_argument("--chatbot-url", help="an external OpenAI-compatible chatbot URL")
    parser.add_argument("--chatbot-model")
    parser.add_argument("--chatbot-token-env", metavar="VAR",
                        help="environment variable holding the external chatbot's token")
    parser.add_argument("--builtin-chatbot", action="store_true",
                        help="switch back to the built-in intent engine")


def settings_patch(args: argparse.Namespace) -> dict[str, object]:
    """The settings the arguments ask to change, in the API's shape."""
    patch: dict[str, object] = {}
    for arg, field in (("routing", "routing"), ("assignment", "assignment"),
                       ("timeout", "session_timeout"), ("greeting", "greeting"),
                       ("brand_color", "brand_color")):
        if getattr(args, arg) is not None:
            patch[field] = getattr(args, arg)
    if args.origins:
        patch["allowed_origins"] = args.origins
    chatbot: dict[str, object] = {}
    if args.catalogue is not None:
        chatbot["catalogue"] = args.catalogue.read_text(encoding="utf-8")
    if args.chatbot_url:
        chatbot.update(kind="external", url=args.chatbot_url)
    if args.chatbot_model:
        chatbot["model"] = args.chatbot_model
    if args.chatbot_token_env:
        token = os.environ.get(args.chatbot_token_env)
        if token is None:
            raise ConfigError(f"--chatbot-token-env: the variable {args.chatbot_token_env} "
                              "is not set")
        chatbot["token"] = token
    if args.builtin_chatbot:
        chatbot["kind"] = "builtin"
    if chatbot:
        patch["chatbot"] = chatbot
    return patch


class OrgAdmin:
    """The CLI's operations, over a store; each prints what it did."""

    def __init__(self, store: Store, config: Config,
                 out: Callable[[str], None] = print) -> None:
        self.store = store
        self.config = config
        self.orgs = OrgService(store, SupportStore(store.db))
        self.out = out

    async def ensure_account(self, email: str, name: str | None) -> User:
        address = validation.email(email)
        user = await self.store.users.get(address)
        if user is not None:
            return user
        password = secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)
        display = validation.name(name or address.split("@")[0])
        now = utcnow()
        user = User(email=address, name=display,
                    password_hash=await hash_password(password, self.config.bcrypt_rounds),
                    created_at=now, last_seen=now)
        try:
            await self.store.users.insert(user)
        except Duplicate:
            existing = await self.store.users.get(address)
            assert existing is not None
            return existing
        self.out(f"created account {address} with password: {password}")
        return user

    async def create(self, args: argparse.Namespace) -> None:
        if args.admin:
            await self.ensure_account(args.admin, args.admin_name)
        org, admin = await self.orgs.create_with_admin(
            args.name, org_id=args.id, settings=settings_patch(args), admin=args.admin or None)
        self.out(f"created organisation {org.org_id} ({org.name})")
        self.out(f"widget key: {org.widget_key}")
        if admin is not None:
            self.out(f"{admin.email} is an admin of {org.org_id}")
        base = self.config.base_url
        self.out(f'embed: <script src="{base}/widget.js" data-org="{org.widget_key}" '
                 "async></script>")
        self.out(f"agents log in at {base}/agent")

    async def list(self, args: argparse.Namespace) -> None:
        for org in await self.orgs.support.orgs.find(limit=1000):
            self.out(f"{org.org_id}\t{org.name}\t{org.widget_key}\trouting={org.settings.routing}")

    async def show(self, args: argparse.Namespace) -> None:
        org = await self.orgs.get(args.org)
        settings = org.settings
        self.out(f"{org.org_id} ({org.name}), widget key {org.widget_key}")
        self.out(f"routing={settings.routing} assignment={settings.assignment} "
                 f"timeout={settings.session_timeout}s chatbot={settings.chatbot.kind}"
                 f"{' (token set)' if settings.chatbot.token else ''}")
        self.out(f"allowed origins: {', '.join(settings.allowed_origins) or '(this server only)'}")
        for member in await self.orgs.members(org.org_id):
            self.out(f"  {member.role}\t{member.email}\t{member.name}")

    async def set(self, args: argparse.Namespace) -> None:
        patch = settings_patch(args)
        if not patch:
            raise ConfigError("nothing to change: give at least one setting")
        org = await self.orgs.update_settings(args.org, patch)
        self.out(f"updated {org.org_id}: {', '.join(sorted(patch))}")

    async def add_agent(self, args: argparse.Namespace) -> None:
        await self.orgs.get(args.org)
        await self.ensure_account(args.email, args.name)
        user = await self.orgs.add_member(args.org, args.email,
                                          "admin" if args.admin else "agent")
        self.out(f"{user.email} is an {user.role} of {args.org}")

    async def remove_agent(self, args: argparse.Namespace) -> None:
        user = await self.orgs.remove_member(args.org, validation.email(args.email))
        self.out(f"{user.email} is no longer in {args.org}")

    async def platform_admin(self, args: argparse.Namespace) -> None:
        user = await self.ensure_account(args.email, args.name)
        if user.org is not None and user.role in ("agent", "admin"):
            raise ConfigError(f"{user.email} belongs to org {user.org}; remove them first")
        await self.store.users.update(user.email, {"role": "admin", "org": None})
        self.out(f"{user.email} is a platform admin")


async def run(args: argparse.Namespace, config: Config, uri: str,
              out: Callable[[str], None] = print) -> None:
    store = Store(uri, config.db_name)
    try:
        await store.ensure_indexes(extra=SUPPORT_INDEXES)
        admin = OrgAdmin(store, config, out)
        action: Callable[[argparse.Namespace], Awaitable[None]] = getattr(
            admin, args.action.replace("-", "_"))
        await action(args)
    finally:
        await store.close()


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)

    async def work(config: Config, uri: str) -> None:
        await run(args, config, uri)

    return run_command("org", work)
