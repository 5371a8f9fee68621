"""Showing an answer in Discord while the model writes it: one message, edited as text arrives.

:class:`LiveMessage` takes the provisional text deltas on the event loop (``add`` never
waits), sends a first message as soon as there is text, then edits it with the text so far,
never more often than :data:`EDIT_INTERVAL`. The verified answer is not its business: once the
answer is done the caller closes it and does the final edit itself (after :meth:`wait_turn`),
with the rendered, checked answer, so provisional text is never what stays on screen.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import discord

from bot.discord.render import MESSAGE_LIMIT, trim

log = logging.getLogger(__name__)

#: Seconds between two requests that show a streaming answer (the first message, its edits,
#: the final edit). Discord rate-limits edits (about five per five seconds in a channel, and a
#: 429 makes discord.py wait); each edit also re-renders the message for everyone reading.
#: One a second stays well inside the limit and still reads as live.
EDIT_INTERVAL = 1.0
#: Shown under provisional text: its claims and citations are not checked yet.
WRITING = "-# Writing… the sources are checked when the answer is complete."
_FENCE = "```"

M = TypeVar("M")


def provisional(text: str) -> str:
    """What a message shows of a partial answer: cut to fit one message, with a note."""
    body = trim(text, MESSAGE_LIMIT - len(WRITING) - len(_FENCE) - 3) or "…"
    if body.count(_FENCE) % 2:  # an unfinished code block would swallow the note
        body += "\n" + _FENCE
    return f"{body}\n\n{WRITING}"


class LiveMessage(Generic[M]):
    """One message showing a streaming answer, sent and edited at most once per ``interval``.

    ``send(content)`` creates the message (returning it), ``edit(message, content)`` changes
    it. A failed request is logged and skipped: the next one shows the text so far. Each
    request starts at least ``interval`` after the previous one finished, so Discord sees
    them at least ``interval`` apart however long each took.
    """

    def __init__(
        self,
        send: Callable[[str], Awaitable[M]],
        edit: Callable[[M, str], Awaitable[object]],
        interval: float = EDIT_INTERVAL,
    ) -> None:
        self._send = send
        self._edit = edit
        self.interval = interval
        self.text = ""
        self.message: M | None = None
        self._shown = ""
        self._last = -math.inf  # when the last request finished (time.monotonic)
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._requesting = False
        self._closed = False

    def add(self, delta: str) -> None:
        """Append a text delta (on the event loop); it is shown with the next edit."""
        if self._closed or not delta:
            return
        self.text += delta
        self._changed.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self._closed:
            await self._changed.wait()
            await asyncio.sleep(max(0.0, self._last + self.interval - time.monotonic()))
            self._changed.clear()
            content = provisional(self.text)
            if content == self._shown:
                continue
            self._requesting = True
            try:
                if self.message is None:
                    self.message = await self._send(content)
                else:
                    await self._edit(self.message, content)
                self._shown = content
            except discord.HTTPException as exc:
                log.info("Could not show the answer so far (%s); trying again later", exc.status)
            finally:
                self._requesting = False
                self._last = time.monotonic()

    async def close(self) -> M | None:
        """Stop showing provisional text (a request under way is finished first); the
        message, or ``None`` if none was sent."""
        self._closed = True
        task = self._task
        if task is not None:
            if not self._requesting:
                task.cancel()  # it is waiting for text or for its turn
            await asyncio.wait({task})
            if not task.cancelled() and task.exception() is not None:
                log.error("Showing the answer so far failed", exc_info=task.exception())
        return self.message

    async def wait_turn(self) -> None:
        """Sleep until the next request may go (``interval`` after the last one)."""
        await asyncio.sleep(max(0.0, self._last + self.interval - time.monotonic()))
