"""Benchmark 4: query latency and memory at 1k, 10k and 100k chunks.

Embedding 100k chunks at ~40 texts/s would take hours, so the big collections are built from
the SQuAD slice's stored vectors: every chunk and sentence (text, metadata, vector) is copied
under a new source name (``repNNNN/<paragraph>``) with its vector perturbed by Gaussian noise
and re-normalised, and written straight through ``retrieval.store.Store.upsert``. The
pipeline then builds its corpus (BM25 and all) from the store as usual. Each point asks the
same sample of SQuAD questions: retrieval alone (``HybridSearcher.search``, query embedding
included) and the whole answer (``Pipeline.ask``), warm. Writes bench/out/scale_latency.*.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np
from _common import OUT, md_table, rss_mb, save, squad_pipeline

from evaluation.runner import open_pipeline
from evaluation.svg import line_chart
from qabot.settings import Settings
from qabot.stats import percentile
from retrieval.search import HybridSearcher
from retrieval.store import Store, bump_revision

NOISE = 0.02  # per-dimension std of the perturbation (cosine to the original ~0.93)


def stored(collection, with_documents: bool) -> tuple[list, np.ndarray, list, list]:
    include = ["embeddings", "metadatas"] + (["documents"] if with_documents else [])
    got = collection.get(include=include)
    docs = got["documents"] if with_documents else [None] * len(got["ids"])
    return got["ids"], np.asarray(got["embeddings"], dtype=np.float32), got["metadatas"], docs


def perturb(vectors: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = vectors + rng.normal(0, NOISE, vectors.shape).astype(np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def build(store: Store, base: Store, n_chunks: int, rng: np.random.Generator) -> None:
    """Fill ``store`` with ``n_chunks`` chunks (and their sentences) copied from ``base``."""
    c_ids, c_vec, c_meta, c_docs = stored(base.chunks, True)
    s_ids, s_vec, s_meta, _ = stored(base.sentences, False)
    reps = math.ceil(n_chunks / len(c_ids))
    written = 0
    for r in range(reps):
        take = min(len(c_ids), n_chunks - written)
        prefix = f"rep{r:04d}/"
        sources = {m["source"] for m in c_meta[:take]}
        s_idx = [i for i, m in enumerate(s_meta) if m["source"] in sources]
        store.upsert(
            "sentences",
            [f"{s_ids[i]}-r{r}" for i in s_idx],
            perturb(s_vec[s_idx], rng),
            [s_meta[i] | {"source": prefix + s_meta[i]["source"]} for i in s_idx],
        )
        store.upsert(
            "chunks",
            [f"{cid}-r{r}" for cid in c_ids[:take]],
            perturb(c_vec[:take], rng),
            [m | {"source": prefix + m["source"]} for m in c_meta[:take]],
            c_docs[:take],
        )
        written += take


def measure(pipeline, questions: list[str]) -> dict:
    corpus = pipeline.corpus()
    searcher = HybridSearcher(pipeline.store, pipeline.embedder, corpus)
    pipeline.ask("warm-up " + questions[0])
    retrieve, answer = [], []
    for q in questions:
        t0 = time.perf_counter()
        searcher.search(q, k=pipeline.settings.qabot_top_k)
        retrieve.append((time.perf_counter() - t0) * 1000)
    for q in questions:
        t0 = time.perf_counter()
        pipeline.ask(q + " ")  # a new string: no cached query vector
        answer.append((time.perf_counter() - t0) * 1000)
    return {
        "retrieve_p50": percentile(retrieve, 50),
        "retrieve_p95": percentile(retrieve, 95),
        "answer_p50": percentile(answer, 50),
        "answer_p95": percentile(answer, 95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--budget", type=float, default=600, help="seconds allowed per build")
    args = parser.parse_args()
    base_pipeline, data = squad_pipeline()
    rng = np.random.default_rng(0)
    answerable = [i.question for i in data.items if i.answerable]
    questions = [answerable[i] for i in rng.choice(len(answerable), args.questions, False)]
    rows, points = [], {}
    per_chunk_s = None
    for size in [int(s) for s in args.sizes.split(",")]:
        if per_chunk_s and per_chunk_s * size > args.budget:
            print(f"skip {size}: building would take ~{per_chunk_s * size:.0f} s")
            rows.append([size, None, None, None, None, None, None, "skipped (build too slow)"])
            continue
        # Built once and kept under bench/out/ (gitignored): later runs only measure.
        data_dir = OUT / "scale" / str(size)
        settings = Settings(qabot_data_dir=data_dir, _env_file=None)
        pipeline = open_pipeline(settings, f"scale-{size}")
        t0 = time.perf_counter()
        if pipeline.store.count() != size:
            pipeline.store.delete("chunks", pipeline.store.chunks.get(include=[])["ids"])
            pipeline.store.delete("sentences", pipeline.store.sentences.get(include=[])["ids"])
            build(pipeline.store, base_pipeline.store, size, rng)
            bump_revision(settings.data_dir, pipeline.collection)
        build_s = time.perf_counter() - t0
        per_chunk_s = build_s / size
        rss0 = rss_mb()
        t1 = time.perf_counter()
        n = len(pipeline.corpus().chunks)
        corpus_s = time.perf_counter() - t1
        m = measure(pipeline, questions)
        m |= {
            "chunks": n,
            "sentences": pipeline.store.sentences.count(),
            "build_s": build_s,
            "corpus_s": corpus_s,
            "rss_mb": rss_mb(),
            "corpus_rss_mb": rss_mb() - rss0,
        }
        points[size] = m
        print(size, {k: round(v, 1) for k, v in m.items()})
        rows.append(
            [
                n,
                m["sentences"],
                m["retrieve_p50"],
                m["retrieve_p95"],
                m["answer_p50"],
                m["answer_p95"],
                m["rss_mb"],
                f"store {build_s:.0f} s, corpus {corpus_s:.1f} s",
            ]
        )
        pipeline.store._client.clear_system_cache() if hasattr(
            pipeline.store._client, "clear_system_cache"
        ) else None
    table = md_table(
        [
            "chunks",
            "sentences",
            "retrieval p50 ms",
            "retrieval p95 ms",
            "answer p50 ms",
            "answer p95 ms",
            "RSS MB",
            "build",
        ],
        rows,
    )
    print(table)
    save("scale_latency.md", table + "\n")
    save("scale_latency.json", json.dumps(points, indent=2))
    sizes = sorted(points)
    save(
        "scale_latency.svg",
        line_chart(
            sizes,
            {
                "retrieval p95": [points[s]["retrieve_p95"] for s in sizes],
                "answer p95": [points[s]["answer_p95"] for s in sizes],
                "retrieval p50": [points[s]["retrieve_p50"] for s in sizes],
                "answer p50": [points[s]["answer_p50"] for s in sizes],
            },
            "Query latency by collection size (warm)",
            x_label="chunks (log scale)",
            y_label="ms",
            log_x=True,
        ),
    )


if __name__ == "__main__":
    main()
