"""The Discord bot: a :class:`commands.Bot` (auto-sharded with ``QABOT_SHARDS``) whose
``setup_hook`` loads the cogs.

``create_bot()`` returns it unstarted, so that ``qabot discord``, the tests and anyone
embedding the bot decide how to run it (``bot.run(token)`` or ``await bot.start(token)``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

import discord
from discord.ext import commands

from answering.pipeline import Pipeline
from bot.discord.feedback_store import FeedbackStore
from bot.discord.render import NO_MENTIONS
from bot.discord.stats import AnswerStats
from qabot.settings import Settings
from qabot.types import Answer

log = logging.getLogger(__name__)

COGS = ("bot.discord.cogs.ask", "bot.discord.cogs.admin", "bot.discord.cogs.feedback")


class QabotBot(commands.Bot):
    """The bot; it owns the pipeline, the feedback store and the answer counters."""

    def __init__(
        self, settings: Settings, pipeline: Pipeline | None = None, **options: Any
    ) -> None:
        intents = discord.Intents.default()
        intents.message_content = True  # privileged: enable it in the Developer Portal
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=intents,
            allowed_mentions=NO_MENTIONS,
            help_command=None,
            **options,
        )
        self.settings = settings
        self.pipeline = pipeline or Pipeline(settings)
        self.feedback = FeedbackStore(settings.data_dir / "discord" / "feedback.sqlite3")
        self.stats = AnswerStats()
        self.max_in_flight = settings.discord_max_in_flight
        self.max_waiting = settings.discord_max_waiting
        self.in_flight = 0  # questions being answered now
        self.admitted = 0  # questions accepted and not finished: answering or waiting a turn
        self._slots = asyncio.Semaphore(self.max_in_flight)

    async def setup_hook(self) -> None:
        await asyncio.to_thread(self.pipeline.ensure_seeded)
        for extension in COGS:
            await self.load_extension(extension)
        if self.settings.discord_sync_commands:
            synced = await self.tree.sync()
            log.info("Synced %d application commands", len(synced))

    async def on_ready(self) -> None:
        log.info("Logged in as %s (id %s)", self.user, getattr(self.user, "id", "?"))

    async def on_message(self, message: discord.Message) -> None:
        """Questions are handled by the Ask cog; the bot has no prefix commands."""

    # ---- answering -------------------------------------------------------------------------
    @property
    def busy(self) -> bool:
        """Whether every answering slot and every place in the waiting list is taken."""
        return self.admitted >= self.max_in_flight + self.max_waiting

    def admit(self) -> bool:
        """Reserve a place for one question (release it with :meth:`release`); False if busy.

        Admission is decided when the question arrives, not when its answer starts, so a
        burst cannot slip past the limit while the first answers are still being set up.
        """
        if self.busy:
            return False
        self.admitted += 1
        return True

    def release(self) -> None:
        self.admitted -= 1

    async def answer(
        self,
        question: str,
        history: Sequence[str] = (),
        on_text: Callable[[str], object] | None = None,
    ) -> Answer:
        """Answer off the event loop (at most ``max_in_flight`` at once) and count it.

        With ``on_text``, when the backend streams (``pipeline.streams()``), the worker thread
        reads ``pipeline.ask_stream`` and hands each provisional text delta to ``on_text`` on
        the event loop, in order; all of them are handed over before the verified Answer is
        returned. Otherwise (the offline backend) ``on_text`` is never called.
        """
        loop = asyncio.get_running_loop()
        async with self._slots:
            self.in_flight += 1
            started = time.perf_counter()
            try:
                answer = await asyncio.to_thread(
                    self._answer_in_thread, question, list(history), on_text, loop
                )
            except Exception:
                self.stats.record_failure()
                raise
            finally:
                self.in_flight -= 1
            self.stats.record(time.perf_counter() - started, abstained=answer.abstained)
            return answer

    def _answer_in_thread(
        self,
        question: str,
        history: list[str],
        on_text: Callable[[str], object] | None,
        loop: asyncio.AbstractEventLoop,
    ) -> Answer:
        """The answer, computed in a worker thread; streamed deltas go to ``on_text`` on
        ``loop`` (``call_soon_threadsafe`` keeps them in order, and ahead of the result)."""
        if on_text is None or not pipeline_streams(self.pipeline):
            return self.pipeline.ask(question, history=history)
        reply = self.pipeline.ask_stream(question, history=history)
        for delta in reply:
            loop.call_soon_threadsafe(on_text, delta)
        return reply.result()

    def is_allowed_channel(self, channel: object) -> bool:
        """Whether the channel allowlist (empty: every channel) admits ``channel``."""
        allowed = self.settings.discord_channels
        if channel is None or getattr(channel, "guild", None) is None:  # a DM
            return self.settings.discord_allow_dms
        if not allowed:
            return True
        ids = {getattr(channel, "id", None), getattr(channel, "parent_id", None)}
        return any(i in allowed for i in ids if i is not None)


def pipeline_streams(pipeline: object) -> bool:
    """Whether ``pipeline`` answers as the model writes (a stand-in with only ``ask`` does
    not). Call it off the event loop: it builds the model on first use."""
    streams = getattr(pipeline, "streams", None)
    return callable(streams) and bool(streams())


class ShardedQabotBot(QabotBot, commands.AutoShardedBot):
    """The same bot over several gateway shards (``QABOT_SHARDS``), all in this process."""


def create_bot(settings: Settings | None = None, *, pipeline: Pipeline | None = None) -> QabotBot:
    """Build the bot (unstarted). Without ``settings`` they are read from the environment.

    ``QABOT_SHARDS`` unset gives a plain bot; ``auto`` an auto-sharded one with the shard count
    Discord recommends; a number N an auto-sharded one with N shards.
    """
    settings = settings or Settings()
    if settings.qabot_shards is None:
        return QabotBot(settings, pipeline)
    count = None if settings.qabot_shards == "auto" else int(settings.qabot_shards)
    return ShardedQabotBot(settings, pipeline, shard_count=count)


class RedactSecrets(logging.Filter):
    """Replace the given secrets (the bot token) in every log record with ``[redacted]``."""

    def __init__(self, *secrets: str) -> None:
        super().__init__()
        self.secrets = [s for s in secrets if s]

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(s in message for s in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, "[redacted]")
            record.msg, record.args = message, None
        return True
