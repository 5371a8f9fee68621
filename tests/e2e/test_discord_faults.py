"""Discord's REST API failing with 5xx: discord.py retries 500/502 itself, the bot retries
a 503 (which discord.py does not); the answer arrives."""

from __future__ import annotations

from pathlib import Path

import pytest

from answering.pipeline import Pipeline
from tests.fake_discord import FakeDiscord
from tests.fake_discord.harness import (
    is_post_to,
    running_bot,
)

pytestmark = pytest.mark.slow  # load, fault and hostile tests: `pytest -m "not slow"` skips them

ISS_QUESTION = "When does Russia plan to leave the ISS?"
MESSAGES = r"/channels/\d+/messages"
THREADS = r"/channels/\d+/messages/\d+/threads"


@pytest.mark.parametrize("status", [500, 502])
async def test_answer_is_resent_after_a_server_error(
    fake: FakeDiscord, seeds_pipeline: Pipeline, tmp_path: Path, status: int
) -> None:
    async with running_bot(fake, seeds_pipeline, tmp_path):
        fake.fail("POST", MESSAGES, status)
        question = await fake.direct_message(ISS_QUESTION)
        posted = is_post_to(question["channel_id"])
        await fake.wait_for(lambda r: posted(r) and r.status == 200)
        failed, ok = [r for r in fake.requests if posted(r)]
        assert (failed.status, ok.status) == (status, 200)
        assert ok.content == failed.content and "2028" in ok.content
        assert ok.at - failed.at >= 0.9  # discord.py waits 1 s before its first retry
        assert ok.data["embeds"][0]["title"] == "Sources"


async def test_answer_is_resent_after_a_503(
    fake: FakeDiscord, seeds_pipeline: Pipeline, tmp_path: Path
) -> None:
    async with running_bot(fake, seeds_pipeline, tmp_path):
        fake.fail("POST", MESSAGES, 503, 503)
        question = await fake.direct_message(ISS_QUESTION)
        posted = is_post_to(question["channel_id"])
        await fake.wait_for(lambda r: posted(r) and r.status == 200, timeout=30)
        attempts = [r for r in fake.requests if posted(r)]
        assert [r.status for r in attempts] == [503, 503, 200]
        assert "2028" in attempts[-1].content
        assert attempts[-1].at - attempts[0].at >= 2.9  # waited 1 s, then 2 s


async def test_thread_is_opened_after_a_server_error(
    fake: FakeDiscord, seeds_pipeline: Pipeline, tmp_path: Path
) -> None:
    async with running_bot(fake, seeds_pipeline, tmp_path):
        fake.fail("POST", THREADS, 502)
        question = await fake.say(ISS_QUESTION)
        (reply,) = await fake.wait_for(is_post_to(question["id"]))  # in the thread
        assert "2028" in reply.content
        threads = [r for r in fake.requests if r.path.endswith("/threads")]
        assert [r.status for r in threads] == [502, 201]
