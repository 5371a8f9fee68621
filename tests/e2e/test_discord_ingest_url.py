"""The Discord ``/ingest`` command with a ``url``: the real discord.py client against the fake
Discord, fetching from the small site of tests/fake_site.py (both on 127.0.0.1)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from answering.pipeline import Pipeline
from bot.discord.app import QabotBot, create_bot
from qabot.settings import Settings
from tests.fake_discord import FakeDiscord, Request
from tests.fake_site import FakeSite

StartBot = Callable[..., Awaitable[QabotBot]]


def result_of(fake: FakeDiscord, interaction: dict[str, Any]) -> Callable[[Request], bool]:
    """The message posting a background ingest's result (after its first reply)."""
    return lambda r: (
        r.method == "POST" and r.path == f"/webhooks/{fake.app_id}/{interaction['token']}"
    )


@pytest.fixture
def site() -> Any:
    with FakeSite() as fake:
        fake.slow = False
        yield fake


@pytest.fixture
async def start_bot(fake: FakeDiscord, tmp_path: Path) -> AsyncIterator[StartBot]:
    running: list[tuple[QabotBot, asyncio.Task[None]]] = []
    no_seeds = tmp_path / "no-seeds"
    no_seeds.mkdir()

    async def start(**overrides: Any) -> QabotBot:
        values: dict[str, Any] = {
            "_env_file": None,
            "qabot_data_dir": tmp_path / "data",
            "discord_cooldown_seconds": 0,
            "discord_token": fake.token,
            "qabot_web_timeout": 0.5,
            "qabot_seeds": no_seeds,  # the collection holds only what the test ingests
            # The fake site is on 127.0.0.1, which /ingest url: refuses unless allowed.
            "qabot_discord_web_private": True,
        }
        settings = Settings(**(values | overrides))
        bot = create_bot(settings, pipeline=Pipeline(settings))
        bot._connection.guild_ready_timeout = 0.1
        task = asyncio.create_task(bot.start(fake.token))
        running.append((bot, task))
        ready = asyncio.create_task(bot.wait_until_ready())
        done, _ = await asyncio.wait({task, ready}, timeout=60, return_when="FIRST_COMPLETED")
        if ready not in done:
            ready.cancel()
            if task in done:
                task.result()  # raise why the bot stopped
            raise TimeoutError("the bot did not become ready")
        return bot

    yield start
    for bot, task in running:
        await bot.close()
        await asyncio.wait_for(task, 10)


async def test_admin_ingests_a_url_and_the_answer_cites_it(
    fake: FakeDiscord, start_bot: StartBot, site: FakeSite
) -> None:
    bot = await start_bot()
    url = f"{site.url}/docs/a.html"
    interaction = await fake.slash("ingest", {"url": url}, actor=fake.owner)
    (followup,) = await fake.wait_for(result_of(fake, interaction))
    callback = fake.for_interaction(interaction)[0]
    # answered at once and privately ("Indexing <url>..."); the result follows when done
    assert callback.body["type"] == 4 and callback.body["data"]["flags"] & 64
    assert url in followup.content and "Added 1" in followup.content
    assert url in bot.pipeline.sources()

    ask = await fake.slash("ask", {"question": "When was the lighthouse lamp converted?"})
    await fake.wait_for(lambda r: r.path.startswith(f"/webhooks/{fake.app_id}/{ask['token']}"))
    answer = fake.for_interaction(ask)[-1]
    assert "1961" in answer.content
    assert answer.data["embeds"][0]["fields"][0]["name"] == f"[1] {url}"  # the URL, whole

    crawl = await fake.slash(
        "ingest", {"url": f"{site.url}/docs/", "crawl": True}, actor=fake.owner
    )
    (result,) = await fake.wait_for(result_of(fake, crawl))
    done = result.content
    assert "Added 8" in done and "unchanged 1" in done  # a.html was there already
    assert "HTTP 404" in done and "missing.html" in done

    site.log.clear()
    reindex = await fake.slash("reindex", actor=fake.owner)
    (result,) = await fake.wait_for(result_of(fake, reindex))
    text = result.content
    assert "Added 0, updated 0, unchanged 9, removed 0" in text  # the 9 pages, re-fetched
    etag = [r for r in site.log if r["path"] == "/docs/etag.html"]
    assert etag and etag[0]["if_none_match"] == '"stable-1"' and etag[0]["status"] == 304


async def test_url_ingest_is_for_admins_and_needs_a_web_address(
    fake: FakeDiscord, start_bot: StartBot, site: FakeSite
) -> None:
    await start_bot()
    refused = await fake.slash("ingest", {"url": f"{site.url}/docs/a.html"}, actor=fake.alice)
    await fake.wait_for(lambda r: r.path.endswith(f"/{refused['token']}/callback"))
    (reply,) = fake.for_interaction(refused)
    assert reply.ephemeral and "only members with the Manage Server permission" in reply.content
    assert "/docs/a.html" not in site.paths()  # nothing was fetched for a member

    bad = await fake.slash("ingest", {"url": "ftp://example.invalid/x"}, actor=fake.owner)
    await fake.wait_for(lambda r: r.path.endswith(f"/{bad['token']}/callback"))
    assert "Not a web address" in fake.for_interaction(bad)[0].content

    neither = await fake.slash("ingest", {}, actor=fake.owner)
    await fake.wait_for(lambda r: r.path.endswith(f"/{neither['token']}/callback"))
    assert "either a file or a url" in fake.for_interaction(neither)[0].content


async def test_url_ingest_refuses_private_addresses_unless_the_operator_allows_them(
    fake: FakeDiscord, start_bot: StartBot, site: FakeSite
) -> None:
    bot = await start_bot(qabot_discord_web_private=False)  # the default
    url = f"{site.url}/docs/a.html"
    interaction = await fake.slash("ingest", {"url": url}, actor=fake.owner)
    (result,) = await fake.wait_for(result_of(fake, interaction))
    assert "127.0.0.1 is a private or local address" in result.content
    assert "QABOT_DISCORD_WEB_PRIVATE" in result.content
    assert site.log == []  # not even robots.txt was requested
    assert url not in bot.pipeline.sources()
