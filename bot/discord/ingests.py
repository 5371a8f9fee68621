"""Ingests in the background: ``/ingest`` and ``/reindex`` answer at once and report later.

Each ingest runs on a thread of its own small pool (``DISCORD_INGEST_WORKERS``), never on
the threads that answer questions, so however long it takes, and however many are queued,
answers keep their threads. Two ingests of one collection queue here, on the event loop
(the second waits without holding a thread), and the pipeline's ingest lock also queues
them against ingests in other processes. The admin's message is edited with the progress at
most once per :data:`PROGRESS_INTERVAL`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import discord

log = logging.getLogger(__name__)

#: Seconds between two edits of the progress message: Discord rate-limits edits (about five
#: per five seconds), and an admin watching a long ingest needs no more than this.
PROGRESS_INTERVAL = 2.0

T = TypeVar("T")


class Ingests:
    """The ingest threads and one queue per collection."""

    def __init__(self, workers: int = 1) -> None:
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="qabot-ingest")
        self._queues: dict[str, asyncio.Lock] = {}
        self.tasks: set[asyncio.Task[Any]] = set()

    def busy(self, collection: str) -> bool:
        """Whether an ingest of ``collection`` is running or queued here."""
        lock = self._queues.get(collection)
        return lock is not None and lock.locked()

    async def run(
        self, collection: str, work: Callable[[], T], on_wait: Callable[[], object] = lambda: None
    ) -> T:
        """Run ``work`` on an ingest thread once earlier ingests of ``collection`` are done
        (``on_wait`` is called first if it has to wait)."""
        lock = self._queues.setdefault(collection, asyncio.Lock())
        if lock.locked():
            on_wait()
        async with lock:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, work)

    def start(self, job: Awaitable[Any]) -> asyncio.Task[Any]:
        """Run ``job`` in the background (kept referenced until it is done)."""
        task = asyncio.ensure_future(job)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def wait(self) -> None:
        """Wait for every background job (tests and benchmarks)."""
        while self.tasks:
            await asyncio.wait(set(self.tasks))

    async def close(self) -> None:
        """Stop the queued jobs; an ingest already running finishes on its thread (a killed
        ingest would be repaired by the next one, but there is no need to kill it)."""
        for task in list(self.tasks):
            task.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)


class ProgressMessage:
    """A message showing an ingest's progress, edited at most once per ``interval``.

    ``update(text)`` never waits (the worker thread's progress comes through
    ``call_soon_threadsafe``); a failed edit is logged and the next one tried. After
    :meth:`close` nothing more is edited.
    """

    def __init__(
        self, edit: Callable[[str], Awaitable[object]], interval: float = PROGRESS_INTERVAL
    ) -> None:
        self._edit = edit
        self.interval = interval
        self.text = ""
        self._shown = ""
        self._last = -math.inf
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._requesting = False
        self.failed = False  # an edit failed: the interaction's token may have expired

    def update(self, text: str) -> None:
        if self._closed or text == self.text:
            return
        self.text = text
        self._changed.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._closed:
            await self._changed.wait()
            await asyncio.sleep(max(0.0, self._last + self.interval - time.monotonic()))
            self._changed.clear()
            if self.text == self._shown:
                continue
            text = self.text
            self._requesting = True
            try:
                await self._edit(text)
                self._shown = text
            except discord.HTTPException as exc:
                self.failed = True
                log.info("Could not show the ingest's progress (%s)", exc.status)
            finally:
                self._requesting = False
                self._last = time.monotonic()

    async def close(self) -> None:
        """Stop editing; an edit under way is finished first, so that no progress can land
        after what the caller shows next."""
        self._closed = True
        task = self._task
        if task is not None:
            if not self._requesting:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
