"""Hybrid search: BM25 and two dense signals fused on standardised scores, overlaps merged.

Why score fusion rather than rank fusion: each signal is z-normalised over the candidate set
of the query, so a passage that one signal rates far above the rest keeps that margin, which
reciprocal-rank fusion throws away. The dense signal has two grains, the whole chunk and its
best sentence, because a question usually matches one sentence and a long chunk dilutes it.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from qabot.types import Chunk, Hit
from retrieval.collection_record import EMBEDDED
from retrieval.embeddings import TextEmbedder
from retrieval.lexical import LexicalIndex
from retrieval.store import SentenceRecord, Store

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


class Corpus:
    """Every chunk of a collection held in memory, with its BM25 index, for one revision.

    It also holds where every sentence is (not its vector), so that finding the sentences of
    a retrieved passage is a bisection here rather than a filtered query to the store.
    """

    def __init__(
        self,
        chunks: list[Chunk],
        revision: str = "",
        sentences: list[SentenceRecord] | None = None,
    ) -> None:
        self.revision = revision
        self.chunks = chunks
        self.position = {c.id: i for i, c in enumerate(chunks)}
        self.lexical = LexicalIndex([c.text for c in chunks])
        by_source: dict[str, list[Chunk]] = defaultdict(list)
        for c in chunks:
            by_source[c.source].append(c)
        self.by_source = {s: sorted(cs, key=lambda c: c.start) for s, cs in by_source.items()}
        self._starts = {s: [c.start for c in cs] for s, cs in self.by_source.items()}
        sentences_by_source: dict[str, list[SentenceRecord]] = defaultdict(list)
        for record in sentences or ():
            sentences_by_source[record.source].append(record)
        self._sentences = {
            s: sorted(rs, key=lambda r: r.start) for s, rs in sentences_by_source.items()
        }
        self.sentence_by_id = {r.id: r for r in sentences or ()}
        # Sentences of a document do not overlap, so their ends rise with their starts.
        self._sentence_ends = {s: [r.end for r in rs] for s, rs in self._sentences.items()}

    def sentences_in(self, source: str, start: int, end: int) -> list[SentenceRecord]:
        """The sentences of ``source`` that overlap ``[start, end)``, in document order."""
        records = self._sentences.get(source, [])
        i = bisect.bisect_right(self._sentence_ends.get(source, []), start)
        out = []
        for record in records[i:]:
            if record.start >= end:
                break
            out.append(record)
        return out

    def sentence_before(self, source: str, start: int) -> SentenceRecord | None:
        """The sentence of ``source`` that ends last before ``start``, if there is one."""
        i = bisect.bisect_right(self._sentence_ends.get(source, []), start) - 1
        return self._sentences[source][i] if i >= 0 else None

    def sentence_after(self, source: str, end: int) -> SentenceRecord | None:
        """The sentence of ``source`` that starts first at or after ``end``, if there is one."""
        records = self._sentences.get(source, [])
        i = bisect.bisect_left(self._sentence_ends.get(source, []), end + 1)
        while i < len(records) and records[i].start < end:
            i += 1
        return records[i] if i < len(records) else None

    def chunks_overlapping(self, source: str, start: int, end: int) -> list[Chunk]:
        chunks = self.by_source.get(source, [])
        i = max(0, bisect.bisect_right(self._starts.get(source, []), start) - 1)
        out = []
        for c in chunks[max(0, i - 2) :]:
            if c.start >= end:
                break
            if c.end > start:
                out.append(c)
        return out

    def text(self, source: str, start: int, end: int) -> str | None:
        """The document's text in ``[start, end)``, stitched from its (tiling) chunks."""
        parts: list[str] = []
        pos = start
        for c in self.chunks_overlapping(source, start, end):
            if c.start > pos:
                return None  # a gap: the span is not fully stored
            if c.end > pos:
                parts.append(c.text[pos - c.start : min(end, c.end) - c.start])
                pos = min(end, c.end)
            if pos >= end:
                break
        return "".join(parts) if pos >= end else None


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
        if not corpus.chunks:
            return Retrieval([], None)
        pool = max(50, 10 * k)
        lexical = corpus.lexical.scores(question) if mode != "dense" else None
        qvec = self.embedder.query(question) if mode != "lexical" else None

        candidates: set[int] = set()
        chunk_sim: dict[int, float] = {}
        sent_best: dict[int, float] = {}
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
            for chunk_id, sim in self.store.nearest("chunks", qvec, min(pool, len(corpus.chunks))):
                i = corpus.position.get(chunk_id)
                if i is not None:  # None: stored after this corpus was read
                    chunk_sim[i] = sim
                    candidates.add(i)
            n_sentences = min(2 * pool, len(corpus.sentence_by_id))
            for sentence_id, sim in self.store.nearest("sentences", qvec, n_sentences):
                record = corpus.sentence_by_id.get(sentence_id)
                if record is None:
                    continue
                sentence_sims[sentence_id] = sim
                for c in corpus.chunks_overlapping(record.source, record.start, record.end):
                    i = corpus.position[c.id]
                    if sim > sent_best.get(i, -1.0):
                        sent_best[i] = sim
                    candidates.add(i)
        if not candidates:
            return Retrieval([], qvec, sentence_sims)

        idx = np.fromiter(candidates, dtype=np.int64)
        fused = np.zeros(len(idx), dtype=np.float64)
        weights = fusion_weights(self.store.chunk_vectors)
        if lexical is not None:
            fused += weights["lexical"] * _zscores(lexical[idx].astype(np.float64))
        if qvec is not None:
            # Chunks outside a dense top list get that list's lowest score: all we know is
            # that they rank below it.
            floor_c = min(chunk_sim.values(), default=0.0)
            floor_s = min(sentence_sims.values(), default=0.0)
            by_chunk = np.array([chunk_sim.get(int(i), floor_c) for i in idx])
            by_sentence = np.array([sent_best.get(int(i), floor_s) for i in idx])
            fused += weights["chunk"] * _zscores(by_chunk)
            fused += weights["sentence"] * _zscores(by_sentence)
        order = np.argsort(-fused, kind="stable")
        ranked = [(corpus.chunks[int(idx[j])], float(fused[j])) for j in order[: 3 * k]]
        return Retrieval(merge_overlapping(ranked, corpus)[:k], qvec, sentence_sims)


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
        ids = [c.id for c in corpus.chunks_overlapping(src, s, e)]
        hits.append(
            Hit(Chunk(ids[0] if len(ids) == 1 else "+".join(ids), src, s, e, text), score, rank)
        )
    return hits
