"""What embedding leaning sentences with the one before costs an ingest.

A sentence that leans on the one before ("His predecessor, ...") is embedded twice in a
collection that records ``with-previous`` (the default for a new one): alone, and with the
sentence it leans on (:func:`retrieval.sentences.stated_span`). This ingests the SQuAD slice's
paragraphs into fresh data directories, once each way, in one run, alternating which goes
first over ``--rounds`` rounds, and reports the wall time, the texts the model embedded and the
rows written, as ratios against ``alone``. Writes bench/out/leaning_ingest.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from _common import SQUAD, md_table, save

from answering.pipeline import Pipeline
from evaluation.squad import load_squad
from qabot.settings import Settings
from retrieval.collection_record import ALONE, WITH_PREVIOUS
from retrieval.embeddings import Embedder
from retrieval.store import Store, open_client


def ingest(way: str, docs: Path) -> dict[str, float]:
    """Ingest ``docs`` into a fresh collection that embeds leaning sentences ``way``."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        # An empty collection records the way it is opened with first; the pipeline keeps it.
        Store(open_client(data), "default", leaning_sentences=way)
        embedder = Embedder()  # its own cache: every text it embeds is counted
        pipeline = Pipeline(Settings(qabot_data_dir=data, _env_file=None), embedder=embedder)
        assert pipeline.store.leaning_sentences == way
        began = time.perf_counter()
        pipeline.ingest([docs])
        seconds = time.perf_counter() - began
        return {
            "seconds": seconds,
            "embedded": embedder.embedded,
            "sentence rows": pipeline.store.sentences.count(),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    data = load_squad(SQUAD)
    with tempfile.TemporaryDirectory() as tmp:
        docs = data.write_documents(Path(tmp) / "docs")
        runs: dict[str, list[dict[str, float]]] = {ALONE: [], WITH_PREVIOUS: []}
        for r in range(args.rounds):
            order = (ALONE, WITH_PREVIOUS) if r % 2 == 0 else (WITH_PREVIOUS, ALONE)
            for way in order:
                runs[way].append(ingest(way, docs))
    best = {way: min(results, key=lambda x: x["seconds"]) for way, results in runs.items()}
    base = best[ALONE]
    rows = [
        [
            way,
            f"{b['seconds']:.1f}",
            f"{b['seconds'] / base['seconds']:.2f}",
            int(b["embedded"]),
            f"{b['embedded'] / base['embedded']:.2f}",
            int(b["sentence rows"]),
        ]
        for way, b in best.items()
    ]
    table = md_table(
        ["leaning sentences", "ingest s (best)", "x alone", "texts embedded", "x alone", "rows"],
        rows,
    )
    print(table)
    save("leaning_ingest.md", table + "\n")
    save("leaning_ingest.json", json.dumps({"rounds": args.rounds, "runs": runs}, indent=1))


if __name__ == "__main__":
    main()
