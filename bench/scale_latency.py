"""Benchmark 4: query latency and memory at 1k, 10k and 100k chunks.

Embedding 100k chunks at ~40 texts/s would take hours, so the big collections are built from
the SQuAD slice's stored vectors: every chunk and sentence (text, metadata, vector) is copied
under a new source name (``repNNNN/<paragraph>``) with its vector perturbed by Gaussian noise
and re-normalised, and written straight through ``retrieval.store.Store.upsert``. The
pipeline then builds its corpus (BM25 and all) from the store as usual: once, as an ingest
would, into the revision's snapshot ("snapshot s"). Each size is then measured in a fresh
process (``--measure``), so that its figures hold that collection alone: the time to open the
corpus ("corpus s"), the resident memory after the questions ("RSS MB", the process's VmRSS,
memory-mapped pages it touched included), and the same sample of SQuAD questions asked warm:
retrieval alone (``HybridSearcher.search``, query embedding included) and the whole answer
(``Pipeline.ask``). Writes bench/out/scale_latency.*.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time

import numpy as np
from _common import OUT, SQUAD, md_table, rss_mb, save, squad_pipeline

from evaluation.runner import open_pipeline
from evaluation.squad import load_squad
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


def data_dir_of(size: int):  # type: ignore[no-untyped-def]
    return OUT / "scale" / str(size)


def questions_of(n: int) -> list[str]:
    data = load_squad(SQUAD)
    rng = np.random.default_rng(0)
    answerable = [i.question for i in data.items if i.answerable]
    return [answerable[i] for i in rng.choice(len(answerable), n, False)]


def prepare(size: int, rng: np.random.Generator) -> dict:
    """Build the collection of ``size`` chunks if it is not there, then its corpus snapshot
    (what the ingest that wrote it would have done), in this process."""
    # Built once and kept under bench/out/ (gitignored): later runs only measure.
    settings = Settings(qabot_data_dir=data_dir_of(size), _env_file=None)
    pipeline = open_pipeline(settings, f"scale-{size}")
    t0 = time.perf_counter()
    if pipeline.store.count() != size:
        base_pipeline, _ = squad_pipeline()
        pipeline.store.delete("chunks", pipeline.store.chunks.get(include=[])["ids"])
        pipeline.store.delete("sentences", pipeline.store.sentences.get(include=[])["ids"])
        build(pipeline.store, base_pipeline.store, size, rng)
        bump_revision(settings.data_dir, pipeline.collection)
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    snapshot_s = None
    try:
        from retrieval.snapshot import Snapshots
    except ImportError:  # code from before snapshots: the corpus is read at each load
        pass
    else:
        revision = pipeline._revision()
        if Snapshots(settings.data_dir, pipeline.collection).open(revision) is None:
            pipeline._read_corpus(revision, ingested=True)
            snapshot_s = time.perf_counter() - t1
    return {"build_s": build_s, "snapshot_s": snapshot_s}


def measure_fresh(size: int, n_questions: int) -> dict:
    """``--measure``: this process opens the collection's corpus and asks the questions."""
    rss_start = rss_mb()
    questions = questions_of(n_questions)
    settings = Settings(qabot_data_dir=data_dir_of(size), _env_file=None)
    pipeline = open_pipeline(settings, f"scale-{size}")
    _ = pipeline.store, pipeline.embedder
    rss0 = rss_mb()
    t1 = time.perf_counter()
    n = len(pipeline.corpus().chunks)
    corpus_s = time.perf_counter() - t1
    rss_corpus = rss_mb()
    m = measure(pipeline, questions)
    rss = rss_mb()  # before anything else touches the store: counting its sentences loads them
    return m | {
        "chunks": n,
        "sentences": pipeline.store.sentences.count(),
        "corpus_s": corpus_s,
        "rss_mb": rss,
        "rss_start_mb": rss_start,
        "corpus_rss_mb": rss_corpus - rss0,
        "load_avg": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--questions", type=int, default=60)
    parser.add_argument("--budget", type=float, default=600, help="seconds allowed per build")
    parser.add_argument("--measure", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_fresh(args.measure, args.questions)))
        return
    rng = np.random.default_rng(0)
    rows, points = [], {}
    per_chunk_s = None
    for size in [int(s) for s in args.sizes.split(",")]:
        if per_chunk_s and per_chunk_s * size > args.budget:
            print(f"skip {size}: building would take ~{per_chunk_s * size:.0f} s")
            rows.append([size, None, None, None, None, None, None, None, "skipped (too slow)"])
            continue
        prep = prepare(size, rng)
        per_chunk_s = prep["build_s"] / size
        child = subprocess.run(
            [sys.executable, __file__, "--measure", str(size), "--questions", str(args.questions)],
            check=True,
            capture_output=True,
            text=True,
        )
        m = json.loads(child.stdout.strip().splitlines()[-1]) | prep
        points[size] = m
        print(size, {k: round(v, 1) if isinstance(v, float) else v for k, v in m.items()})
        snap = "" if m["snapshot_s"] is None else f", snapshot {m['snapshot_s']:.1f} s"
        rows.append(
            [
                m["chunks"],
                m["sentences"],
                m["retrieve_p50"],
                m["retrieve_p95"],
                m["answer_p50"],
                m["answer_p95"],
                m["corpus_s"],
                m["rss_mb"],
                f"store {m['build_s']:.0f} s{snap}; load avg {m['load_avg']:.1f}",
            ]
        )
    table = md_table(
        [
            "chunks",
            "sentences",
            "retrieval p50 ms",
            "retrieval p95 ms",
            "answer p50 ms",
            "answer p95 ms",
            "corpus load s",
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
