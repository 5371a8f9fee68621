"""One ingest of a collection at a time, across threads and processes, and a way for readers
to see that one is running without waiting for it.

An exclusive ``flock`` on ``<data dir>/<collection>.ingest.lock`` is held for the whole
ingest. ``flock`` locks belong to an open file, so two threads of one process exclude each
other just as two processes do, and the kernel drops the lock when its holder dies: a killed
ingest never leaves a stale lock behind (a pid file would). Readers only *try* a shared lock
(non-blocking) to learn whether an ingest is under way; they never wait on it.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: ingests queue within this process only
    fcntl = None  # type: ignore[assignment]

from qabot.errors import StoreError

_local_locks: dict[Path, threading.Lock] = {}
_local_guard = threading.Lock()


class IngestLock:
    """The ingest lock of one collection (see the module docstring)."""

    def __init__(self, data_dir: Path, collection: str) -> None:
        self.path = data_dir / f"{collection}.ingest.lock"
        with _local_guard:
            self._local = _local_locks.setdefault(self.path, threading.Lock())

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Wait for earlier ingests of the collection (any process), then hold the lock."""
        if fcntl is None:  # pragma: no cover
            with self._local:
                yield
            return
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StoreError(
                f"Cannot write to the data directory {self.path.parent}: {exc.strerror}."
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def running(self) -> bool:
        """Whether an ingest of the collection holds the lock now (never waits)."""
        if fcntl is None:  # pragma: no cover
            return self._local.locked()
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False  # never ingested here (or unreadable: nothing to wait for)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)
