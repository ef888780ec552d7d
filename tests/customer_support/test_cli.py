"""``python -m whatsease org``: creating orgs, agents and settings from the command line."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pymongo
import pytest

from tests import support as harness
from whatsease.auth.passwords import verify_password
from whatsease.config import Config
from whatsease.errors import AppError, ConfigError
from whatsease.storage.store import Store
from whatsease.storage.support import SupportStore
from whatsease.support.cli import _parser, run

ROOT = Path(__file__).resolve().parents[2]


class Output:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def __call__(self, line: str) -> None:
        self.lines.append(line)

    def value_after(self, prefix: str) -> str:
        return next(line for line in self.lines if line.startswith(prefix))[len(prefix):]


async def org_cli(config: Config, uri: str, *argv: str) -> Output:
    out = Output()
    await run(_parser().parse_args(list(argv)), config, uri, out)
    return out


async def test_create_an_org_with_its_admin_agents_and_settings(mongo_uri: str,
                                                                tmp_path: Path) -> None:
    config = harness.test_config()
    store = Store(mongo_uri, config.db_name)
    try:
        out = await org_cli(config, mongo_uri, "create", "--name", "Acme Shoes",
                            "--admin", "boss@acme.test", "--origin", "https://shop.example",
                            "--routing", "agent")
        assert "created organisation acme-shoes (Acme Shoes)" in out.lines
        password = out.value_after("created account boss@acme.test with password: ")
        boss = await store.users.get("boss@acme.test")
        assert boss is not None and (boss.role, boss.org) == ("admin", "acme-shoes")
        assert await verify_password(password, boss.password_hash)
        key = out.value_after("widget key: ")
        org = await SupportStore(store.db).orgs.by_widget_key(key)
        assert org is not None and org.settings.routing == "agent"
        assert org.settings.allowed_origins == ["https://shop.example"]
        assert any(f'data-org="{key}"' in line for line in out.lines)

        await org_cli(config, mongo_uri, "add-agent", "acme-shoes", "--email", "al@acme.test",
                      "--name", "Al")
        catalogue = tmp_path / "bot.toml"
        catalogue.write_text("[bot]\nname = 'Acmebot'\nfallback = ['Hm?']\n\n[[intents]]\n"
                             "name = 'hi'\nexamples = ['hello']\nresponses = ['Hi!']\n")
        os.environ["TEST_BOT_TOKEN"] = "sk-from-env-123456"
        try:
            await org_cli(config, mongo_uri, "set", "acme-shoes", "--assignment", "random",
                          "--timeout", "600", "--catalogue", str(catalogue),
                          "--chatbot-url", "https://bot.example/v1/chat/completions",
                          "--chatbot-token-env", "TEST_BOT_TOKEN")
        finally:
            del os.environ["TEST_BOT_TOKEN"]
        org = await SupportStore(store.db).orgs.get("acme-shoes")
        assert org is not None
        assert (org.settings.assignment, org.settings.session_timeout) == ("random", 600)
        assert org.settings.chatbot.kind == "external"
        assert org.settings.chatbot.token == "sk-from-env-123456"
        assert "Acmebot" in org.settings.chatbot.catalogue
        shown = await org_cli(config, mongo_uri, "show", "acme-shoes")
        assert any("(token set)" in line for line in shown.lines)
        assert not any("sk-from-env" in line for line in shown.lines)
        assert any(line.strip().startswith("agent\tal@acme.test") for line in shown.lines)
        listed = await org_cli(config, mongo_uri, "list")
        assert any(line.startswith("acme-shoes\tAcme Shoes\t" + key) for line in listed.lines)

        with pytest.raises(AppError) as bad:
            await org_cli(config, mongo_uri, "set", "acme-shoes", "--timeout", "1")
        assert "session_timeout" in bad.value.detail
        with pytest.raises(ConfigError):
            await org_cli(config, mongo_uri, "platform-admin", "--email", "al@acme.test")
        await org_cli(config, mongo_uri, "remove-agent", "acme-shoes", "--email",
                      "al@acme.test")
        await org_cli(config, mongo_uri, "platform-admin", "--email", "al@acme.test")
        al = await store.users.get("al@acme.test")
        assert al is not None and (al.role, al.org) == ("admin", None)
    finally:
        await store.client.drop_database(config.db_name)
        await store.close()


def test_the_org_command_is_wired_into_python_m_whatsease(mongo_uri: str) -> None:
    db_name = f"t{secrets.token_hex(6)}"
    env = {**os.environ, "WHATSEASE_MONGODB_URI": mongo_uri, "WHATSEASE_DB_NAME": db_name,
           "WHATSEASE_BCRYPT_ROUNDS": "4", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "whatsease", "org", "create", "--name", "Cli",
                           "--id", "cli-org"], env=env, capture_output=True, text=True,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "created organisation cli-org (Cli)" in done.stdout
    again = subprocess.run([sys.executable, "-m", "whatsease", "org", "create", "--name",
                            "Cli", "--id", "cli-org"], env=env, capture_output=True, text=True,
                           timeout=60, cwd=ROOT)
    assert again.returncode == 1 and "already exists" in again.stderr
    listed = subprocess.run([sys.executable, "-m", "whatsease", "--help"], env=env,
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "org " in listed.stdout
    with pymongo.MongoClient[dict[str, object]](mongo_uri) as client:
        client.drop_database(db_name)
