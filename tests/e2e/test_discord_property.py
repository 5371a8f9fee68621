"""Property: whatever a question contains, the bot answers, abstains or asks for a question,
within Discord's limits and without pinging anyone.

Questions are built from random unicode, Markdown, code fences, mentions (users, roles,
@everyone, @here, the bot itself), zero-width characters, and repeated up to 100,000
characters. One bot runs for the whole module, against the fake Discord, on an event loop in
a background thread; each Hypothesis example sends one question (a mention in the channel or a
direct message, from a new member) and waits for the bot's last message about it.
"""

from __future__ import annotations

import asyncio
import logging
import re
import threading
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from answering.pipeline import Pipeline
from bot.discord.app import QabotBot
from tests.fake_discord import FakeDiscord
from tests.fake_discord.harness import (
    Outcome,
    Tracker,
    custom_ids,
    discord_pointed_at,
    pings_nobody,
    running_bot,
)

pytestmark = pytest.mark.slow  # load, fault and hostile tests: `pytest -m "not slow"` skips them

ME = "{me}"  # replaced by the bot's own id
MARKUP = [
    "<@123>",
    "<@!123>",
    "<@&456>",
    "<#789>",
    "@everyone",
    "@here",
    f"<@{ME}>",
    f"<@!{ME}>",
    "```",
    "```python\n",
    "`",
    "**",
    "__",
    "*",
    "~~",
    "||",
    "> ",
    ">>> ",
    "# ",
    "-# ",
    "[link](https://example.com)",
    "\\",
    "[1]",
    "\n",
    " ",
]
ZERO_WIDTH = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u200e", "\u200f", "\u202e"]
WORDS = ["When does Russia plan to leave the ISS?", "Roscosmos", "2028", "ISS", "launched"]
REAL_QUESTIONS = [
    " When does Russia plan to leave the ISS? ",
    " Who is the newly appointed director-general of the Russian space agency? ",
    " Until when does Russia intend to stay on the International Space Station? ",
]
HUGE = 100_000


def inflate(unit: str, size: int) -> str:
    """``unit`` repeated to exactly ``size`` characters (``unit`` itself when size is 0)."""
    if not size or not unit:
        return unit
    return (unit * (size // len(unit) + 1))[:size]


def size_class(text: str) -> str:
    return "huge" if len(text) > 2000 else "long" if len(text) > 200 else "short"


fragments = st.one_of(
    st.sampled_from(MARKUP + ZERO_WIDTH + WORDS),
    st.text(st.characters(codec="utf-8"), max_size=20),  # any unicode but lone surrogates
)
markup = st.lists(fragments, max_size=25).map("".join)
#: A few generated questions are huge (the two explicit examples below always are): each
#: costs a second or more of embedding (its first 2,000 characters), the others are quick.
sizes = st.tuples(st.sampled_from(range(6)), st.integers(2_001, HUGE)).map(
    lambda pick: pick[1] if pick[0] == 3 else 0
)
questions = st.one_of(
    st.builds(inflate, markup, sizes),  # anything
    st.builds(  # a real question wrapped in anything: answered, with sources
        lambda before, question, after: before + question + after,
        markup,
        st.sampled_from(REAL_QUESTIONS),
        markup,
    ),
)


class Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@dataclass
class LiveBot:
    """The bot and the fake, running on ``loop`` in a background thread."""

    loop: asyncio.AbstractEventLoop
    fake: FakeDiscord
    bot: QabotBot
    tracker: Tracker
    errors: Errors

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float = 120) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def ask(self, text: str, in_dm: bool) -> Outcome:
        text = text.replace(ME, self.fake.app_id)
        actor = self.fake.new_member(f"user{len(self.fake.others)}")
        if in_dm:
            message = await self.fake.direct_message(text, actor=actor)
        else:
            everyone = "@everyone" in text or "@here" in text
            message = await self.fake.say(text, actor=actor, mention_everyone=everyone)
        outcome = self.tracker.expect(message, time.monotonic())
        await self.tracker.wait(timeout=90)
        return outcome


@pytest.fixture(scope="module")
def live(seeds_pipeline: Pipeline, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveBot]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fake-discord", daemon=True)
    thread.start()

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(120)

    async def start_fake() -> FakeDiscord:
        fake = FakeDiscord()
        await fake.start()
        return fake

    errors = Errors()
    loggers = [logging.getLogger(name) for name in ("discord", "bot")]
    for logger in loggers:
        logger.addHandler(errors)
    fake = run(start_fake())
    try:
        with discord_pointed_at(fake):
            bot_context = running_bot(fake, seeds_pipeline, tmp_path_factory.mktemp("bot"))
            bot = run(bot_context.__aenter__())
            try:
                yield LiveBot(loop, fake, bot, Tracker(fake), errors)
            finally:
                run(bot_context.__aexit__(None, None, None))
        run(fake.stop())
    finally:
        for logger in loggers:
            logger.removeHandler(errors)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@settings(
    max_examples=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)
@given(question=questions, in_dm=st.booleans())
@example(question=inflate(WORDS[0] + " ", HUGE), in_dm=False)
@example(question=inflate("@everyone <@&456> ```" + "\u200b", HUGE), in_dm=True)
@example(question="", in_dm=True)
@example(question=f"<@{ME}>  \u3000 ", in_dm=False)
@example(question="\u200b\u200d\ufeff", in_dm=False)
@example(question="@everyone @here <@123> <@&456> " + WORDS[0], in_dm=False)
def test_any_question_gets_a_safe_reply(live: LiveBot, question: str, in_dm: bool) -> None:
    already = len(live.fake.requests)
    outcome = live.run(live.ask(question, in_dm))

    event(f"{outcome.kind}, {'dm' if in_dm else 'mention'}, {size_class(question)}")
    assert not live.bot.is_closed()
    assert not live.errors.records, [r.getMessage() for r in live.errors.records]
    # Every message it sent (for this question or not) fits and pings nobody.
    sent = [r for r in live.fake.requests[already:] if r.sends_message]
    assert outcome.messages and set(map(id, outcome.messages)) <= set(map(id, sent))
    for request in sent:
        data = request.data or {}
        assert len(request.content) <= 2000
        assert pings_nobody(data.get("allowed_mentions")), data.get("allowed_mentions")
        for embed in data.get("embeds") or []:
            assert len(embed.get("fields", [])) <= 25
            assert all(len(f["value"]) <= 1024 for f in embed.get("fields", []))
    for thread in (r for r in live.fake.requests[already:] if r.path.endswith("/threads")):
        assert 1 <= len(thread.body["name"]) <= 100

    # It answered, abstained, or (nothing left once its mention is removed) asked for one.
    me = live.fake.app_id
    left = re.sub(rf"<@!?{me}>", " ", question.replace(ME, me)).strip()
    assert outcome.kind in (("answer", "abstain") if left else ("help",)), outcome
    last = outcome.messages[-1]
    if outcome.kind == "answer":
        assert last.data["embeds"][0]["title"] == "Sources"
        assert [i.split(":")[1] for i in custom_ids(last)] == ["src", "vote", "vote"]
    elif outcome.kind == "abstain":
        assert outcome.messages[0].content.startswith("I couldn't find that in the documents.")
        assert not last.data.get("embeds")
