"""SQLite WAL checkpoints, off the connection every transaction waits for.

SQLite checkpoints the write-ahead log by itself when a commit finds it over 1,000 pages, inside that
commit, and a checkpoint syncs the file: that commit (and so every transaction queued behind the one
connection) waited tens of milliseconds, at times 200 ms. So the server's connection never checkpoints
(`wal_autocheckpoint=0`), and this thread does, every `INTERVAL_S`, on a connection of its own: a PASSIVE
checkpoint takes no lock that writers or readers wait for.

The log only starts over from its beginning when a writer finds everything in it checkpointed, and steady
writes never let a passive checkpoint catch up (commits land during its sync). So once the log holds
`MAX_WAL_BYTES` the thread runs a RESTART checkpoint right after its passive one: it holds writers off
while it copies what little is left and syncs, and the next commit writes the log from its start (and
cuts the file back to `KEEP_WAL_BYTES`). Measured under steady writes (docs/performance.md): a TRUNCATE
past 64 MiB held every commit 110-180 ms, mostly for shortening a 64 MiB file and for its own busy
handler, which sleeps 1, 2, 5, 10 ms ... between tries while writers wait on it; this RESTART, tried
without a busy handler every half millisecond, past 8 MiB: 8-20 ms. Run from the server's own connection
instead, a checkpoint first waited for the thread's to end: 80 ms of nothing.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)
# Often enough that a checkpoint has little to copy and usually finishes between two commits (then the
# next commit starts the log over: it stays a few MiB); measured at 180 commits/s: commit max 2.9 ms
# (1 s: 4.5 ms and a log that never started over; SQLite's own: 31 ms).
INTERVAL_S = 0.1
MAX_WAL_BYTES = 8 * 1024 * 1024  # a log this long (steady writes never let a passive one finish): RESTART
KEEP_WAL_BYTES = MAX_WAL_BYTES  # journal_size_limit: what the file is cut back to when it starts over
RESTART_TRY_S = 0.0005  # between two tries of the RESTART (it gives way to a writer at once)
RESTART_TRIES = 200


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

    def _run(self) -> None:
        try:
            # mode=rw: never create the file (a deleted database must stay missing, see Database).
            # timeout=0: no busy handler; the RESTART retries on its own (see the module's docstring).
            connection = sqlite3.connect(f"file:{self._path}?mode=rw", uri=True, timeout=0)
            page_bytes = int(connection.execute("PRAGMA page_size").fetchone()[0])
        except sqlite3.Error as exc:
            log.warning("sqlite checkpoints: cannot open %s (%s); SQLite's own will do", self._path, exc)
            return
        try:
            while not self._stopped.wait(self._interval_s):
                try:
                    _busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                    if frames * page_bytes >= MAX_WAL_BYTES:
                        _restart(connection)
                except sqlite3.Error as exc:  # a full disk, a lost file: readiness says so; try again
                    log.debug("sqlite checkpoint failed: %s", exc)
            connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()  # what the last second wrote
        except sqlite3.Error:
            pass
        finally:
            connection.close()


def _restart(connection: sqlite3.Connection) -> None:
    """Checkpoint everything and have the next writer start the log over; writers or readers that keep it
    from finishing for `RESTART_TRIES` tries leave it to the next interval."""
    for _ in range(RESTART_TRIES):
        (busy, _frames, _copied) = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
        if not busy:
            return
        time.sleep(RESTART_TRY_S)
    log.debug("sqlite checkpoint: the log could not start over this time; trying at the next interval")
