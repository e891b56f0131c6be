"""SQLite WAL checkpoints, off the connection every transaction waits for.

SQLite checkpoints the write-ahead log by itself when a commit finds it over 1,000 pages, inside that
commit, and a checkpoint syncs the file: that commit (and so every transaction queued behind the one
connection) waited tens of milliseconds, at times 200 ms. So the server's connection never checkpoints
(`wal_autocheckpoint=0`), and this thread does, every `INTERVAL_S`, on a connection of its own: a PASSIVE
checkpoint takes no lock that writers or readers wait for. The log only starts over from its beginning
once a checkpoint has caught up with it, and steady writes never let a passive one catch up: past
`MAX_WAL_BYTES` the thread runs a TRUNCATE checkpoint, right after its passive one so that little is left
to copy; writers wait for it (a few milliseconds, in SQLite's busy handler). Run from the server's own
connection instead, it first waited for the thread's checkpoint to end: 80 ms of nothing.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from pathlib import Path

log = logging.getLogger(__name__)
# Often enough that a checkpoint has little to copy and usually finishes between two commits (then the
# next commit starts the log over: it stays a few MiB); measured at 180 commits/s: commit max 2.9 ms
# (1 s: 4.5 ms and a log that never started over; SQLite's own: 31 ms).
INTERVAL_S = 0.1
MAX_WAL_BYTES = 64 * 1024 * 1024  # past it (steady writes never let a passive one finish): TRUNCATE
KEEP_WAL_BYTES = 16 * 1024 * 1024  # journal_size_limit: what the file is cut back to when it starts over


class Checkpointer:
    """A daemon thread checkpointing the WAL of the SQLite file at `path` every `interval_s`."""

    def __init__(self, path: Path, interval_s: float = INTERVAL_S) -> None:
        self._path, self._interval_s = path, interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _wal_bytes(self) -> int:
        try:
            return self._path.with_name(self._path.name + "-wal").stat().st_size
        except OSError:
            return 0

    def _run(self) -> None:
        try:
            # mode=rw: never create the file (a deleted database must stay missing, see Database)
            connection = sqlite3.connect(f"file:{self._path}?mode=rw", uri=True, timeout=1.0)
        except sqlite3.Error as exc:
            log.warning("sqlite checkpoints: cannot open %s (%s); SQLite's own will do", self._path, exc)
            return
        try:
            while not self._stopped.wait(self._interval_s):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    if self._wal_bytes() > MAX_WAL_BYTES:
                        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
                except sqlite3.Error as exc:  # a full disk, a lost file: readiness says so; try again
                    log.debug("sqlite checkpoint failed: %s", exc)
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # what the last second wrote
        except sqlite3.Error:
            pass
        finally:
            connection.close()
