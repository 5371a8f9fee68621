"""Benchmark 1: retrieval ablation on the SQuAD slice, paragraph-level hit@1, hit@5, MRR@10.

Every answerable question is ranked ten deep by each retriever (lexical, dense, hybrid) and by
hybrid variants with other fusion weights (patched at run time, not changed in the code).
Query vectors are computed once and shared by all runs, so "ms" is the search without the
question's embedding. Writes bench/out/retrieval_ablation.{md,svg,json}.
"""

from __future__ import annotations

import json
import sys
import time
from contextlib import contextmanager

from _common import OUT, md_table, save, squad_pipeline

from evaluation.runner import rank_one
from evaluation.svg import bar_chart
from qabot.stats import percentile
from retrieval import search
from retrieval.collection_record import EMBEDDED

VARIANTS = {  # name: (mode, weights or None for the code's own)
    "lexical (BM25)": ("lexical", None),
    "dense (e5 chunk + sentence)": ("dense", None),
    "hybrid (default 0.3/0.35/0.35)": ("hybrid", None),
    "hybrid, no sentence signal (0.3/0.7/0)": ("hybrid", (0.3, 0.7, 0.0)),
    "hybrid, no chunk signal (0.3/0/0.7)": ("hybrid", (0.3, 0.0, 0.7)),
    "hybrid 0.2/0.4/0.4": ("hybrid", (0.2, 0.4, 0.4)),
    "hybrid 0.4/0.3/0.3": ("hybrid", (0.4, 0.3, 0.3)),
    "hybrid 0.3/0.25/0.45": ("hybrid", (0.3, 0.25, 0.45)),
}
#: For a collection whose chunk vectors are derived from its sentences' (the default), the
#: chunk signal's weight goes to the sentence signal (``search.fusion_weights``): only the
#: lexical / dense balance can vary.
DERIVED_VARIANTS = {
    "lexical (BM25)": ("lexical", None),
    "dense (e5 best sentence; chunk vectors find candidates)": ("dense", None),
    "hybrid (default 0.3 lexical / 0.7 sentence)": ("hybrid", None),
    "hybrid 0.2 / 0.8": ("hybrid", (0.2, 0.0, 0.8)),
    "hybrid 0.4 / 0.6": ("hybrid", (0.4, 0.0, 0.6)),
}


@contextmanager
def weights(w: tuple[float, float, float] | None):
    saved = dict(search.WEIGHTS)
    if w is not None:
        search.WEIGHTS.update(lexical=w[0], chunk=w[1], sentence=w[2])
    try:
        yield
    finally:
        search.WEIGHTS.clear()
        search.WEIGHTS.update(saved)


def paragraph_ranks(retrieved: list[dict], gold: str) -> int | None:
    """Rank of the gold paragraph among distinct retrieved paragraphs."""
    seen: list[str] = []
    for hit in retrieved:
        if hit["source"] not in seen:
            seen.append(hit["source"])
    for rank, source in enumerate(seen, 1):
        if source.endswith("/" + gold):
            return rank
    return None


def main() -> None:
    t0 = time.perf_counter()
    pipeline, data = squad_pipeline(cache_size=100_000)
    items = [i for i in data.items if i.answerable]
    print(
        f"{len(data.documents)} paragraphs, {len(items)} answerable questions, "
        f"{len(pipeline.corpus().chunks)} chunks (ready in {time.perf_counter() - t0:.0f} s)"
    )
    t1 = time.perf_counter()
    for item in items:
        pipeline.embedder.query(item.question)
    embed_ms = (time.perf_counter() - t1) * 1000 / len(items)
    rows, results = [], {}
    derived = pipeline.store.chunk_vectors != EMBEDDED
    print(f"chunk vectors: {pipeline.store.chunk_vectors}")
    for name, (mode, w) in (DERIVED_VARIANTS if derived else VARIANTS).items():
        with weights(w):
            runs = [rank_one(pipeline, item, mode) for item in items]  # type: ignore[arg-type]
        ranks = [paragraph_ranks(r.retrieved, r.item.sources[0]) for r in runs]
        n = len(ranks)
        m = {
            "hit@1": sum(k == 1 for k in ranks) / n,
            "hit@5": sum(k is not None and k <= 5 for k in ranks) / n,
            "mrr@10": sum(1 / k for k in ranks if k and k <= 10) / n,
            "ms_p50": percentile([r.latency_ms for r in runs], 50),
        }
        results[name] = m
        rows.append([name, m["hit@1"], m["hit@5"], m["mrr@10"], m["ms_p50"]])
        print(f"  {name}: {m}")
    table = md_table(["retriever", "hit@1", "hit@5", "MRR@10", "search ms p50"], rows)
    table += f"\n\nQuery embedding (e5-small, one question): {embed_ms:.1f} ms on average."
    print(table)
    save("retrieval_ablation.md", table + "\n")
    save("retrieval_ablation.json", json.dumps(results, indent=2))
    plot(results)


def plot(results: dict[str, dict[str, float]]) -> None:
    save(
        "retrieval_ablation.svg",
        bar_chart(
            ["hit@1", "hit@5", "MRR@10"],
            {k: [v["hit@1"], v["hit@5"], v["mrr@10"]] for k, v in results.items()},
            "SQuAD slice: paragraph-level retrieval (axis from 0.8)",
            y_min=0.8,
            width=1000,
            height=340,
        ),
    )


if __name__ == "__main__":
    if sys.argv[1:] == ["--plot-only"]:  # redraw the figure from the last run's JSON
        plot(json.loads((OUT / "retrieval_ablation.json").read_text()))
    else:
        main()
