"""A follow-up in the bot's Discord thread is answered in the thread's context (issue 12)."""

from __future__ import annotations

import asyncio

from answering.pipeline import Pipeline
from tests.e2e.test_discord_bot import StartBot, is_post_to, pipeline, start_bot
from tests.fake_discord import FakeDiscord

__all__ = ["pipeline", "start_bot"]  # the fixtures, shared with the bot's main tests

QUESTION = "What station does Russia plan to build?"
FOLLOW_UP = "When should it be operational?"


async def test_a_follow_up_in_the_thread_gets_the_context_s_answer(
    fake: FakeDiscord, start_bot: StartBot, pipeline: Pipeline
) -> None:
    await start_bot()
    question = await fake.say(QUESTION)
    thread_id = question["id"]
    (first,) = await fake.wait_for(is_post_to(thread_id))
    assert "ROSS" in first.content

    await fake.say(FOLLOW_UP, channel_id=thread_id, mention_bot=False)
    _, second = await fake.wait_for(is_post_to(thread_id), count=2)
    # The date ROSS should be operational by, as the short answer leading the reply.
    assert second.content.startswith("2028"), second.content
    excerpts = [f["value"] for f in (second.data or {})["embeds"][0]["fields"]]
    assert any("2028" in e for e in excerpts)
    # Asked alone, "it" has no referent: the thread's context is what made the answer.
    alone = await asyncio.to_thread(pipeline.ask, FOLLOW_UP)
    assert not alone.text.startswith("2028"), alone.text
