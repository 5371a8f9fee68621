"""Asking: a mention, a DM, ``/ask``, or any message in a thread the bot opened.

A channel question opens a thread (unless turned off); a question in that thread is answered
with the thread's earlier questions and the bot's answers to them as context. Every question
is answered from the knowledge base of the place it is asked in (:mod:`bot.discord.knowledge`).

When the backend streams, the answer is shown as it is written: a first message as soon as
text arrives, edited with the text so far at most once per ``EDIT_INTERVAL``
(:mod:`bot.discord.streaming`), and a final edit with the verified answer, its sources and buttons.
With the offline backend the answer is sent once, when it is ready.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, TypeVar

import discord
from discord import app_commands
from discord.ext import commands

from answering.abstention import ABSTAIN_TEXT
from bot.discord import render
from bot.discord.cogs.feedback import answer_view
from bot.discord.knowledge import Place, Route
from bot.discord.render import NO_MENTIONS
from bot.discord.streaming import LiveMessage
from qabot.errors import QabotError
from qabot.types import Answer, Turn

if TYPE_CHECKING:
    from bot.discord.app import QabotBot

log = logging.getLogger(__name__)

THREAD_NAME_LIMIT = 100
HISTORY_TURNS = 6
BUSY = "I'm answering a lot of questions right now. Please try again in a few seconds."
FAILED = "Something went wrong while answering. Please try again."
HELP = "Ask me a question about the documents, e.g. `@{name} When was the station launched?`"
#: discord.py retries a 500, 502, 504 or 524 itself; a 503, or an error that outlasts its
#: retries, would lose a finished answer, so sending it is tried again after 1 s, then 2 s.
SEND_ATTEMPTS = 3
T = TypeVar("T")


async def send_retrying(send: Callable[[], Awaitable[T]]) -> T:
    """``await send()``, tried again when Discord answers with a server error."""
    for attempt in range(SEND_ATTEMPTS - 1):
        try:
            return await send()
        except discord.DiscordServerError as exc:
            log.info("Discord answered %s; sending again", exc.status)
            await asyncio.sleep(2**attempt)
    return await send()


class TokenBucket:
    """Each user's allowance of questions: ``burst`` in a row, then one per ``seconds``.

    A fixed pause after every question refuses the quick follow-up that a conversation
    needs; a bucket lets a few through at once and still caps what one user can ask over
    time (on average one per ``seconds``).
    """

    def __init__(self, seconds: float, burst: int = 3) -> None:
        self.seconds = seconds
        self.burst = max(1, burst)
        self._buckets: dict[int, tuple[float, float]] = {}  # user -> (tokens, when)

    def retry_after(self, user_id: int) -> float:
        """Seconds ``user_id`` still has to wait (0 when they may ask), taking a token."""
        if self.seconds <= 0:
            return 0.0
        now = time.monotonic()
        tokens, when = self._buckets.get(user_id, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - when) / self.seconds)
        if tokens < 1.0:
            self._buckets[user_id] = (tokens, now)
            return (1.0 - tokens) * self.seconds
        self._buckets[user_id] = (tokens - 1.0, now)
        if len(self._buckets) > 10_000:  # forget users whose bucket has filled up again
            full = self.burst * self.seconds
            self._buckets = {u: b for u, b in self._buckets.items() if now - b[1] < full}
        return 0.0


class ThreadMemory:
    """The turns (question and answer) of each thread the bot opened, and who asked in it
    (the most recent threads kept)."""

    def __init__(self, max_threads: int = 1000) -> None:
        self.max_threads = max_threads
        self._threads: OrderedDict[int, list[Turn]] = OrderedDict()
        self._askers: dict[int, set[int]] = {}

    def history(self, thread_id: int) -> list[Turn]:
        return list(self._threads.get(thread_id, ()))[-HISTORY_TURNS:]

    def knows(self, thread_id: int) -> bool:
        return thread_id in self._threads

    def asked(self, thread_id: int, user_id: int) -> bool:
        """Whether ``user_id`` asked in this thread before (it is their conversation)."""
        return user_id in self._askers.get(thread_id, ())

    def add(self, thread_id: int, turn: Turn, user_id: int | None = None) -> None:
        self._threads.setdefault(thread_id, []).append(turn)
        if user_id is not None:
            self._askers.setdefault(thread_id, set()).add(user_id)
        self._threads.move_to_end(thread_id)
        while len(self._threads) > self.max_threads:
            gone, _ = self._threads.popitem(last=False)
            self._askers.pop(gone, None)


def strip_mentions(text: str, user_id: int) -> str:
    """The question without the bot's own mention(s)."""
    return re.sub(rf"<@!?{user_id}>", " ", text).strip()


def cooldown_text(wait: float) -> str:
    return f"Give me a moment: you can ask again in {max(1, round(wait))} s."


#: The bot's messages in a thread that are not answers (read back after a restart).
NOT_ANSWERS = ("Give me a moment:", BUSY, FAILED, "No documents yet", ABSTAIN_TEXT)


def answer_of(content: str) -> str:
    """The answer text of one of the bot's messages: its notice lines (``-# ...``) left out,
    "" for a message that is not an answer (a refusal, an abstention)."""
    if content.startswith(NOT_ANSWERS):
        return ""
    lines = [line for line in content.splitlines() if not line.startswith("-# ")]
    return "\n".join(lines).strip()


def turn_of(question: str, answer: Answer | None) -> Turn:
    shown = "" if answer is None or answer.abstained else answer.text
    return Turn(question, shown)


class Ask(commands.Cog):
    """Answers questions from mentions, DMs, bot-opened threads and ``/ask``."""

    def __init__(self, bot: QabotBot) -> None:
        self.bot = bot
        self.cooldown = TokenBucket(
            bot.settings.discord_cooldown_seconds, bot.settings.discord_cooldown_burst
        )
        self.threads = ThreadMemory()
        self._answering: dict[int, int] = {}  # user id -> their questions being answered

    # ---- messages --------------------------------------------------------------------------
    @commands.Cog.listener()
    async def on_message(self, message: discord.Message) -> None:
        me = self.bot.user
        if me is None or message.author.bot or message.webhook_id is not None:
            return
        channel = message.channel
        in_our_thread = isinstance(channel, discord.Thread) and channel.owner_id == me.id
        is_dm = message.guild is None
        # Not ``me.mentioned_in``: that is true for any @everyone message.
        addressed = is_dm or in_our_thread or any(u.id == me.id for u in message.mentions)
        if not addressed:
            return
        if not self.bot.is_allowed_channel(channel):
            return
        question = strip_mentions(message.content, me.id)
        if not question:
            await message.reply(HELP.format(name=me.name), allowed_mentions=NO_MENTIONS)
            return
        history = await self._thread_history(channel, message) if in_our_thread else []
        user = message.author.id
        follow_up = in_our_thread and self.threads.asked(channel.id, user)
        refusal = self._admit(user, follow_up)
        if refusal:
            await message.reply(refusal, allowed_mentions=NO_MENTIONS)
            return
        try:
            await self._answer_message(message, question, history, in_our_thread)
        finally:
            self._done(user)

    async def _answer_message(
        self, message: discord.Message, question: str, history: list[Turn], in_our_thread: bool
    ) -> None:
        channel = message.channel
        route = self.bot.knowledge.route(Place.of(channel))
        target: discord.abc.Messageable = channel
        reply_to: discord.Message | None = message
        if (
            self.bot.settings.discord_open_threads
            and isinstance(channel, discord.TextChannel)
            and not in_our_thread
        ):
            thread = await self._open_thread(message, question)
            if thread is not None:
                target, reply_to = thread, None

        async def send_first(content: str) -> discord.Message:
            if reply_to is not None:
                return await reply_to.reply(
                    content, mention_author=False, allowed_mentions=NO_MENTIONS
                )
            return await target.send(content, allowed_mentions=NO_MENTIONS)

        live: LiveMessage[discord.Message] = LiveMessage(
            send_first, lambda message, content: message.edit(**_edit_kwargs(content))
        )
        try:
            async with target.typing():
                answer, error = await self._answer(question, history, route, live)
        finally:
            shown = await live.close()  # no provisional edit after this, even if cancelled
        if isinstance(target, discord.Thread):
            self.threads.add(target.id, turn_of(question, answer), message.author.id)
        if shown is not None:
            await live.wait_turn()
        if answer is None:
            if shown is not None:
                await send_retrying(lambda: shown.edit(**_edit_kwargs(error)))
            else:
                await self._send_text(target, error, reply_to)
            return
        await self._send_answer(target, answer, reply_to, shown)

    async def _open_thread(self, message: discord.Message, question: str) -> discord.Thread | None:
        name = render.trim(" ".join(question.split()), THREAD_NAME_LIMIT) or "Question"
        try:
            return await message.create_thread(name=name, auto_archive_duration=1440)
        except discord.HTTPException as exc:
            log.info("Could not open a thread (%s); answering in the channel", exc.status)
            return None

    # ---- /ask -------------------------------------------------------------------------------
    @app_commands.command(name="ask", description="Ask a question about the documents.")
    @app_commands.describe(question="Your question")
    async def ask(
        self, interaction: discord.Interaction, question: app_commands.Range[str, 1, 2000]
    ) -> None:
        if not self.bot.is_allowed_channel(interaction.channel):
            await interaction.response.send_message(
                "I don't answer questions in this channel.",
                ephemeral=True,
                allowed_mentions=NO_MENTIONS,
            )
            return
        channel = interaction.channel
        in_our_thread = (
            isinstance(channel, discord.Thread)
            and self.bot.user is not None
            and channel.owner_id == self.bot.user.id
        )
        user = interaction.user.id
        follow_up = in_our_thread and channel is not None and self.threads.asked(channel.id, user)
        refusal = self._admit(user, follow_up)
        if refusal:
            await interaction.response.send_message(
                refusal, ephemeral=True, allowed_mentions=NO_MENTIONS
            )
            return
        try:
            await self._answer_interaction(interaction, question, in_our_thread)
        finally:
            self._done(user)

    async def _answer_interaction(
        self, interaction: discord.Interaction, question: str, in_our_thread: bool
    ) -> None:
        await interaction.response.defer(thinking=True)
        channel = interaction.channel
        route = self.bot.knowledge.route(Place.of_interaction(interaction))
        history = await self._thread_history(channel) if in_our_thread else []

        # Streamed text goes into the deferred response ("is thinking..."), edited in place.
        async def show(content: str) -> discord.InteractionMessage:
            return await interaction.edit_original_response(**_edit_kwargs(content))

        live: LiveMessage[discord.InteractionMessage] = LiveMessage(
            show, lambda _message, content: show(content)
        )
        try:
            answer, error = await self._answer(question, history, route, live)
        finally:
            shown = await live.close()
        if in_our_thread and channel is not None:
            self.threads.add(channel.id, turn_of(question, answer), interaction.user.id)
        if shown is not None:
            await live.wait_turn()
        if answer is None:
            if shown is not None:
                await send_retrying(lambda: show(error))
            else:
                await interaction.followup.send(error, allowed_mentions=NO_MENTIONS)
            return
        rendered = render.render_answer(answer)
        view = await self._view(answer)
        for i, part in enumerate(rendered.contents):
            last = i == len(rendered.contents) - 1
            embed = rendered.embed if last and rendered.embed else discord.utils.MISSING
            if i == 0 and shown is not None:  # the final edit: the verified answer
                await send_retrying(
                    partial(
                        interaction.edit_original_response,
                        **_edit_kwargs(part),
                        embed=embed,
                        view=view if last else discord.utils.MISSING,
                    )
                )
                continue
            await send_retrying(
                partial(
                    interaction.followup.send,
                    part,
                    embed=embed,
                    view=view if last else discord.utils.MISSING,
                    allowed_mentions=NO_MENTIONS,
                )
            )

    # ---- shared -----------------------------------------------------------------------------
    def _admit(self, user_id: int, follow_up: bool = False) -> str | None:
        """Take a place for this question (``None``), or say why it is not answered now.

        A follow-up in a thread where the user asked before is not refused by the cooldown
        while none of their questions is being answered: that is a conversation, and one
        question at a time cannot flood the bot. A ``None`` must be paired with
        ``self._done(user_id)`` once the question is done.
        """
        if not self.bot.admit():
            return BUSY
        exempt = follow_up and not self._answering.get(user_id)
        wait = 0.0 if exempt else self.cooldown.retry_after(user_id)
        if wait > 0:
            self.bot.release()
            return cooldown_text(wait)
        self._answering[user_id] = self._answering.get(user_id, 0) + 1
        return None

    def _done(self, user_id: int) -> None:
        self.bot.release()
        left = self._answering.get(user_id, 1) - 1
        if left > 0:
            self._answering[user_id] = left
        else:
            self._answering.pop(user_id, None)

    async def _thread_history(
        self, thread: object, current: discord.Message | None = None
    ) -> list[Turn]:
        """The earlier turns of a bot-opened thread: remembered, or read back from Discord
        (after a restart): the questions from the thread's starter message and its members'
        messages, the answers from the bot's own messages that follow each."""
        if not isinstance(thread, discord.Thread) or self.bot.user is None:
            return []
        if self.threads.knows(thread.id):
            return self.threads.history(thread.id)
        me = self.bot.user.id
        turns: list[tuple[str, list[str], int]] = []  # question, answer parts, asker
        try:
            starter = thread.starter_message
            if starter is None and isinstance(thread.parent, discord.TextChannel):
                starter = await thread.parent.fetch_message(thread.id)
            if starter is not None:
                turns.append((strip_mentions(starter.content, me), [], starter.author.id))
            async for earlier in thread.history(limit=50, before=current, oldest_first=True):
                if earlier.author.id == me:
                    if turns and earlier.content:
                        turns[-1][1].append(answer_of(earlier.content))
                elif not earlier.author.bot and earlier.content:
                    turns.append((strip_mentions(earlier.content, me), [], earlier.author.id))
        except discord.HTTPException as exc:
            log.info("Could not read the thread's history (%s)", exc.status)
        for question, parts, asker in turns:
            if question:
                answer = "\n".join(p for p in parts if p)
                self.threads.add(thread.id, Turn(question, answer), asker)
        return self.threads.history(thread.id)

    async def _answer(
        self,
        question: str,
        history: list[Turn],
        route: Route | None = None,
        live: LiveMessage | None = None,
    ) -> tuple[Answer | None, str]:
        """The verified answer, or ``None`` and what to say instead; streamed text, if the
        backend streams, goes to ``live`` meanwhile."""
        on_text = live.add if live is not None else None
        try:
            return await self.bot.answer(question, history, on_text=on_text, route=route), ""
        except QabotError as exc:
            return None, str(exc)
        except Exception:
            log.exception("Answering failed")
            return None, FAILED

    async def _view(self, answer: Answer) -> discord.ui.View:
        answer_id = await asyncio.to_thread(self.bot.feedback.save_answer, answer)
        return answer_view(answer_id, sources=bool(answer.citations) and not answer.abstained)

    async def _send_answer(
        self,
        target: discord.abc.Messageable,
        answer: Answer,
        reply_to: discord.Message | None,
        shown: discord.Message | None = None,
    ) -> None:
        """Send the rendered answer; with ``shown`` (the message that showed it streaming)
        its first part is the final edit of that message and the rest are sent after it."""
        rendered = render.render_answer(answer)
        view = await self._view(answer)
        for i, part in enumerate(rendered.contents):
            last = i == len(rendered.contents) - 1
            kwargs: dict = {"allowed_mentions": NO_MENTIONS}
            if last:
                kwargs["view"] = view
                if rendered.embed is not None:
                    kwargs["embed"] = rendered.embed
            if i == 0 and shown is not None:
                try:
                    await send_retrying(partial(shown.edit, content=part, **kwargs))
                    continue
                except discord.NotFound:  # deleted while it streamed: send the answer anew
                    log.info("The streamed message is gone; sending the answer again")
            if i == 0 and reply_to is not None:
                await send_retrying(partial(reply_to.reply, part, mention_author=False, **kwargs))
            else:
                await send_retrying(partial(target.send, part, **kwargs))

    async def _send_text(
        self, target: discord.abc.Messageable, text: str, reply_to: discord.Message | None
    ) -> None:
        if reply_to is not None:
            await send_retrying(
                lambda: reply_to.reply(text, mention_author=False, allowed_mentions=NO_MENTIONS)
            )
        else:
            await send_retrying(lambda: target.send(text, allowed_mentions=NO_MENTIONS))


def _edit_kwargs(content: str) -> dict:
    """Content for an edit that pings nobody (``allowed_mentions`` as in every send)."""
    return {"content": content, "allowed_mentions": NO_MENTIONS}


async def setup(bot: QabotBot) -> None:
    await bot.add_cog(Ask(bot))
