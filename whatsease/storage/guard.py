"""Stop the embedded database for a server that died without stopping it.

The launcher starts this file beside the database: ``python guard.py
DATABASE_PID SERVER_PID GRACE_SECONDS``. When the server dies, even by SIGKILL,
Linux sends SIGTERM both to the database (its own parent-death signal) and to
this guard. The database then shuts down cleanly, checkpointing everything it
has acknowledged; if it has not exited within the grace period (SecantusDB's
shutdown can wedge when a connection was cut mid-operation), the guard kills
it, so the data directory is never held by an orphan. The guard exits as soon
as the database does, whoever stopped it.

Standard library only, so that it starts in a few milliseconds.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import select
import signal
import sys

PR_SET_PDEATHSIG = 1  # prctl's option: a signal for when our parent dies


def _watch(database: int, server: int, grace: float) -> str | None:
    """Wait; what to put in the database's log, or None if all went as it should."""
    try:
        pidfd = os.pidfd_open(database)
    except ProcessLookupError:
        return None
    except (OSError, AttributeError) as exc:  # Linux before 5.3, or not Linux
        return f"cannot watch the database ({exc}); relying on its parent-death signal"
    # SIGTERM from the kernel when the server dies: noted on a pipe, not fatal.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C is for the server
    signal.set_wakeup_fd(wake_w)
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() == server:  # else the server died before the request took effect
        ready, _, _ = select.select([pidfd, wake_r], [], [])
        if pidfd in ready:  # stopped by the server
            return None
    ready, _, _ = select.select([pidfd], [], [], grace)
    if ready:  # the server died and the database stopped by itself
        return None
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    return (f"the server died and the database (pid {database}) was still running "
            f"{grace:g} s later; killed it")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    try:
        database, server, grace = int(args[0]), int(args[1]), float(args[2])
    except (IndexError, ValueError):
        print("usage: guard.py DATABASE_PID SERVER_PID GRACE_SECONDS",
              file=sys.stderr)
        return 2
    said = _watch(database, server, grace)
    if said is not None:
        print(f"whatsease guard: {said}", file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
