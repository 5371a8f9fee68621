"""Benchmark 3: ingest throughput beside the embedding model's raw throughput, one run.

Ingests the first N SQuAD paragraphs into a fresh data directory, then embeds exactly the
texts that ingest embedded (every sentence and every chunk) with the model alone
(``embedder.raw_passages``, which bypasses the embedder's vector cache). The ratio says how
much loading, chunking, sentence splitting and Chroma writes add to the model's own cost.
Writes bench/out/ingest_throughput.md.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import SQUAD, md_table, save

from evaluation.runner import open_pipeline
from evaluation.squad import load_squad
from qabot.settings import Settings
from retrieval.indexer import prepare
from retrieval.loaders import load_paths


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--docs", type=int, default=40, help="paragraphs to ingest")
    args = parser.parse_args()
    data = load_squad(SQUAD)
    with tempfile.TemporaryDirectory(prefix="qabot-ingest-") as tmp:
        docs = Path(tmp) / "docs"
        docs.mkdir()
        for name in list(data.documents)[: args.docs]:
            (docs / name).write_text(data.documents[name], encoding="utf-8")
        pipeline = open_pipeline(
            Settings(qabot_data_dir=Path(tmp) / "data", _env_file=None), "ingest-bench"
        )
        embedder = pipeline.embedder
        embedder.passages(["warm-up sentence for the model."])
        pipeline.store.count()
        t0 = time.perf_counter()
        report = pipeline.ingest([docs])
        ingest_s = time.perf_counter() - t0
        texts: list[str] = []
        for result in load_paths([docs]):
            assert result.document is not None
            p = prepare(
                result.document,
                pipeline.settings.qabot_chunk_tokens,
                pipeline.settings.qabot_chunk_overlap,
            )
            texts += [result.document.text[s:e] for s, e in p.sentences]
            texts += [c.text for c in p.chunks]
        t1 = time.perf_counter()
        # The embedder caches passage vectors: measure the model itself, uncached.
        raw = getattr(embedder, "raw_passages", embedder.passages)
        raw(texts)
        raw_s = time.perf_counter() - t1
    n_docs = len(report.added)
    rows = [
        [
            "ingest (load, chunk, split, embed, write)",
            n_docs,
            len(texts),
            ingest_s,
            len(texts) / ingest_s,
            n_docs / ingest_s,
        ],
        [
            "model alone (embedder.raw_passages), same texts",
            n_docs,
            len(texts),
            raw_s,
            len(texts) / raw_s,
            n_docs / raw_s,
        ],
    ]
    table = md_table(
        ["step", "documents", "texts embedded", "seconds", "texts/s", "documents/s"], rows
    )
    table += (
        f"\n\nIngest takes {ingest_s / raw_s:.2f}x the raw embedding time "
        f"({report.chunks_written} chunks and {len(texts) - report.chunks_written} sentences)."
    )
    print(table)
    save("ingest_throughput.md", table + "\n")


if __name__ == "__main__":
    main()
