"""Load: 50 questions at once through the fake Discord, answered by the real offline pipeline.

Checks that none is lost (each is answered or, if the bot is full, the user is asked to retry),
that no more than DISCORD_MAX_IN_FLIGHT answers run at once, that the event loop stays
responsive (answering runs in worker threads) and that memory stays bounded.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from answering.pipeline import Pipeline
from tests.fake_discord import FakeDiscord
from tests.fake_discord.harness import (
    CountingPipeline,
    GcPauses,
    LoopLag,
    Tracker,
    all_released,
    ask_all,
    rss_mb,
    running_bot,
)

pytestmark = pytest.mark.slow  # load, fault and hostile tests: `pytest -m "not slow"` skips them

QUESTIONS = [
    "When does Russia plan to leave the ISS?",
    "Who is the newly appointed director-general of the Russian space agency?",
    "After which year did Borisov say Russia would leave the ISS partnership?",
    "When was the first module of the space station launched?",
    "What is the recipe for banana bread?",  # abstains
]
USERS = 50
MAX_IN_FLIGHT = 4
#: A short waiting list for the overflow test (the default, 100, would admit all 50).
MAX_WAITING = 4
#: The issue's bar: answering runs in worker threads, so the loop is never blocked this long.
MAX_LOOP_LAG = 0.100
#: What 50 more answers legitimately keep is small: discord.py's message cache (at most 1,000
#: messages), 50 remembered threads and cooldowns, and the fake's record of ~300 requests and
#: messages: a few MB (measured: +2 to +5 MB here, +33 MB for 500 questions in
#: bench/discord_load.py). The bound leaves room for allocator slack from the worker threads
#: and still fails if each answer leaked about 2 MB (its retrieval results, a corpus copy).
MAX_RSS_GROWTH_MB = 100


class Errors(logging.Handler):
    """Every ERROR record (a failed answer, an exception in an event handler)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def errors() -> Iterator[Errors]:
    handler = Errors()
    loggers = [logging.getLogger(name) for name in ("discord", "bot")]
    for logger in loggers:
        logger.addHandler(handler)
    yield handler
    for logger in loggers:
        logger.removeHandler(handler)


async def test_fifty_questions_at_once(
    fake: FakeDiscord, seeds_pipeline: Pipeline, tmp_path: Path, errors: Errors
) -> None:
    pipeline = CountingPipeline(seeds_pipeline)
    async with running_bot(
        fake,
        pipeline,
        tmp_path,
        discord_max_in_flight=MAX_IN_FLIGHT,
        discord_cooldown_seconds=600,
        discord_cooldown_burst=1,  # one question, then the cooldown
    ) as bot:
        tracker = Tracker(fake)
        # Warm up every worker thread (model sessions, allocator arenas) before measuring.
        warm_up = [(fake.new_member(f"warm{i}"), QUESTIONS[i]) for i in range(MAX_IN_FLIGHT)]
        await ask_all(fake, tracker, warm_up)
        await tracker.wait(timeout=120)
        gc.collect()
        rss_before = rss_mb()

        users = [fake.new_member(f"user{i}") for i in range(USERS)]
        lag = LoopLag()
        # This process also holds whatever earlier tests left alive; a full collection's
        # pause grows with that, so it is set aside (a running bot has only its own objects).
        gc.freeze()
        try:
            with GcPauses() as pauses:
                lag.start()
                asked = await ask_all(
                    fake,
                    tracker,
                    [(u, QUESTIONS[i % len(QUESTIONS)]) for i, u in enumerate(users)],
                )
                await tracker.wait(timeout=300)
                await lag.stop()
        finally:
            gc.unfreeze()
        gc.collect()
        rss_after = rss_mb()

        kinds = [o.kind for o in asked]
        answered = [o for o in asked if o.kind in ("answer", "abstain")]
        refused = [o for o in asked if o.kind == "busy"]
        print(
            f"\n{USERS} questions: {len(answered)} answered, {len(refused)} asked to retry; "
            f"at most {pipeline.max_running} answering at once; max loop lag "
            f"{lag.max * 1000:.1f} ms, {lag.own_max * 1000:.1f} ms of it not waiting for a CPU "
            f"(worst, ms: {lag.worst()}); longest GC pause {pauses.max * 1000:.1f} ms; "
            f"RSS {rss_before:.0f} -> {rss_after:.0f} MB; "
            f"slowest answer {max(o.latency for o in asked):.2f} s"
        )
        # None lost: every user got an answer or the friendly "try again" message.
        assert len(answered) + len(refused) == USERS, kinds
        for outcome in refused:
            (message,) = outcome.messages
            assert "Please try again in a few seconds" in message.content
        for i, outcome in enumerate(asked):
            if outcome.kind == "answer":
                assert outcome.messages[-1].data["embeds"][0]["title"] == "Sources"
            if outcome.kind in ("answer", "abstain"):
                assert (outcome.kind == "abstain") == (i % len(QUESTIONS) == len(QUESTIONS) - 1)
        # The cap held, and it was used.
        assert 1 <= pipeline.max_running <= MAX_IN_FLIGHT
        assert pipeline.calls == MAX_IN_FLIGHT + len(answered)
        assert not refused  # the waiting list (DISCORD_MAX_WAITING, 100) holds the burst
        await all_released(bot)
        assert bot.in_flight == 0 and bot.admitted == 0
        # The loop stayed free while answers were computed.
        assert lag.lags, "the lag monitor never ran"
        # Measured without the time the kernel kept the loop's thread waiting for a CPU (on
        # an overloaded machine, an idle process sees 100+ ms stalls too); what is left is the
        # loop busy or waiting for the GIL, i.e. work done on or against the loop.
        assert lag.own_max < MAX_LOOP_LAG, (lag.worst(), pauses.pauses)
        assert rss_after - rss_before < MAX_RSS_GROWTH_MB

        # A second question inside the cooldown gets the friendly cooldown message.
        first = next(o for o in answered)
        again = next(u for u in users if u.id == first.user_id)
        (second,) = await ask_all(fake, tracker, [(again, "And who said that?")])
        await tracker.wait(timeout=60)
        assert second.kind == "cooldown"
        assert "Give me a moment: you can ask again in" in second.messages[0].content
        assert pipeline.calls == MAX_IN_FLIGHT + len(answered)  # not answered

    assert not errors.records, [r.getMessage() for r in errors.records]


async def test_when_full_users_are_asked_to_retry_and_none_is_lost(
    fake: FakeDiscord, seeds_pipeline: Pipeline, tmp_path: Path, errors: Errors
) -> None:
    """Slow answers (0.5 s, like a model) and questions arriving faster than 4 slots and 4
    places in the waiting list can take: the overflow gets the retry message, the rest an
    answer, and none is lost."""
    pipeline = CountingPipeline(seeds_pipeline, delay=0.5)
    async with running_bot(
        fake,
        pipeline,
        tmp_path,
        discord_max_in_flight=MAX_IN_FLIGHT,
        discord_max_waiting=MAX_WAITING,
    ) as bot:
        tracker = Tracker(fake)
        users = [fake.new_member(f"user{i}") for i in range(USERS)]
        asked = []
        for i, user in enumerate(users):  # 50 questions over about a second
            asked += await ask_all(fake, tracker, [(user, QUESTIONS[i % len(QUESTIONS)])])
            await asyncio.sleep(0.02)
        await tracker.wait(timeout=300)

        answered = [o for o in asked if o.kind in ("answer", "abstain")]
        refused = [o for o in asked if o.kind == "busy"]
        print(f"\n{len(answered)} answered, {len(refused)} asked to retry")
        assert len(answered) + len(refused) == USERS, [o.kind for o in asked]
        # 50 arrivals in ~1 s against at most 8 answers per second: some must be refused.
        assert refused
        for outcome in refused:
            (message,) = outcome.messages
            assert "Please try again in a few seconds" in message.content
            assert str(message.data["message_reference"]["message_id"]) == outcome.question_id
        assert pipeline.max_running <= MAX_IN_FLIGHT
        assert pipeline.calls == len(answered)
        await all_released(bot)
        assert bot.in_flight == 0 and bot.admitted == 0
    assert not errors.records, [r.getMessage() for r in errors.records]
