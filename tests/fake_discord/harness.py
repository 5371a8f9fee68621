"""Start the real bot against a :class:`FakeDiscord` outside pytest fixtures.

Used by the load, fault, shard and property tests and by ``bench/discord_load.py``: point
discord.py at the fake, start the bot, wait until it is ready, stop it again.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import discord
import discord.gateway
import discord.http
import yarl

from answering.pipeline import Pipeline
from bot.discord.app import QabotBot, create_bot
from qabot.settings import Settings
from qabot.types import Answer

from .server import Actor, FakeDiscord, Request


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
    bot: QabotBot | None = None,
    identify_wait: bool = False,
    **overrides: Any,
) -> AsyncIterator[QabotBot]:
    """The bot from ``create_bot`` (no cooldown unless overridden), or ``bot``, started and
    ready.

    ``fake`` must be started and discord.py pointed at it (:func:`discord_pointed_at`).
    """
    if bot is None:
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


class CountingPipeline:
    """The real pipeline, counting how many ``ask`` calls run at the same time (and each one
    ``delay`` seconds slower, as with a slow model, when ``delay`` is set)."""

    def __init__(self, inner: Pipeline, delay: float = 0.0) -> None:
        self.inner = inner
        self.delay = delay
        self.running = 0
        self.max_running = 0
        self.calls = 0
        self._lock = threading.Lock()

    def ensure_seeded(self) -> None:
        self.inner.ensure_seeded()

    def ask(self, question: str, **kwargs: Any) -> Answer:
        with self._lock:
            self.running += 1
            self.calls += 1
            self.max_running = max(self.max_running, self.running)
        try:
            time.sleep(self.delay)
            return self.inner.ask(question, **kwargs)
        finally:
            with self._lock:
                self.running -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def all_released(bot: Any, timeout: float = 5.0) -> None:
    """Wait until the bot has given back every question's place (just after its last send)."""
    deadline = time.monotonic() + timeout
    while bot.admitted and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


def is_post_to(channel_id: str) -> Callable[[Request], bool]:
    """A message the bot posted in ``channel_id`` (any status)."""
    return lambda r: r.method == "POST" and r.path == f"/channels/{channel_id}/messages"


def custom_ids(request: Request) -> list[str]:
    rows = (request.data or {}).get("components") or []
    return [c["custom_id"] for row in rows for c in row.get("components", [])]


SCHEDSTAT = Path("/proc/thread-self/schedstat")


def _schedstat() -> tuple[float, float]:
    """This thread's seconds on a CPU and seconds runnable but waiting for one (Linux
    schedstat; zeros where it is not available)."""
    try:
        on_cpu, waiting = SCHEDSTAT.read_text().split()[:2]
        return int(on_cpu) / 1e9, int(waiting) / 1e9
    except (OSError, ValueError):
        return 0.0, 0.0


class LoopLag:
    """How late the event loop wakes a coroutine that sleeps ``interval`` s in a loop: a
    blocking call on the loop shows up as lag of about its duration.

    Each sample also records how long the loop's thread sat runnable in the kernel's run
    queue meanwhile, i.e. the part of the lag the machine caused (other processes had the
    CPUs). ``own`` leaves that part out: what remains is time the loop's thread was busy
    itself (``cpu``) or blocked (waiting for the GIL, or a blocking call), which is what
    answering off the loop must keep small.
    """

    def __init__(self, interval: float = 0.01) -> None:
        self.interval = interval
        self.lags: list[float] = []
        self.own: list[float] = []  # lag minus the run-queue wait of the same interval
        self.cpu: list[float] = []  # the loop thread's CPU time in the same interval
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            start, (cpu, waited) = time.perf_counter(), _schedstat()
            await asyncio.sleep(self.interval)
            lag = time.perf_counter() - start - self.interval
            cpu_after, waited_after = _schedstat()
            self.lags.append(lag)
            self.own.append(max(0.0, lag - (waited_after - waited)))
            self.cpu.append(cpu_after - cpu)

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

    @property
    def own_max(self) -> float:
        return max(self.own, default=0.0)

    def worst(self, n: int = 5) -> list[tuple[float, float, float]]:
        """The ``n`` largest lags in ms, each with its own part (run-queue wait left out) and
        the loop thread's CPU time in it: ``(lag, own, cpu)``."""
        rows = sorted(zip(self.lags, self.own, self.cpu, strict=True), reverse=True)[:n]
        return [tuple(round(x * 1000, 1) for x in row) for row in rows]  # type: ignore[misc]

    def worst_own(self) -> tuple[float, float, float]:
        """The sample with the largest own lag, in ms: ``(lag, own, cpu)``."""
        if not self.own:
            return (0.0, 0.0, 0.0)
        i = max(range(len(self.own)), key=self.own.__getitem__)
        return (
            round(self.lags[i] * 1000, 1),
            round(self.own[i] * 1000, 1),
            round(self.cpu[i] * 1000, 1),
        )


class GcPauses:
    """The garbage collector's pauses while active (``with GcPauses() as pauses``): a full
    collection stops every thread, the event loop's included, for a time that grows with the
    number of live objects."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, seconds)
        self._started: dict[int, float] = {}

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        thread = threading.get_ident()
        if phase == "start":
            self._started[thread] = time.perf_counter()
        elif thread in self._started:
            took = time.perf_counter() - self._started.pop(thread)
            self.pauses.append((info["generation"], took))

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._callback)
        return self

    def __exit__(self, *exc: object) -> None:
        gc.callbacks.remove(self._callback)

    @property
    def max(self) -> float:
        return max((took for _, took in self.pauses), default=0.0)


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# ---- many questions at once ----------------------------------------------------------------
BUSY_MARK = "answering a lot of questions"
COOLDOWN_MARK = "you can ask again in"
HELP_MARK = "Ask me a question about the documents"
FAILED_MARK = "Something went wrong while answering"


@dataclass
class Outcome:
    """What became of one question asked by mention: its thread's messages or the reply."""

    question_id: str
    user_id: str
    sent_at: float
    kind: str = ""  # answer | abstain | busy | cooldown | help | failed ("" while waiting)
    done_at: float = 0.0
    messages: list[Request] = field(default_factory=list)

    @property
    def latency(self) -> float:
        """Seconds from the question to the bot's last message about it."""
        return self.done_at - self.sent_at


class Tracker:
    """Follows the fake's requests (incrementally) and files each bot message under the
    question it is about: a post in the thread the question opened, a reply to it, or (for
    a direct message) a post in that DM channel while the question waits."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.fake = fake
        self.outcomes: dict[str, Outcome] = {}
        self._dms: dict[str, Outcome] = {}  # DM channel id -> its waiting question
        self._seen = 0

    def expect(self, question: dict[str, Any], sent_at: float) -> Outcome:
        outcome = Outcome(question["id"], question["author"]["id"], sent_at)
        self.outcomes[question["id"]] = outcome
        if "guild_id" not in question:
            self._dms[question["channel_id"]] = outcome
        return outcome

    def pending(self) -> list[Outcome]:
        self._update()
        return [o for o in self.outcomes.values() if not o.kind]

    def _update(self) -> None:
        requests = self.fake.requests
        while self._seen < len(requests):
            request = requests[self._seen]
            self._seen += 1
            if not (request.sends_message and request.method == "POST"):
                continue
            parts = request.path.split("/")  # "", "channels", id, "messages"
            if len(parts) != 4 or parts[1] != "channels" or parts[3] != "messages":
                continue
            reference = ((request.data or {}).get("message_reference") or {}).get("message_id")
            outcome = (
                self.outcomes.get(parts[2])
                or self.outcomes.get(str(reference))
                or self._dms.get(parts[2])
            )
            if outcome is not None and not outcome.kind:
                outcome.messages.append(request)
                self._classify(outcome, request)
                if outcome.kind:
                    self._dms = {c: o for c, o in self._dms.items() if o is not outcome}

    @staticmethod
    def _classify(outcome: Outcome, request: Request) -> None:
        ids = custom_ids(request)
        if ids:  # the last part of an answer carries its buttons
            outcome.kind = "answer" if any(":src:" in i for i in ids) else "abstain"
        elif BUSY_MARK in request.content:
            outcome.kind = "busy"
        elif COOLDOWN_MARK in request.content:
            outcome.kind = "cooldown"
        elif HELP_MARK in request.content:
            outcome.kind = "help"
        elif FAILED_MARK in request.content:
            outcome.kind = "failed"
        if outcome.kind:
            outcome.done_at = request.at

    async def wait(self, timeout: float) -> list[Outcome]:
        """Wait until every expected question has its outcome; returns them in order."""
        await self.fake.wait_until(lambda: not self.pending(), timeout)
        return list(self.outcomes.values())


async def ask_all(
    fake: FakeDiscord, tracker: Tracker, questions: list[tuple[Actor, str]]
) -> list[Outcome]:
    """Every ``(user, question)`` mentions the bot in the channel, as fast as the gateway
    sends them; returns their (pending) outcomes."""
    outcomes = []
    for actor, text in questions:
        sent_at = time.monotonic()
        message = await fake.say(text, actor=actor)
        outcomes.append(tracker.expect(message, sent_at))
    return outcomes
