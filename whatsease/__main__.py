"""The ``whatsease`` command: serve (the default) and operator tools such as bot-eval."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from whatsease import __version__
from whatsease.config import Config, describe_settings
from whatsease.errors import ConfigError

if TYPE_CHECKING:
    from whatsease.storage.supervisor import Supervisor

logger = logging.getLogger("whatsease")

COMMANDS = {
    "serve": "run the server (default)",
    "bot-eval": "measure an intent catalogue against labelled cases",
    "org": "set up support organisations and agents (org --help)",
    "user": "operator tools for accounts: user reset-link EMAIL",
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="whatsease",
        description="WhatsEase: a self-hostable messenger with an assistant and customer "
                    "support. Configured with environment variables.",
        epilog=describe_settings() + "\n\ncommands:\n" + "\n".join(
            f"  {name:<10} {text}" for name, text in COMMANDS.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", default="serve", choices=list(COMMANDS))
    parser.add_argument("--version", action="version", version=f"whatsease {__version__}")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] == "bot-eval":
        from whatsease.bot.evaluate import main as bot_eval

        return bot_eval(args[1:])
    if args and args[0] == "org":
        from whatsease.support.cli import main as org_admin

        return org_admin(args[1:])
    if args and args[0] == "user":
        from whatsease.auth.cli import main as user_admin

        return user_admin(args[1:])
    _parser().parse_args(args)
    return serve()


def serve() -> int:
    from whatsease import log

    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"whatsease: configuration error: {exc}", file=sys.stderr)
        return 2
    log.configure(config.log_level)

    from whatsease.storage.launcher import EmbeddedDatabase, EmbeddedDatabaseError

    embedded = None
    supervisor = None
    try:
        config = config.with_jwt_secret()
        uri = config.mongodb_uri
        if not uri:
            embedded = EmbeddedDatabase(config.data_path / "db",
                                        log_path=config.data_path / "secantusd.log",
                                        journal=config.db_journal)
            # The database boots in its own process (about half a second) while
            # this one imports the server: neither waits for the other.
            embedded.spawn()
        import uvloop

        from whatsease.app import serve as serve_app
        from whatsease.storage.supervisor import Supervisor

        if embedded is not None:
            uri = embedded.wait_ready()
            logger.warning("using the local development database (SecantusDB) in %s; set "
                           "WHATSEASE_MONGODB_URI for production", config.data_path / "db")
            supervisor = Supervisor(embedded, restarts=config.db_restarts).start()
        uvloop.run(serve_app(config, uri, health=_failure_of(supervisor)))
    except (ConfigError, EmbeddedDatabaseError) as exc:
        print(f"whatsease: {exc}", file=sys.stderr)
        return 2
    finally:
        if supervisor is not None:
            supervisor.stop()
        if embedded is not None:
            embedded.stop()
    return 0


def _failure_of(supervisor: Supervisor | None) -> Callable[[], str | None] | None:
    if supervisor is None:
        return None
    return lambda: supervisor.failure


if __name__ == "__main__":
    sys.exit(main())
