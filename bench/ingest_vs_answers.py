"""Benchmark: answer latency in two servers while one of them ingests a long document.

The real bot (``create_bot`` with no pipeline: a knowledge base per server) runs against
``tests/fake_discord`` with two servers, A and B, each with one small document of its own.
Questions are asked one at a time, alternating A and B, by mention (the user-visible
latency: question sent -> the answer's last message). First with nothing else going on
(idle), then, in the same run, while ``/ingest`` of a long generated document runs in A.
Reported per server and phase: p50 / p95 / max latency, the ratio to idle, and the event
loop's worst lag. Writes bench/out/ingest_vs_answers.md.

    python bench/ingest_vs_answers.py [--questions 20] [--paragraphs 150]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import md_table, save

from qabot.settings import PACKAGED_SEEDS
from qabot.stats import percentile
from tests.fake_discord import Actor, FakeDiscord
from tests.fake_discord.harness import LoopLag, Tracker, discord_pointed_at, running_bot

PELICANS = (
    "# Pelicans\n\nBrown pelicans dive from heights of up to twenty metres to catch fish, "
    "and they are the only pelicans that hunt by plunge diving.\n"
)
OTTERS = (
    "# Otters\n\nSea otters hold hands while they sleep so that they do not drift apart, "
    "and a group of resting otters is called a raft.\n"
)
QUESTIONS = {
    "A": ["How high do brown pelicans dive from?", "Which pelicans hunt by plunge diving?"],
    "B": ["Why do sea otters hold hands?", "What is a group of resting otters called?"],
}


def long_document(paragraphs: int) -> str:
    lines = [
        f"Harbour log entry {i}: the tug Marigold {i} moved barge {i * 7} from pier {i % 9} "
        f"to the grain terminal at {6 + i % 12}:00, and the pilot noted a {i % 5} knot tide."
        for i in range(paragraphs)
    ]
    return "# Harbour log\n\n" + "\n\n".join(lines) + "\n"


async def ingest(fake: FakeDiscord, actor: Actor, channel: str, name: str, text: str) -> Any:
    """Start ``/ingest``; returns the interaction (its result is a POST to its webhook)."""
    attachment = fake.add_attachment(name, text.encode())
    return await fake.slash("ingest", actor=actor, channel_id=channel, attachment=attachment)


def result_posted(fake: FakeDiscord, interaction: dict[str, Any]) -> bool:
    path = f"/webhooks/{interaction['application_id']}/{interaction['token']}"
    return any(r.method == "POST" and r.path == path for r in fake.requests)


async def ask_round(
    fake: FakeDiscord, tracker: Tracker, askers: dict[str, tuple[Actor, str]], i: int
) -> dict[str, float]:
    """One question in A, then one in B; their latencies in seconds."""
    out = {}
    for server, (actor, channel) in askers.items():
        question = QUESTIONS[server][i % len(QUESTIONS[server])]
        sent = time.monotonic()
        message = await fake.say(question, actor=actor, channel_id=channel)
        outcome = tracker.expect(message, sent)
        await tracker.wait(timeout=120)
        if outcome.kind not in ("answer", "abstain"):
            raise RuntimeError(f"{server}: {question!r} got {outcome.kind!r}")
        out[server] = outcome.latency
    return out


def summary(phase: str, server: str, latencies: list[float], idle_p50: float | None) -> list:
    ms = [x * 1000 for x in latencies]
    p50 = percentile(ms, 50)
    ratio = p50 / idle_p50 if idle_p50 and p50 is not None else None
    return [phase, server, len(ms), p50, percentile(ms, 95), max(ms, default=None), ratio]


async def run(args: argparse.Namespace) -> str:
    logging.basicConfig(level=logging.WARNING)
    fake = FakeDiscord()
    second = fake.add_guild("B")
    await fake.start()
    rows: list[list] = []
    try:
        with discord_pointed_at(fake), tempfile.TemporaryDirectory() as tmp:
            async with running_bot(fake, None, Path(tmp), qabot_seeds=PACKAGED_SEEDS):
                for actor, channel, name, text in (
                    (fake.owner, fake.channel_id, "pelicans.md", PELICANS),
                    (second.owner, second.channel_id, "otters.md", OTTERS),
                ):
                    started = await ingest(fake, actor, channel, name, text)
                    await fake.wait_until(lambda i=started: result_posted(fake, i), 300)
                tracker = Tracker(fake)
                askers = {
                    "A": (fake.alice, fake.channel_id),
                    "B": (second.member, second.channel_id),
                }
                await ask_round(fake, tracker, askers, 0)  # warm-up
                lag = LoopLag()
                lag.start()
                idle: dict[str, list[float]] = {"A": [], "B": []}
                for i in range(args.questions):
                    for server, took in (await ask_round(fake, tracker, askers, i)).items():
                        idle[server].append(took)
                idle_lag = lag.max
                lag.lags.clear()

                started = time.perf_counter()
                long_ingest = await ingest(
                    fake, fake.owner, fake.channel_id, "harbour.md", long_document(args.paragraphs)
                )
                during: dict[str, list[float]] = {"A": [], "B": []}
                i = 0
                while not result_posted(fake, long_ingest) and i < args.max_during:
                    for server, took in (await ask_round(fake, tracker, askers, i)).items():
                        if not result_posted(fake, long_ingest):
                            during[server].append(took)
                    i += 1
                await fake.wait_until(lambda: result_posted(fake, long_ingest), 1800)
                ingest_s = time.perf_counter() - started
                during_lag = lag.max
                await lag.stop()
    finally:
        await fake.stop()
    for server in ("A", "B"):
        base = percentile([x * 1000 for x in idle[server]], 50)
        rows.append(summary("idle", server, idle[server], base))
        rows.append(summary("during the ingest in A", server, during[server], base))
    table = md_table(
        ["phase", "server", "questions", "p50 ms", "p95 ms", "max ms", "p50 / idle p50"], rows
    )
    return (
        f"# Answers during a long ingest ({args.paragraphs}-paragraph document in A, "
        f"{ingest_s:.1f} s to ingest)\n\n{table}\n\n"
        f"Event loop's worst lag: idle {idle_lag * 1000:.0f} ms, during the ingest "
        f"{during_lag * 1000:.0f} ms.\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=10, help="Idle rounds (A then B).")
    parser.add_argument("--paragraphs", type=int, default=150, help="Size of the long document.")
    parser.add_argument("--max-during", type=int, default=200, help="Most rounds during it.")
    args = parser.parse_args()
    text = asyncio.run(run(args))
    print(text)
    print("written to", save("ingest_vs_answers.md", text))


if __name__ == "__main__":
    main()
