"""The offline backend: extractive, grounded answers built from retrieved sentences.

For each sentence of the retrieved passages it combines two pieces of evidence:

* **coverage**: the share of the question's content (idf-weighted stemmed terms) that the
  sentence and the passage around it contain. A term the corpus never uses counts against
  every sentence, so a question about something absent from the documents scores low.
* **semantic margin**: how much closer the sentence is to the question than a fixed set of
  unrelated sentences is (e5 cosines are high for any pair of texts; only the margin over
  that background says "related"). This is what lets paraphrased and non-English questions
  be answered.

The best sentence is the answer, with a second one when it adds question content the
first lacks. When neither signal clears its bar the backend abstains.
"""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from answering.absent_names import absent_names
from qabot.types import Citation
from retrieval.embeddings import DIMENSIONS, Embedder
from retrieval.lexical import LexicalIndex, terms
from retrieval.search import Corpus, Retrieval
from retrieval.store import SentenceRecord, Store

ABSTAIN_TEXT = "I couldn't find that in the documents."

# A sentence counts as answering when it covers at least half of the question's content
# (a majority of the idf mass: more matched than missing) ...
MIN_COVERAGE = 0.5
# ... or when it is clearly closer to the question than unrelated text is. e5-small's cosine
# between a question and unrelated sentences is ~0.75-0.80 and between a question and its
# answer sentence ~0.85-0.92: a margin of 0.08 over the background mean sits between them.
MIN_MARGIN = 0.08
# A weaker semantic margin is enough when the passage already covers part of the question.
SUPPORTING_MARGIN = 0.04
SUPPORTING_COVERAGE = 0.3
MAX_SENTENCES = 2
MAX_EXCERPT_CHARS = 600


@dataclass(slots=True)
class Candidate:
    source: str
    start: int
    end: int
    text: str
    similarity: float
    coverage: float
    context_coverage: float
    hit_rank: int

    def score(self, background: float) -> float:
        margin = self.similarity - background
        # Coverage and margin live on different scales; the margin is divided by the
        # "clearly related" bar so that both reach 1.0 at their own threshold.
        return (
            self.coverage
            + min(margin / MIN_MARGIN, 2.0)
            + 0.5 * self.context_coverage
            - 0.05 * (self.hit_rank - 1)
        )


@cache
def _background_sentences() -> tuple[str, ...]:
    text = resources.files("answering").joinpath("background.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


class BackgroundModel:
    """Vectors of unrelated sentences, computed once and cached in the data directory."""

    def __init__(self, embedder: Embedder, cache_dir: Path | None) -> None:
        self._embedder = embedder
        self._cache = cache_dir / "background-e5.npy" if cache_dir else None
        self._vectors: np.ndarray | None = None

    def vectors(self) -> np.ndarray:
        if self._vectors is None:
            sentences = _background_sentences()
            self._vectors = self._load(len(sentences))
            if self._vectors is None:
                self._vectors = self._embedder.passages(list(sentences))
                self._save(self._vectors)
        return self._vectors

    def _load(self, rows: int) -> np.ndarray | None:
        """The cached vectors, or None when there are none that fit (a damaged cache too)."""
        if not self._cache or not self._cache.exists():
            return None
        try:
            cached = np.load(self._cache)
        except (OSError, ValueError, EOFError):
            return None
        return cached if cached.shape == (rows, DIMENSIONS) else None

    def _save(self, vectors: np.ndarray) -> None:
        """Write the cache whole or not at all (a full disk must not leave half a file)."""
        if not self._cache:
            return
        partial = self._cache.with_name(f".{self._cache.name}.{os.getpid()}.tmp")
        try:
            with open(partial, "wb") as f:
                np.save(f, vectors)
            os.replace(partial, self._cache)
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink()

    def similarity(self, query_vector: np.ndarray) -> float:
        return float(np.mean(self.vectors() @ query_vector))


def weighted_terms(question: str, lexical: LexicalIndex) -> dict[str, float]:
    """The question's content terms with their idf weights."""
    return {t: lexical.idf(t) for t in set(terms(question))}


def coverage(weights: dict[str, float], text_terms: set[str]) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(w for t, w in weights.items() if t in text_terms) / total


class OfflineAnswerer:
    """Selects answer sentences from retrieved passages; never writes text of its own."""

    name = "offline"

    def __init__(self, store: Store, corpus: Corpus, background: BackgroundModel) -> None:
        self.store = store
        self.corpus = corpus
        self.background = background

    def candidates(self, question: str, retrieval: Retrieval) -> list[Candidate]:
        weights = weighted_terms(question, self.corpus.lexical)
        out: list[Candidate] = []
        seen: set[tuple[str, int]] = set()
        per_hit = [
            self.corpus.sentences_in(hit.chunk.source, hit.chunk.start, hit.chunk.end)
            for hit in retrieval.hits
        ]
        sims = self._similarities([r for records in per_hit for r in records], retrieval)
        for hit, records in zip(retrieval.hits, per_hit, strict=True):
            context_terms = set(terms(hit.chunk.text))
            ctx_cov = coverage(weights, context_terms)
            previous: set[str] = set()
            for record in records:
                sim = sims.get(record.id, 0.0)
                text = self.corpus.text(record.source, record.start, record.end)
                if not text:
                    continue
                own = set(terms(text))
                own_cov = coverage(weights, own)
                # Pronouns point back ("She described ..."): what only the previous sentence
                # says counts at half weight.
                carried = coverage(weights, own | previous) - own_cov
                previous = own
                key = (record.source, record.start)
                if key in seen:
                    continue
                seen.add(key)
                out.append(
                    Candidate(
                        record.source,
                        record.start,
                        record.end,
                        text,
                        float(sim),
                        own_cov + 0.5 * carried,
                        ctx_cov,
                        hit.rank,
                    )
                )
        return out

    def _similarities(
        self, records: list[SentenceRecord], retrieval: Retrieval
    ) -> dict[str, float]:
        """Cosine of each sentence to the question; search already scored its nearest ones."""
        qvec = retrieval.query_vector
        if qvec is None:
            return {}
        sims = dict(retrieval.sentence_sims)
        missing = list(dict.fromkeys(r.id for r in records if r.id not in sims))
        if missing:
            found = self.store.sentence_vectors(missing) @ qvec
            sims.update(zip(missing, found.tolist(), strict=True))
        return sims

    def answer(self, question: str, retrieval: Retrieval) -> tuple[str, list[Citation], bool]:
        """(answer text with [n] markers, citations, abstained)."""
        if not retrieval.hits:
            return ABSTAIN_TEXT, [], True
        qvec = retrieval.query_vector
        background = self.background.similarity(qvec) if qvec is not None else math.inf
        cands = self.candidates(question, retrieval)
        if not cands:
            return ABSTAIN_TEXT, [], True
        cands.sort(key=lambda c: c.score(background), reverse=True)
        best = cands[0]
        margin = best.similarity - background
        answerable = (
            best.coverage >= MIN_COVERAGE
            or margin >= MIN_MARGIN
            or (margin >= SUPPORTING_MARGIN and best.context_coverage >= SUPPORTING_COVERAGE)
        )
        # Names the documents never mention leave only the lexical evidence standing: a
        # sentence that is merely close in meaning answers a different question.
        if best.coverage < MIN_COVERAGE and absent_names(question, self.corpus.lexical):
            answerable = False
        if not answerable:
            return ABSTAIN_TEXT, [], True
        chosen = [best]
        weights = weighted_terms(question, self.corpus.lexical)
        covered = set(terms(best.text))
        for cand in cands[1:]:
            if len(chosen) >= MAX_SENTENCES:
                break
            new = coverage(weights, covered | set(terms(cand.text))) - coverage(weights, covered)
            # A second sentence must itself cover most of the question (closeness alone only
            # says "same topic"), add question content the first lacks, and be nearly as
            # relevant: otherwise it is noise next to the answer.
            if (
                cand.coverage >= MIN_COVERAGE
                and new > 0.15
                and cand.score(background) >= 0.75 * best.score(background)
            ):
                chosen.append(cand)
                covered |= set(terms(cand.text))
        citations = [Citation(n, c.source, c.start, c.end, c.text) for n, c in enumerate(chosen, 1)]
        text = " ".join(f"{_clip(c.text)} [{n}]" for n, c in enumerate(chosen, 1))
        return text, citations, False


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return (
        text
        if len(text) <= MAX_EXCERPT_CHARS
        else text[: MAX_EXCERPT_CHARS - 1].rsplit(" ", 1)[0] + "…"
    )
