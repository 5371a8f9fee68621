"""QABOT_SHARDS: the real discord.py AutoShardedClient against the fake gateway's shards."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from discord.ext import commands
from pydantic import ValidationError

from answering.pipeline import Pipeline
from bot.discord.app import QabotBot, ShardedQabotBot, create_bot
from qabot.settings import Settings
from tests.fake_discord import FakeDiscord
from tests.fake_discord.gateway import shard_of
from tests.fake_discord.harness import (
    is_post_to,
    running_bot,
)

ISS_QUESTION = "When does Russia plan to leave the ISS?"


def put_guild_on_shard(fake: FakeDiscord, shard_id: int, shard_count: int) -> None:
    """Give the fake's guild an id that Discord's formula puts on ``shard_id``."""
    guild_id = int(fake.guild_id)
    while shard_of(guild_id, shard_count) != shard_id:
        guild_id += 1 << 22  # one millisecond later
    fake.guild_id = str(guild_id)


@pytest.mark.parametrize(
    ("value", "cls", "count"),
    [(None, QabotBot, None), ("", QabotBot, None), ("auto", ShardedQabotBot, None)]
    + [(" AUTO ", ShardedQabotBot, None), ("2", ShardedQabotBot, 2), ("1", ShardedQabotBot, 1)],
)
def test_qabot_shards_picks_the_bot_class(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, value: str | None, cls: type, count: int
) -> None:
    if value is None:
        monkeypatch.delenv("QABOT_SHARDS", raising=False)
    else:
        monkeypatch.setenv("QABOT_SHARDS", value)
    bot = create_bot(Settings(_env_file=None, qabot_data_dir=tmp_path), pipeline=object())
    assert type(bot) is cls
    assert isinstance(bot, commands.AutoShardedBot) == (cls is ShardedQabotBot)
    assert bot.shard_count == count


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5"])
def test_qabot_shards_rejects_nonsense(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("QABOT_SHARDS", value)
    with pytest.raises(ValidationError, match="QABOT_SHARDS"):
        Settings(_env_file=None)


@pytest.mark.parametrize("shards", ["auto", "2"])
async def test_sharded_bot_answers_a_mention_and_a_dm(
    fake: FakeDiscord,
    seeds_pipeline: Pipeline,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    shards: str,
) -> None:
    monkeypatch.setenv("QABOT_SHARDS", shards)
    fake.recommended_shards = 2  # what GET /gateway/bot answers to "auto"
    put_guild_on_shard(fake, 1, 2)  # so that both shards carry traffic
    settings = Settings(
        _env_file=None,
        qabot_data_dir=tmp_path,
        discord_token=fake.token,
        discord_cooldown_seconds=0,
    )
    async with running_bot(fake, seeds_pipeline, tmp_path, settings=settings) as bot:
        assert isinstance(bot, ShardedQabotBot) and bot.shard_count == 2
        assert sorted(bot.shards) == [0, 1]
        identifies = fake.gateway.identifies()
        assert sorted(tuple(i["shard"]) for i in identifies) == [(0, 2), (1, 2)]
        asked_gateway = any(r.path == "/gateway/bot" for r in fake.requests)
        assert asked_gateway == (shards == "auto")  # a fixed count needs no recommendation

        question = await fake.say(ISS_QUESTION)  # the guild's events go to shard 1
        (reply,) = await fake.wait_for(is_post_to(question["id"]))  # in the opened thread
        assert "2028" in reply.content
        assert [p["d"]["id"] for p in fake.gateway.dispatched(1, "MESSAGE_CREATE")][:1] == [
            question["id"]
        ]
        assert bot.get_guild(int(fake.guild_id)).shard_id == 1

        dm = await fake.direct_message(ISS_QUESTION, actor=fake.bob)  # DMs go to shard 0
        (dm_reply,) = await fake.wait_for(is_post_to(dm["channel_id"]))
        assert "2028" in dm_reply.content
        assert dm["id"] in [p["d"]["id"] for p in fake.gateway.dispatched(0, "MESSAGE_CREATE")]


async def test_two_bots_split_the_shards_and_each_question_is_answered_once(
    fake: FakeDiscord, seeds_pipeline: Pipeline, tmp_path: Path
) -> None:
    """What two processes would do (docs/operations.md): the same token, shard_count=2,
    each running one shard id; every question reaches one of them only."""
    put_guild_on_shard(fake, 1, 2)
    settings = Settings(
        _env_file=None,
        qabot_data_dir=tmp_path,
        discord_token=fake.token,
        discord_cooldown_seconds=0,
        qabot_shards="2",
    )
    bots = []
    for shard_id in (0, 1):
        bot = ShardedQabotBot(settings, seeds_pipeline, shard_count=2, shard_ids=[shard_id])
        bots.append(bot)
    async with (
        running_bot(fake, seeds_pipeline, tmp_path, bot=bots[0]) as first,
        running_bot(fake, seeds_pipeline, tmp_path, bot=bots[1]) as second,
    ):
        assert list(first.shards) == [0] and list(second.shards) == [1]
        assert first.get_guild(int(fake.guild_id)) is None  # the guild lives on shard 1
        assert second.get_guild(int(fake.guild_id)) is not None

        question = await fake.say(ISS_QUESTION)
        dm = await fake.direct_message(ISS_QUESTION, actor=fake.bob)
        (reply,) = await fake.wait_for(is_post_to(question["id"]))
        (dm_reply,) = await fake.wait_for(is_post_to(dm["channel_id"]))
        assert "2028" in reply.content and "2028" in dm_reply.content
        await asyncio.sleep(0.5)  # a second answer would have arrived by now
        assert len([r for r in fake.requests if is_post_to(question["id"])(r)]) == 1
        assert len([r for r in fake.requests if is_post_to(dm["channel_id"])(r)]) == 1
        assert first.stats.answered == 1 and second.stats.answered == 1
