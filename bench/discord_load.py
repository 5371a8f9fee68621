"""Benchmark: many questions at once through Discord (the real bot against the fake Discord).

For each load (default 200 and 500 questions) a fresh bot is started against
``tests/fake_discord`` with the real offline pipeline over the seed documents; every question
comes from a different member (so the per-user cooldown refuses none) and mentions the bot in
the channel, all sent as fast as the fake gateway delivers them (or spread over
``--spread-ms``). Reported per load: questions, answered (answers and abstentions), refused
(the "try again" reply when DISCORD_MAX_IN_FLIGHT is full), p50/p95 answer latency as the user
sees it (question sent -> the bot's last message about it), the event loop's worst lag (a
coroutine sleeping 10 ms, woken late; also without the time the kernel kept the loop's
thread waiting for a CPU, which an overloaded machine adds to any process), the longest
garbage-collector pause, and the process RSS before/after. ``--slow-ms`` adds a
blocking delay to each answer, like a slower model would. Writes bench/out/discord_load.md.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import ROOT, md_table, rss_mb, save

from answering.pipeline import Pipeline
from evaluation.gold import load_gold
from qabot.settings import Settings
from qabot.stats import percentile
from tests.fake_discord import FakeDiscord
from tests.fake_discord.harness import (
    CountingPipeline,
    GcPauses,
    LoopLag,
    Tracker,
    ask_all,
    discord_pointed_at,
    running_bot,
)

DATA = ROOT / "bench" / "out" / "cache"


class ErrorCount(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


async def one_load(
    pipeline: Pipeline, questions: list[str], n: int, args: argparse.Namespace
) -> dict[str, Any]:
    measured = CountingPipeline(pipeline, delay=args.slow_ms / 1000)
    errors = ErrorCount()
    for name in ("discord", "bot"):
        logging.getLogger(name).addHandler(errors)
    fake = FakeDiscord()
    await fake.start()
    try:
        with (
            discord_pointed_at(fake),
            tempfile.TemporaryDirectory() as tmp,
        ):
            async with running_bot(
                fake,
                measured,
                Path(tmp),
                discord_max_in_flight=args.max_in_flight,
                discord_max_waiting=args.max_waiting,
            ):
                tracker = Tracker(fake)
                warm = [(fake.new_member(f"warm{i}"), questions[i]) for i in range(4)]
                await ask_all(fake, tracker, warm)
                await tracker.wait(timeout=600)
                measured.max_running = 0
                gc.collect()
                rss_before = rss_mb()
                users = [fake.new_member(f"user{i}") for i in range(n)]
                lag = LoopLag()
                with GcPauses() as pauses:
                    lag.start()
                    started = time.perf_counter()
                    asked = []
                    for i, user in enumerate(users):
                        question = questions[i % len(questions)]
                        asked += await ask_all(fake, tracker, [(user, question)])
                        if args.spread_ms:
                            await asyncio.sleep(args.spread_ms / 1000 / n)
                    await tracker.wait(timeout=args.timeout)
                    wall = time.perf_counter() - started
                    await lag.stop()
                gc.collect()
                rss_after = rss_mb()
    finally:
        await fake.stop()
        for name in ("discord", "bot"):
            logging.getLogger(name).removeHandler(errors)
    answered = [o for o in asked if o.kind in ("answer", "abstain")]
    refused = [o for o in asked if o.kind == "busy"]
    latencies = [o.latency * 1000 for o in answered]
    return {
        "questions": n,
        "answered": len(answered),
        "refused": len(refused),
        "lost": n - len(answered) - len(refused),
        "errors": errors.count,
        "max_in_flight": args.max_in_flight,
        "max_answering": measured.max_running,
        "p50_ms": percentile(latencies, 50),
        "p95_ms": percentile(latencies, 95),
        "wall_s": wall,
        "max_lag_ms": lag.max * 1000,
        "max_own_lag_ms": lag.own_max * 1000,
        "worst_lags_ms": lag.worst(),
        "worst_own_lag_ms": lag.worst_own(),
        "max_gc_pause_ms": pauses.max * 1000,
        "rss_before_mb": rss_before,
        "rss_after_mb": rss_after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--questions", type=int, nargs="+", default=[200, 500])
    parser.add_argument("--max-in-flight", type=int, default=4)
    parser.add_argument(
        "--max-waiting", type=int, default=100, help="DISCORD_MAX_WAITING (its default: 100)"
    )
    parser.add_argument("--spread-ms", type=float, default=0, help="spread the sends over this")
    parser.add_argument("--slow-ms", type=float, default=0, help="extra blocking time per answer")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait per load")
    args = parser.parse_args()

    settings = Settings(qabot_data_dir=DATA, _env_file=None, qabot_seeds=ROOT / "seeds")
    pipeline = Pipeline(settings, collection="seeds-bench")
    pipeline.ingest([ROOT / "seeds"])  # a no-op when already there
    questions = [i.question for i in load_gold(ROOT / "tests" / "gold" / "seeds.jsonl")]
    results = [asyncio.run(one_load(pipeline, questions, n, args)) for n in args.questions]

    headers = [
        "questions",
        "answered",
        "refused",
        "lost",
        "p50 ms",
        "p95 ms",
        "wall s",
        "max loop lag ms",
        "of it, not waiting for a CPU",
        "longest GC pause ms",
        "RSS MB (before -> after)",
    ]
    rows = [
        [
            r["questions"],
            r["answered"],
            r["refused"],
            r["lost"],
            r["p50_ms"],
            r["p95_ms"],
            r["wall_s"],
            r["max_lag_ms"],
            r["max_own_lag_ms"],
            r["max_gc_pause_ms"],
            f"{r['rss_before_mb']:.0f} -> {r['rss_after_mb']:.0f}",
        ]
        for r in results
    ]
    note = (
        f"DISCORD_MAX_IN_FLIGHT={args.max_in_flight}, DISCORD_MAX_WAITING={args.max_waiting}, "
        f"spread {args.spread_ms:g} ms, "
        f"extra {args.slow_ms:g} ms per answer; at most "
        f"{max(r['max_answering'] for r in results)} answers ran at once; "
        f"{sum(r['errors'] for r in results)} errors logged."
    )
    table = md_table(headers, rows)
    print(table)
    print()
    print(note)
    save("discord_load.md", f"{table}\n\n{note}\n")
    save("discord_load.json", json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
