"""Start the real bot against a :class:`FakeDiscord` outside pytest fixtures.

Used by the load, fault, shard and property tests and by ``bench/discord_load.py``: point
discord.py at the fake, start the bot, wait until it is ready, stop it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl

from bot.app import QabotBot, create_bot
from qabot.settings import Settings

from .server import FakeDiscord, Request


def pings_nobody(allowed_mentions: dict[str, Any] | None) -> bool:
    """Discord's rule: nothing in ``parse``, no user or role list, no reply ping."""
    return (
        allowed_mentions is not None
        and allowed_mentions.get("parse") == []
        and not allowed_mentions.get("users")
        and not allowed_mentions.get("roles")
        and not allowed_mentions.get("replied_user")
    )


@contextlib.contextmanager
def discord_pointed_at(fake: FakeDiscord) -> Iterator[None]:
    """Send discord.py's REST calls and gateway connections to ``fake`` (restored after)."""
    base, gateway = discord.http.Route.BASE, discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY
    discord.http.Route.BASE = fake.rest_base
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(fake.gateway_url)
    try:
        yield
    finally:
        discord.http.Route.BASE = base
        discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = gateway


async def _identify_now(shard_id: int | None, *, initial: bool = False) -> None:
    """discord.py waits 5 s before each shard's IDENTIFY but the first (Discord's limit of one
    IDENTIFY per 5 s); the fake has no such limit, so the tests don't wait."""


@contextlib.asynccontextmanager
async def running_bot(
    fake: FakeDiscord,
    pipeline: Any,
    data_dir: Path,
    *,
    settings: Settings | None = None,
    identify_wait: bool = False,
    **overrides: Any,
) -> AsyncIterator[QabotBot]:
    """The bot from ``create_bot`` (no cooldown unless overridden), started and ready.

    ``fake`` must be started and discord.py pointed at it (:func:`discord_pointed_at`).
    """
    if settings is None:
        values: dict[str, Any] = {"discord_cooldown_seconds": 0, "discord_token": fake.token}
        values.update(overrides)
        settings = Settings(_env_file=None, qabot_data_dir=data_dir, **values)
    bot = create_bot(settings, pipeline=pipeline)
    bot._connection.guild_ready_timeout = 0.1  # don't wait 2 s for more guilds
    if not identify_wait:
        bot.before_identify_hook = _identify_now  # type: ignore[method-assign]
    task = asyncio.create_task(bot.start(fake.token))
    ready = asyncio.create_task(bot.wait_until_ready())
    try:
        done, _ = await asyncio.wait({task, ready}, timeout=60, return_when="FIRST_COMPLETED")
        if ready not in done:
            ready.cancel()
            if task in done:
                task.result()  # raise why the bot stopped
            raise TimeoutError("the bot did not become ready")
        yield bot
    finally:
        await bot.close()
        await asyncio.wait_for(task, 10)


def is_post_to(channel_id: str) -> Callable[[Request], bool]:
    """A message the bot posted in ``channel_id`` (any status)."""
    return lambda r: r.method == "POST" and r.path == f"/channels/{channel_id}/messages"


def custom_ids(request: Request) -> list[str]:
    rows = (request.data or {}).get("components") or []
    return [c["custom_id"] for row in rows for c in row.get("components", [])]


class LoopLag:
    """How late the event loop wakes a coroutine that sleeps ``interval`` s in a loop: a
    blocking call on the loop shows up as lag of about its duration."""

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start = time.perf_counter()
            await asyncio.sleep(self.interval)
            self.lags.append(time.perf_counter() - start - self.interval)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def max(self) -> float:
        return max(self.lags, default=0.0)

    def worst(self, n: int = 5) -> list[float]:
        return sorted(self.lags, reverse=True)[:n]


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
