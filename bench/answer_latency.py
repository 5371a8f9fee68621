"""Benchmark 5: warm answer latency (seeds and SQuAD slice) and cold ``qabot ask`` wall time.

Warm: one pipeline, a warm-up question, then every question once (``Pipeline.ask``, all of
retrieval and answering). Cold: ``qabot ask --collection ...`` in a fresh subprocess over an
already ingested store (imports, model load, store open, one answer). Targets: seeds p95
< 50 ms, SQuAD p95 < 100 ms, cold < 3 s. Writes bench/out/answer_latency.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from _common import CACHE, ROOT, md_table, save, squad_pipeline

from evaluation.gold import load_gold
from evaluation.runner import ingest, open_pipeline
from qabot.settings import Settings
from qabot.stats import percentile


def warm(pipeline, questions: list[str]) -> list[float]:
    pipeline.ask("warm-up " + questions[0])
    out = []
    for q in questions:
        t0 = time.perf_counter()
        pipeline.ask(q)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def cold(data_dir: Path, collection: str, question: str, runs: int) -> list[float]:
    exe = shutil.which("qabot") or str(Path(sys.executable).with_name("qabot"))
    env = os.environ | {"QABOT_DATA_DIR": str(data_dir)}
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(
            [exe, "ask", question, "--collection", collection, "--json"],
            env=env,
            capture_output=True,
            text=True,
            cwd=data_dir,
        )
        out.append((time.perf_counter() - t0) * 1000)
        if done.returncode != 0:
            raise SystemExit(f"qabot ask failed: {done.stderr.strip()[-500:]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--squad-questions", type=int, default=200)
    parser.add_argument("--cold-runs", type=int, default=3)
    args = parser.parse_args()
    seeds = open_pipeline(Settings(qabot_data_dir=CACHE, _env_file=None), "seeds-bench")
    ingest(seeds, [ROOT / "seeds"])
    seed_q = [i.question for i in load_gold(ROOT / "tests" / "gold" / "seeds.jsonl")]
    squad, data = squad_pipeline()
    squad_q = [i.question for i in data.items[: args.squad_questions]]
    rows = []
    for name, pipeline, qs, target in (
        ("seeds (warm)", seeds, seed_q, 50),
        ("SQuAD slice (warm)", squad, squad_q, 100),
    ):
        lat = warm(pipeline, qs)
        p95 = percentile(lat, 95)
        rows.append(
            [
                name,
                len(qs),
                percentile(lat, 50),
                p95,
                max(lat),
                f"< {target}",
                "yes" if p95 < target else "no",
            ]
        )
    c = cold(CACHE, seeds.collection, "When will Russia leave the ISS?", args.cold_runs)
    rows.append(
        [
            "`qabot ask` cold (subprocess, seeds)",
            len(c),
            percentile(c, 50),
            percentile(c, 95),
            max(c),
            "< 3000",
            "yes" if max(c) < 3000 else "no",
        ]
    )
    table = md_table(["case", "questions", "p50 ms", "p95 ms", "max ms", "target", "met"], rows)
    print(table)
    save("answer_latency.md", table + "\n")


if __name__ == "__main__":
    main()
