"""Running an operator command (``python -m whatsease org|user ...``) against the database.

The server's database is used: ``WHATSEASE_MONGODB_URI``, else the embedded
one the running server started (found through the data dir), else the
embedded database started for this command alone and stopped after it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from whatsease.config import Config
from whatsease.errors import AppError, ConfigError


def run_command(name: str, work: Callable[[Config, str], Coroutine[Any, Any, None]]) -> int:
    """Run ``work(config, mongodb_uri)``; returns the exit code (2: settings or database, 1:
    the command was refused), with the reason on stderr prefixed ``whatsease NAME:``."""
    try:
        config = Config.from_env()
    except ConfigError as exc:
        print(f"whatsease {name}: configuration error: {exc}", file=sys.stderr)
        return 2
    from whatsease.storage.launcher import (
        EmbeddedDatabase,
        EmbeddedDatabaseError,
        running_database_uri,
    )

    embedded = None
    try:
        uri = config.mongodb_uri or running_database_uri(config.data_path / "db")
        if not uri:
            embedded = EmbeddedDatabase(config.data_path / "db",
                                        log_path=config.data_path / "secantusd.log")
            uri = embedded.start()
        asyncio.run(work(config, uri))
    except EmbeddedDatabaseError as exc:
        print(f"whatsease {name}: {exc}\n(set WHATSEASE_MONGODB_URI)", file=sys.stderr)
        return 2
    except (AppError, ConfigError, OSError) as exc:
        detail = exc.detail if isinstance(exc, AppError) else str(exc)
        print(f"whatsease {name}: {detail}", file=sys.stderr)
        return 1
    finally:
        if embedded is not None:
            embedded.stop()
    return 0
