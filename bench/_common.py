"""Shared helpers of the benchmarks: the cached SQuAD collection, RSS and markdown tables."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
CACHE = OUT / "cache"  # data directory reused between benchmark runs (gitignored)
SQUAD = Path(os.environ.get("QABOT_SQUAD", ROOT.parent / "shared/data/squad2-dev-5-articles.json"))

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from answering.pipeline import Pipeline  # noqa: E402
from evaluation.runner import ingest, open_pipeline  # noqa: E402
from evaluation.squad import SquadSet, load_squad  # noqa: E402
from qabot.settings import Settings  # noqa: E402
from retrieval.collection_record import WITH_PREVIOUS  # noqa: E402


def squad_pipeline(data_dir: Path = CACHE, cache_size: int = 4) -> tuple[Pipeline, SquadSet]:
    """The SQuAD slice ingested once into ``data_dir`` (later runs find it unchanged);
    ``cache_size`` query vectors are remembered (see ``evaluation.runner.QueryCache``)."""
    data = load_squad(SQUAD)
    docs = data.write_documents(data.cache_dir(data_dir))
    settings = Settings(qabot_data_dir=data_dir, _env_file=None)
    pipeline = open_pipeline(settings, data.collection, cache_size)
    if pipeline.store.leaning_sentences != WITH_PREVIOUS:
        # A cache built before leaning sentences were embedded with the one before keeps
        # its way for good: the figures would be of the old way. Built again, the new way.
        pipeline.ingest([docs], rebuild=True)
    ingest(pipeline, [docs])
    return pipeline, data


def rss_mb() -> float:
    """Resident set size of this process in MB (Linux /proc)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def md_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A markdown table; floats below 1.5 get 3 decimals, larger ones 1."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:.3f}" if abs(v) < 1.5 else f"{v:.1f}"
        return "n/a" if v is None else str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def save(name: str, text: str) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    path = OUT / name
    path.write_text(text, encoding="utf-8")
    return path
