"""The Discord bot: a :class:`commands.Bot` (auto-sharded with ``QABOT_SHARDS``) whose
``setup_hook`` loads the cogs.

``create_bot()`` returns it unstarted, so that ``qabot discord``, the tests and anyone
embedding the bot decide how to run it (``bot.run(token)`` or ``await bot.start(token)``).
It answers each server from that server's knowledge base (:mod:`bot.discord.knowledge`), and
installs the token's redaction in every log record itself (:func:`redact_in_logs`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import traceback
from collections.abc import Callable, Sequence
from typing import Any

import discord
from discord.ext import commands

from answering.pipeline import Pipeline
from bot.discord.feedback_store import FeedbackStore
from bot.discord.ingests import Ingests
from bot.discord.kb_store import KnowledgeStore
from bot.discord.knowledge import Knowledge, KnowledgeBases, Place, Route, SingleKnowledgeBase
from bot.discord.render import NO_MENTIONS
from bot.discord.stats import AnswerStats
from qabot.errors import QabotError
from qabot.settings import Settings
from qabot.types import Answer, Turn

#: What a server whose knowledge base has no documents yet is told.
EMPTY = "No documents yet: an admin can add some with /ingest."
EMPTY_SHARED = "No documents yet."


_DM = Place(None)


class EmptyKnowledgeBase(QabotError):
    """The collection that would answer has no documents."""


log = logging.getLogger(__name__)

COGS = ("bot.discord.cogs.ask", "bot.discord.cogs.admin", "bot.discord.cogs.feedback")


class QabotBot(commands.Bot):
    """The bot; it owns the knowledge bases, the feedback store and the answer counters.

    With ``pipeline``, every server, channel and DM is answered from that one pipeline (and
    any server's admins may change it); without, each server has its own knowledge base.
    """

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
        state = settings.data_dir / "discord"
        self.knowledge: Knowledge = (
            SingleKnowledgeBase(pipeline)
            if pipeline is not None
            else KnowledgeBases(
                settings, KnowledgeStore(state / "knowledge.sqlite3"), None, self._guild_of
            )
        )
        self.feedback = FeedbackStore(state / "feedback.sqlite3")
        self.ingests = Ingests(settings.discord_ingest_workers)
        self.stats = AnswerStats()  # every knowledge base's questions
        self.kb_stats: dict[str, AnswerStats] = {}
        self.max_in_flight = settings.discord_max_in_flight
        self.max_waiting = settings.discord_max_waiting
        self.in_flight = 0  # questions being answered now
        self.admitted = 0  # questions accepted and not finished: answering or waiting a turn
        self._slots = asyncio.Semaphore(self.max_in_flight)

    @property
    def pipeline(self) -> Any:
        """The pipeline of direct messages (the one given to ``create_bot``, if one was)."""
        return self.knowledge.pipeline(self.knowledge.route(_DM).collection)

    def _guild_of(self, channel_id: int) -> int | None:
        channel = self.get_channel(channel_id)
        guild = getattr(channel, "guild", None)
        return getattr(guild, "id", None)

    def stats_for(self, collection: str) -> AnswerStats:
        """The answer counters of one knowledge base."""
        return self.kb_stats.setdefault(collection, AnswerStats())

    async def login(self, token: str) -> None:
        redact_in_logs(token)  # whoever starts the bot, with whatever token
        await super().login(token)

    async def close(self) -> None:
        await self.ingests.close()
        await super().close()

    async def setup_hook(self) -> None:
        await asyncio.to_thread(self.knowledge.setup)
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
        history: Sequence[str | Turn] = (),
        on_text: Callable[[str], object] | None = None,
        route: Route | None = None,
    ) -> Answer:
        """Answer from ``route``'s collection (default: the DMs') off the event loop (at most
        ``max_in_flight`` at once) and count it; :class:`EmptyKnowledgeBase` when it has no
        documents.

        With ``on_text``, when the backend streams (``pipeline.streams()``), the worker thread
        reads ``pipeline.ask_stream`` and hands each provisional text delta to ``on_text`` on
        the event loop, in order; all of them are handed over before the verified Answer is
        returned. Otherwise (the offline backend) ``on_text`` is never called.
        """
        loop = asyncio.get_running_loop()
        route = route or self.knowledge.route(_DM)
        stats = self.stats_for(route.collection)
        async with self._slots:
            self.in_flight += 1
            started = time.perf_counter()
            try:
                answer = await asyncio.to_thread(
                    self._answer_in_thread, question, list(history), on_text, loop, route
                )
            except EmptyKnowledgeBase:
                raise
            except Exception:
                self.stats.record_failure()
                stats.record_failure()
                raise
            finally:
                self.in_flight -= 1
            took = time.perf_counter() - started
            self.stats.record(took, abstained=answer.abstained)
            stats.record(took, abstained=answer.abstained)
            return answer

    def _answer_in_thread(
        self,
        question: str,
        history: list[str | Turn],
        on_text: Callable[[str], object] | None,
        loop: asyncio.AbstractEventLoop,
        route: Route,
    ) -> Answer:
        """The answer, computed in a worker thread; streamed deltas go to ``on_text`` on
        ``loop`` (``call_soon_threadsafe`` keeps them in order, and ahead of the result)."""
        if self.knowledge.is_empty(route.collection):
            raise EmptyKnowledgeBase(EMPTY if route.writable else EMPTY_SHARED)
        pipeline = self.knowledge.pipeline(route.collection)
        if on_text is None or not pipeline_streams(pipeline):
            return pipeline.ask(question, history=history)
        reply = pipeline.ask_stream(question, history=history)
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
    if settings.discord_token is not None:
        redact_in_logs(settings.discord_token.get_secret_value())
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


_redacted: set[str] = set()
_base_factory: Callable[..., logging.LogRecord] | None = None


def redact_in_logs(*secrets: str) -> None:
    """Replace ``secrets`` with ``[redacted]`` in every log record of this process, whatever
    logger made it and whichever handlers (added before or after) receive it.

    A filter on a handler sees only that handler's records, and a logger's filter not those
    of its children; the record factory sees every record as it is made, so the bot installs
    the redaction there itself and an embedding application cannot forget it. Tracebacks
    are formatted and redacted too when they hold a secret.
    """
    global _base_factory
    _redacted.update(s.strip() for s in secrets if s and s.strip())
    if _base_factory is not None:
        return
    _base_factory = logging.getLogRecordFactory()
    base = _base_factory
    redactor = RedactSecrets()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        redactor.secrets = list(_redacted)
        try:
            redactor.filter(record)
        except Exception:  # a bad format string: logging reports it when it handles the record
            return record
        if record.exc_info and record.exc_info[1] is not None:
            text = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            if any(secret in text for secret in redactor.secrets):
                for secret in redactor.secrets:
                    text = text.replace(secret, "[redacted]")
                record.exc_info, record.exc_text = None, text
        return record

    logging.setLogRecordFactory(factory)
