"""Streaming answers in Discord: the real discord.py client against the fake Discord, with a
Pipeline answering through ``QABOT_LLM=openai:...`` from the fake model server, which writes
its reply a piece at a time (``piece_delay``) so that a reply spans more than one edit
interval.

What is checked: one message is sent as soon as text arrives and edited with the text so far,
never twice within ~0.9 s; the final edit carries the verified answer with its Sources embed
and buttons; an answer whose quote fails the checks ends as the offline answer; the offline
backend still sends one message and edits nothing.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import discord
import discord.gateway
import discord.http
import pytest

from answering.pipeline import Pipeline
from bot.discord import render
from bot.discord.streaming import EDIT_INTERVAL, WRITING, LiveMessage, provisional
from qabot.types import Answer
from tests.fake_discord import FakeDiscord, Request
from tests.fake_discord.harness import all_released, custom_ids, running_bot
from tests.llm_servers import FakeLLM, cite_first_sentence, settings_for

QUESTION = "When does Russia plan to leave the ISS?"
MIN_GAP = 0.9  # seconds: EDIT_INTERVAL (1 s) less some leeway for the clock
#: Seconds per 12-character piece of the model's reply: the visible answer (~200 characters,
#: 17 pieces) then takes about 2 s to arrive, twice the edit interval.
PIECE_DELAY = 0.12
#: A quote the checks cannot find in any chunk: the answer built on it must never be shown.
UNSUPPORTED = (
    "Russia will leave the International Space Station in 2031, when its own orbital station "
    "is complete, according to a statement by the agency's director [1].\n\n"
    'Quotes:\n[1] "Russia will leave the station in 2031"'
)


def short_quote(messages: list[dict[str, str]]) -> str:
    """The well-behaved model's answer, quoting only its last five words (so that the
    ``Quotes:`` section, which is never shown while streaming, takes little time)."""
    reply = cite_first_sentence(messages)
    body, found, quote_line = reply.partition("\n\nQuotes:\n")
    if not found:
        return reply
    n, _, quote = quote_line.partition(" ")
    return f'{body}\n\nQuotes:\n{n} "{" ".join(quote.strip(chr(34)).split()[-5:])}"'


def long_answer(messages: list[dict[str, str]]) -> str:
    """A supported answer two Discord messages long: the sentence, cited, 20 times."""
    body, _, quotes = short_quote(messages).partition("\n\nQuotes:\n")
    return "\n\n".join([body] * 20) + "\n\nQuotes:\n" + quotes


# ---- fixtures ------------------------------------------------------------------------------
@pytest.fixture
def model(server: FakeLLM, fresh: None) -> FakeLLM:
    """The shared fake model server (tests/conftest.py), reset, answering slowly."""
    server.responder = short_quote
    server.piece_delay = PIECE_DELAY
    return server


@pytest.fixture(scope="module")
def llm_pipeline(seeds_pipeline: Pipeline, server: FakeLLM) -> Pipeline:
    """``QABOT_LLM=openai:fake-gpt`` at the fake model server, sharing the seeds' store."""
    settings = settings_for("openai", server.url, qabot_llm_timeout=30).model_copy(
        update={"qabot_data_dir": seeds_pipeline.settings.data_dir}
    )
    return Pipeline(settings, store=seeds_pipeline.store)


# ---- helpers -------------------------------------------------------------------------------
def is_final(request: Request) -> bool:
    """The edit or post that carries an answer's buttons (the last part of the answer)."""
    return request.sends_message and bool(custom_ids(request))


def gaps(requests: list[Request]) -> list[float]:
    return [b.at - a.at for a, b in zip(requests, requests[1:], strict=False)]


def provisional_text(request: Request) -> str:
    assert request.content.endswith("\n\n" + WRITING), request.content
    return request.content.removesuffix("\n\n" + WRITING)


def assert_streamed(versions: list[Request]) -> list[str]:
    """``versions`` (a message's creation, then its edits) showed growing provisional text
    before the final edit, each request at least MIN_GAP after the one before. Returns the
    provisional texts."""
    *streamed, final = versions
    assert len(streamed) >= 2, "the message was not edited while the text arrived"
    texts = [provisional_text(r) for r in streamed]
    for before, after in zip(texts, texts[1:], strict=False):
        assert len(after) > len(before) and after.startswith(before.rstrip("…"))
    assert all(len(r.content) <= render.MESSAGE_LIMIT for r in versions)
    assert min(gaps(versions)) >= MIN_GAP, gaps(versions)
    assert WRITING not in final.content
    return texts


async def expected(pipeline: Pipeline) -> Answer:
    """The verified answer the pipeline gives (the model's reply is the same every time)."""
    return await asyncio.to_thread(pipeline.ask, QUESTION)


# ---- streaming -----------------------------------------------------------------------------
async def test_mention_is_streamed_into_one_message_then_the_verified_answer(
    fake: FakeDiscord, model: FakeLLM, llm_pipeline: Pipeline, tmp_path: Path
) -> None:
    assert EDIT_INTERVAL >= MIN_GAP  # the gap checked below is the interval the bot keeps
    async with running_bot(fake, llm_pipeline, tmp_path) as bot:
        question = await fake.say(QUESTION)
        thread_id = question["id"]  # the question opened a thread
        (first,) = await fake.wait_for(
            lambda r: r.method == "POST" and r.path == f"/channels/{thread_id}/messages"
        )
        assert bot.in_flight == 1  # shown while the answer is still being written
        assert first.content.endswith(WRITING)
        (final,) = await fake.wait_for(is_final)
        await all_released(bot)
        assert (bot.stats.answered, bot.stats.failed) == (1, 0)

    versions = fake.versions(first.message_id)
    assert versions[0] is first and versions[-1] is final
    assert all(r.method == "PATCH" for r in versions[1:])
    texts = assert_streamed(versions)
    answer = await expected(llm_pipeline)
    assert answer.backend == "openai:fake-gpt" and answer.citations
    # the text so far, as it arrived: the start of what was then verified
    assert all(answer.text.startswith(t) for t in texts) and len(texts[0]) < len(answer.text)
    rendered = render.render_answer(answer)
    assert final.content == rendered.contents[0] == answer.text
    (embed,) = final.data["embeds"]
    assert embed["title"] == "Sources" and "2028" in embed["fields"][0]["value"]
    assert [i.split(":")[1] for i in custom_ids(final)] == ["src", "vote", "vote"]
    # one message in the thread, edited: nothing else was posted there
    posts = [r for r in fake.requests if r.method == "POST" and r.message_id]
    assert posts == [first]
    assert fake.messages[first.message_id]["content"] == answer.text


async def test_slash_ask_streams_into_the_deferred_response(
    fake: FakeDiscord, model: FakeLLM, llm_pipeline: Pipeline, tmp_path: Path
) -> None:
    async with running_bot(fake, llm_pipeline, tmp_path) as bot:
        interaction = await fake.slash("ask", {"question": QUESTION})
        (final,) = await fake.wait_for(is_final)
        await all_released(bot)

    callback, *edits = fake.for_interaction(interaction)
    assert callback.body["type"] == 5  # deferred: "qabot is thinking..."
    assert edits[-1] is final
    assert all(r.method == "PATCH" and r.path.endswith("/messages/@original") for r in edits)
    assert all(r.message_id == callback.message_id for r in edits)  # the original, edited
    assert_streamed(edits)
    answer = await expected(llm_pipeline)
    assert final.content == answer.text
    assert final.data["embeds"][0]["title"] == "Sources"
    assert len(custom_ids(final)) == 3
    original = fake.messages[callback.message_id]
    assert original["content"] == answer.text and not original["flags"] & (1 << 7)


async def test_unverified_answer_ends_as_the_offline_answer(
    fake: FakeDiscord,
    model: FakeLLM,
    llm_pipeline: Pipeline,
    seeds_pipeline: Pipeline,
    tmp_path: Path,
) -> None:
    model.responder = lambda messages: UNSUPPORTED
    async with running_bot(fake, llm_pipeline, tmp_path) as bot:
        question = await fake.direct_message(QUESTION)
        (final,) = await fake.wait_for(is_final)
        await all_released(bot)

    (first,) = [r for r in fake.requests if r.method == "POST" and r.message_id]
    assert first.path == f"/channels/{question['channel_id']}/messages"
    assert str(first.data["message_reference"]["message_id"]) == question["id"]  # a reply
    versions = fake.versions(first.message_id)
    assert versions[-1] is final and min(gaps(versions)) >= MIN_GAP
    # the model's text was shown while it was written ...
    assert any("2031" in r.content for r in versions[:-1])
    shown = final.content + str(final.data.get("embeds"))
    assert "2031" not in shown  # ... but the final edit is not it
    offline = await asyncio.to_thread(seeds_pipeline.ask, QUESTION)
    notice = "The answer of openai:fake-gpt had no verifiable citation: offline answer shown."
    assert final.content == f"{offline.text}\n\n-# {notice}"
    assert final.data["embeds"][0]["title"] == "Sources"
    assert "2028" in final.data["embeds"][0]["fields"][0]["value"]
    assert fake.messages[first.message_id]["content"] == final.content


async def test_long_streamed_answer_is_cut_then_split(
    fake: FakeDiscord, model: FakeLLM, llm_pipeline: Pipeline, tmp_path: Path
) -> None:
    model.responder = long_answer
    # ~4,000 characters in ~2.7 s: more than the first 1,930 (one message) for over 1 s
    model.piece_delay = 0.008
    async with running_bot(fake, llm_pipeline, tmp_path) as bot:
        question = await fake.direct_message(QUESTION)
        channel = question["channel_id"]
        (last,) = await fake.wait_for(is_final)
        await all_released(bot)

    first, *rest = [r for r in fake.requests if r.method == "POST" and r.message_id]
    versions = fake.versions(first.message_id)
    *streamed, final_edit = versions
    assert len(streamed) >= 2
    assert all(len(r.content) <= render.MESSAGE_LIMIT for r in versions)
    assert any(provisional_text(r).endswith("…") for r in streamed)  # cut to fit
    assert min(gaps(versions)) >= MIN_GAP
    # the verified answer: its first part is the final edit, the rest are sent after it
    answer = await expected(llm_pipeline)
    parts = render.render_answer(answer).contents
    assert len(parts) >= 2 and len(answer.text) > render.MESSAGE_LIMIT
    assert final_edit.content == parts[0]
    assert not final_edit.data.get("embeds") and not custom_ids(final_edit)
    assert [r.content for r in rest] == parts[1:]
    assert all(r.path == f"/channels/{channel}/messages" for r in rest)
    assert rest[-1] is last and last.data["embeds"][0]["title"] == "Sources"
    assert rest[0].at > final_edit.at


async def test_an_edit_that_fails_does_not_lose_the_answer(
    fake: FakeDiscord, model: FakeLLM, llm_pipeline: Pipeline, tmp_path: Path
) -> None:
    # Discord answers the first edit with a 503 (which discord.py does not retry itself): a
    # provisional edit is skipped (the next one shows the text so far); the final edit, if
    # it is the one, is sent again.
    fake.fail("PATCH", r"/channels/\d+/messages/\d+", 503)
    async with running_bot(fake, llm_pipeline, tmp_path) as bot:
        await fake.direct_message(QUESTION)
        (final,) = await fake.wait_for(is_final)
        await all_released(bot)
    (failed,) = [r for r in fake.requests if r.status == 503]
    assert failed.method == "PATCH" and failed.at < final.at
    answer = await expected(llm_pipeline)
    assert final.status == 200 and final.content == answer.text
    (post,) = [r for r in fake.requests if r.method == "POST" and r.message_id]
    assert fake.messages[post.message_id]["content"] == answer.text


# ---- LiveMessage on its own ----------------------------------------------------------------
class Screen:
    """Records what a LiveMessage sends and edits (``fail`` requests raise a 503 first)."""

    def __init__(self, fail: int = 0) -> None:
        self.shown: list[tuple[float, str]] = []
        self.fail = fail

    async def send(self, content: str) -> str:
        await self.edit("message", content)
        return "message"

    async def edit(self, message: str, content: str) -> None:
        await asyncio.sleep(0.01)
        if self.fail:
            self.fail -= 1
            raise discord.DiscordServerError(FakeResponse(), "unavailable")  # type: ignore[arg-type]
        self.shown.append((time.monotonic(), content))


class FakeResponse:
    status = 503
    reason = "Service Unavailable"


async def test_live_message_edits_at_most_once_per_interval() -> None:
    screen = Screen()
    live = LiveMessage(screen.send, screen.edit, interval=0.2)
    for word in "one two three four five six seven eight".split():
        live.add(word + " ")
        await asyncio.sleep(0.05)
    assert await live.close() == "message"
    await live.wait_turn()
    times = [at for at, _ in screen.shown]
    assert len(times) >= 2 and min(gaps_of(times)) >= 0.2
    texts = [provisional_text_of(c) for _, c in screen.shown]
    assert texts[0] == "one"
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:], strict=False))
    live.add("nine")  # closed: ignored
    await asyncio.sleep(0.3)
    assert len(screen.shown) == len(times)


async def test_live_message_skips_a_failed_request_and_shows_the_text_later() -> None:
    screen = Screen(fail=1)
    live = LiveMessage(screen.send, screen.edit, interval=0.05)
    live.add("first words")
    await asyncio.sleep(0.2)
    assert live.message is None  # the first message failed: nothing shown yet ...
    live.add(" and more")
    await asyncio.sleep(0.2)
    assert await live.close() == "message"  # ... it is sent with the next text
    assert [provisional_text_of(c) for _, c in screen.shown] == ["first words and more"]


async def test_live_message_closed_before_any_text_sends_nothing() -> None:
    screen = Screen()
    live = LiveMessage(screen.send, screen.edit)
    assert await live.close() is None and not screen.shown
    live = LiveMessage(screen.send, screen.edit)
    live.add("text")
    assert await live.close() is None and not screen.shown  # closed before its turn came


def test_provisional_text_fits_a_message_and_closes_code() -> None:
    text = provisional("```python\n" + "x = 1\n" * 1000)
    assert len(text) <= render.MESSAGE_LIMIT and text.endswith(WRITING)
    assert text.count("```") % 2 == 0
    assert provisional("  ") == f"…\n\n{WRITING}"


def gaps_of(times: list[float]) -> list[float]:
    return [b - a for a, b in zip(times, times[1:], strict=False)]


def provisional_text_of(content: str) -> str:
    return content.removesuffix("\n\n" + WRITING)


# ---- the offline backend does not stream ---------------------------------------------------
@pytest.mark.parametrize("where", ["dm", "mention", "slash"])
async def test_offline_backend_sends_one_message_and_edits_nothing(
    fake: FakeDiscord, seeds_pipeline: Pipeline, tmp_path: Path, where: str
) -> None:
    assert not seeds_pipeline.streams()
    async with running_bot(fake, seeds_pipeline, tmp_path) as bot:
        if where == "dm":
            await fake.direct_message(QUESTION)
        elif where == "mention":
            await fake.say(QUESTION)
        else:
            await fake.slash("ask", {"question": QUESTION})
        (final,) = await fake.wait_for(is_final)
        await all_released(bot)
        await asyncio.sleep(0.2)  # anything sent late would show up now

    answers = [r for r in fake.requests if r.sends_message]
    assert answers == [final]  # one message, sent once
    assert final.method == "POST" and "2028" in final.content
    assert WRITING not in final.content
    assert not fake.edits()
    assert bot.stats.answered == 1


class Recorder:
    """A pipeline stand-in that only answers whole (no ``streams``): the bot must not stream."""

    def __init__(self, inner: Pipeline) -> None:
        self.inner = inner

    def ensure_seeded(self) -> None:
        return None

    def ask(self, question: str, **kwargs: Any) -> Answer:
        return self.inner.ask(question, **kwargs)


async def test_a_pipeline_without_streams_is_asked_whole(
    fake: FakeDiscord, seeds_pipeline: Pipeline, tmp_path: Path
) -> None:
    async with running_bot(fake, Recorder(seeds_pipeline), tmp_path) as bot:
        await fake.direct_message(QUESTION)
        (final,) = await fake.wait_for(is_final)
        await all_released(bot)
    assert final.method == "POST" and not fake.edits()
