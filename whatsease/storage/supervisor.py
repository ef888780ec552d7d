"""Supervision of the embedded database: reap it when it dies, restart it, or give up loudly.

The server keeps running while the database restarts: it answers 503 in the
meantime (whatsease.storage.outage), and pymongo reconnects by itself because
the new database listens on the same port. When the database cannot be brought
back, `Supervisor.failure` says why and ``/healthz`` answers 503, so that the
platform restarts the whole machine.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable

from whatsease.storage.launcher import EmbeddedDatabase, EmbeddedDatabaseError

logger = logging.getLogger(__name__)

# How often the child is checked (and, once it exited, reaped): a dead database
# is noticed within this time, and no `<defunct>` entry outlives it.
POLL_SECS = 0.25
FIRST_BACKOFF_SECS = 1.0
MAX_BACKOFF_SECS = 30.0
# A database that stayed up this long counts as recovered: its next death
# starts the count of restarts in a row (and the backoff) from the beginning.
STABLE_SECS = 60.0
RESTART_TIMEOUT_SECS = 30.0
DEFAULT_RESTARTS = 5


def describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


class Supervisor:
    """Watches an `EmbeddedDatabase` from a thread and restarts it with backoff.

    Up to ``restarts`` restarts in a row, waiting 1, 2, 4... s (at most 30 s)
    before each. ``failure`` is None while all is well, and a sentence once it
    gave up. Call `start` after the database started and `stop` before
    stopping it.
    """

    def __init__(self, database: EmbeddedDatabase, *, restarts: int = DEFAULT_RESTARTS,
                 first_backoff: float = FIRST_BACKOFF_SECS,
                 restart_timeout: float = RESTART_TIMEOUT_SECS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.database = database
        self.restarts = restarts
        self.first_backoff = first_backoff
        self.restart_timeout = restart_timeout
        self.clock = clock
        self.failure: str | None = None
        self.restarted = 0  # in all, for the logs and tests
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Supervisor:
        self._thread = threading.Thread(target=self._run, name="database-supervisor",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop watching; a restart under way is abandoned (the database's `stop` ends it)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        up_since = self.clock()
        in_a_row = 0
        while not self._stop.wait(POLL_SECS):
            code = self.database.exit_code()
            if code is None or self._stop.is_set() or self.database.stopping:
                continue
            if self.clock() - up_since >= STABLE_SECS:
                in_a_row = 0
            logger.error("the embedded database (port %d) %s; restarting it on the same data "
                         "dir", self.database.port, describe_exit(code))
            attempts = self._restart(in_a_row)
            if attempts is None:
                return
            in_a_row = attempts
            up_since = self.clock()

    def _restart(self, in_a_row: int) -> int | None:
        """Restart until it answers; the attempts in a row so far, or None once given up."""
        attempt = in_a_row
        while attempt < self.restarts:
            backoff = min(self.first_backoff * 2 ** attempt, MAX_BACKOFF_SECS)
            attempt += 1
            logger.warning("restarting the embedded database in %.0f s (attempt %d of %d)",
                           backoff, attempt, self.restarts)
            if self._stop.wait(backoff):
                return None
            started = self.clock()
            try:
                self.database.restart(self.restart_timeout)
            except EmbeddedDatabaseError as exc:
                if self._stop.is_set() or self.database.stopping:
                    return None
                logger.error("the embedded database did not come back (attempt %d of %d): %s",
                             attempt, self.restarts, str(exc).splitlines()[0])
                continue
            self.restarted += 1
            logger.warning("the embedded database is back on port %d after %.1f s",
                           self.database.port, self.clock() - started)
            return attempt
        self.failure = ("the embedded database could not be restarted (restarts in a row: "
                        f"{self.restarts}); /healthz now answers 503")
        logger.critical(self.failure)
        return None
