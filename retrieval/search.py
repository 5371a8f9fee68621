"""Hybrid search: BM25 and two dense signals fused on standardised scores, overlaps merged.

Why score fusion rather than rank fusion: each signal is z-normalised over the candidate set
of the query, so a passage that one signal rates far above the rest keeps that margin, which
reciprocal-rank fusion throws away. The dense signal has two grains, the whole chunk and its
best sentence, because a question usually matches one sentence and a long chunk dilutes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from qabot.types import Chunk, Hit
from retrieval.collection_record import EMBEDDED
from retrieval.corpus import Corpus
from retrieval.embeddings import TextEmbedder
from retrieval.store import Store

Mode = Literal["hybrid", "dense", "lexical"]
MODES: tuple[str, ...] = ("hybrid", "dense", "lexical")

# Relative trust in each standardised signal. Lexical gets less because it cannot see
# paraphrase; the two dense grains share the rest equally. (Taken from the recipe in the
# project notes, not fitted to any benchmark.)
WEIGHTS = {"lexical": 0.3, "chunk": 0.35, "sentence": 0.35}


def fusion_weights(chunk_vectors: str) -> dict[str, float]:
    """The weights for a collection whose chunk vectors are made ``chunk_vectors``.

    A chunk vector that is the mean of its sentences' vectors is a function of the sentence
    signal, not evidence of its own: counting it beside them would count the same evidence
    twice. So the dense side keeps its total weight, carried by the sentence signal alone, and
    the chunk vectors only find candidates. (Measured in bench/ingest_throughput.py.)
    """
    if chunk_vectors == EMBEDDED:
        return WEIGHTS
    return {
        "lexical": WEIGHTS["lexical"],
        "chunk": 0.0,
        "sentence": WEIGHTS["chunk"] + WEIGHTS["sentence"],
    }


@dataclass(slots=True)
class Retrieval:
    """The ranked hits and what the answerer may reuse: the query vector and sentence sims."""

    hits: list[Hit]
    query_vector: np.ndarray | None
    sentence_sims: dict[str, float] = field(default_factory=dict)


def _zscores(values: np.ndarray) -> np.ndarray:
    std = float(values.std())
    if std < 1e-9:
        return np.zeros_like(values)
    return (values - float(values.mean())) / std


class HybridSearcher:
    """Ranks the chunks of a corpus for a question."""

    def __init__(self, store: Store, embedder: TextEmbedder, corpus: Corpus) -> None:
        self.store = store
        self.embedder = embedder
        self.corpus = corpus

    def search(self, question: str, k: int = 5, mode: Mode = "hybrid") -> Retrieval:
        corpus = self.corpus
        if not corpus.size:
            return Retrieval([], None)
        pool = max(50, 10 * k)
        lexical = corpus.lexical.scores(question) if mode != "dense" else None
        qvec = self.embedder.query(question) if mode != "lexical" else None

        candidates: set[int] = set()
        chunk_sim: dict[int, float] = {}
        sentence_sims: dict[str, float] = {}
        if lexical is not None:
            # The pool's best, unordered: fully sorting 100k scores costs more than the rest.
            top = (
                np.argpartition(-lexical, pool)[:pool]
                if len(lexical) > pool
                else range(len(lexical))
            )
            candidates.update(int(i) for i in top if lexical[i] > 0)
        if qvec is not None:
            near = self.store.nearest("chunks", qvec, min(pool, corpus.size))
            rows = corpus.position.rows([chunk_id for chunk_id, _ in near])
            for i, (_, sim) in zip(rows.tolist(), near, strict=True):
                if i >= 0:  # -1: stored after this corpus was read
                    chunk_sim[i] = sim
                    candidates.add(i)
        if not candidates:
            return Retrieval([], qvec, sentence_sims)

        idx = np.fromiter(candidates, dtype=np.int64)
        idx.sort()  # a set's order depends on hashing: sorted, ties break the same every run
        fused = np.zeros(len(idx), dtype=np.float64)
        weights = fusion_weights(self.store.chunk_vectors)
        if lexical is not None:
            fused += weights["lexical"] * _zscores(lexical[idx].astype(np.float64))
        if qvec is not None:
            by_sentence, sims = sentence_signal(corpus, idx, qvec)
            # Chunks outside the dense top list get that list's lowest score: all we know is
            # that they rank below it.
            floor_c = min(chunk_sim.values(), default=0.0)
            by_chunk = np.array([chunk_sim.get(int(i), floor_c) for i in idx])
            fused += weights["chunk"] * _zscores(by_chunk)
            fused += weights["sentence"] * _zscores(by_sentence)
        order = np.argsort(-fused, kind="stable")
        top = order[: 3 * k]
        ranked = [(corpus.chunks[int(idx[j])], float(fused[j])) for j in top]
        if qvec is not None:
            # The similarities the answerer will want: those of the ranked chunks' sentences
            # (naming every candidate's sentence would read ids all over the corpus).
            sentence_sims = {
                corpus.sentence_ids.id_of(r): sims[r]
                for j in top
                for r in range(*corpus.chunk_sentence_rows(int(idx[j])))
                if r in sims
            }
        return Retrieval(merge_overlapping(ranked, corpus)[:k], qvec, sentence_sims)


def sentence_signal(
    corpus: Corpus, rows: np.ndarray, qvec: np.ndarray
) -> tuple[np.ndarray, dict[int, float]]:
    """Each candidate chunk's best sentence similarity, and every similarity by sentence row.

    Exact, from the corpus's own sentence vectors (a snapshot's memory map), for just the
    sentences of the candidates: a few hundred rows, next to each other on disk. Asking the
    store's sentence index instead made Chroma hold every sentence vector of the collection
    in memory (350k x 384 float32 is 530 MB at 100k chunks). A chunk without sentences gets
    the lowest similarity found, as a chunk outside a dense top list does.
    """
    spans = [corpus.chunk_sentence_rows(int(i)) for i in rows]
    ranges = [np.arange(lo, hi, dtype=np.int64) for lo, hi in spans if hi > lo]
    wanted = np.unique(np.concatenate(ranges)) if ranges else np.zeros(0, dtype=np.int64)
    if not len(wanted) or not corpus.has_vectors:
        return np.zeros(len(rows)), {}
    sims = corpus.row_vectors(wanted) @ np.asarray(qvec, dtype=np.float32)
    floor = float(sims.min())
    best = np.full(len(rows), floor, dtype=np.float64)
    for j, (lo, hi) in enumerate(spans):
        if hi > lo:
            a, b = np.searchsorted(wanted, [lo, hi])
            best[j] = float(sims[a:b].max())
    return best, dict(zip(wanted.tolist(), sims.tolist(), strict=True))


def merge_overlapping(ranked: list[tuple[Chunk, float]], corpus: Corpus) -> list[Hit]:
    """Merge same-source chunks that overlap into one span; it keeps its best score and rank."""
    merged: list[tuple[str, int, int, float]] = []
    for chunk, score in ranked:
        for j, (src, s, e, sc) in enumerate(merged):
            if src == chunk.source and chunk.start < e and chunk.end > s:
                merged[j] = (src, min(s, chunk.start), max(e, chunk.end), max(sc, score))
                break
        else:
            merged.append((chunk.source, chunk.start, chunk.end, score))
    hits: list[Hit] = []
    for rank, (src, s, e, score) in enumerate(merged, 1):
        text = corpus.text(src, s, e) or ""
        ids = [corpus.position.id_of(r) for r in corpus.chunk_rows_overlapping(src, s, e)]
        hits.append(
            Hit(Chunk(ids[0] if len(ids) == 1 else "+".join(ids), src, s, e, text), score, rank)
        )
    return hits
