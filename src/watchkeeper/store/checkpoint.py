"""Moving a SQLite write-ahead log into the database file, off the commit path.

SQLite's automatic checkpoint runs inside the commit that crosses the threshold, so one ingest
batch in several hundred waited for tens of megabytes to be copied and synced: the p99 batch
latency. :class:`Checkpointer` does it from its own thread and connection instead. A PASSIVE
checkpoint copies what it can without blocking anybody; once the log has passed
``restart_pages``, a RESTART checkpoint finishes the little that the writers added meanwhile
and lets the next writer start the log from its beginning (under a steady write load the log
would otherwise never be complete, and would grow). The connections of the store keep an
automatic checkpoint at a far larger threshold, as a safety net should this thread fall behind.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

__all__ = ["Checkpointer"]

logger = logging.getLogger("watchkeeper.store")


class Checkpointer:
    """A daemon thread that checkpoints the SQLite file ``path`` every ``interval`` seconds.

    A RESTART checkpoint holds the writers back while it waits for the lock and for readers of
    older snapshots, so it waits at most ``busy_ms``; when that is not enough (a long read), it
    gives up and the next round tries again.
    """

    def __init__(
        self, path: str, *, restart_pages: int, interval: float = 0.25, busy_ms: int = 50
    ) -> None:
        self.path = path
        self.restart_pages = restart_pages
        self.interval = interval
        self.busy_ms = busy_ms
        self.checkpoints = 0
        self.restarts = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name="watchkeeper-sqlite-checkpoint", daemon=True
        )

    def __repr__(self) -> str:
        return f"Checkpointer({self.path!r}, restart_pages={self.restart_pages})"

    def start(self) -> Checkpointer:
        self._thread.start()
        return self

    def checkpoint(self, connection: sqlite3.Connection) -> tuple[int, int]:
        """One round: PASSIVE, then RESTART when the log is long; (log pages, pages copied)."""
        _, log, copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.checkpoints += 1
        if log >= self.restart_pages:
            busy, log, copied = connection.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
            self.restarts += not busy
        return int(log), int(copied)

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=0
            )
        except sqlite3.Error as error:
            logger.warning(
                "WAL checkpoints stay in the commits: cannot open %s (%s)", self.path, error
            )
            return
        try:
            connection.execute(f"PRAGMA busy_timeout={self.busy_ms}")
            while not self._stop.wait(self.interval):
                try:
                    self.checkpoint(connection)
                except sqlite3.Error as error:
                    # Busy past the timeout, or a disk problem: the store reports its own errors;
                    # the next round tries again, and the commits' checkpoint is the safety net.
                    logger.warning("WAL checkpoint of %s failed: %s", self.path, error)
        finally:
            connection.close()

    def close(self) -> None:
        """Stop the thread (after the round in progress)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
