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
first lacks. When the evidence is too weak (``answering.abstention``) it abstains.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from answering.abstention import ABSTAIN_TEXT, MIN_COVERAGE, MIN_MARGIN, answerable
from answering.answerer import AnswerRequest, Draft, SentenceVectors, Streaming
from answering.background import BackgroundModel
from qabot.types import Citation, Turn
from retrieval.embeddings import TextEmbedder
from retrieval.lexical import LexicalIndex, terms
from retrieval.search import Corpus, Retrieval
from retrieval.store import SentenceRecord

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


def weighted_terms(question: str, lexical: LexicalIndex) -> dict[str, float]:
    """The question's content terms with their idf weights."""
    return {t: lexical.idf(t) for t in set(terms(question))}


def coverage(weights: dict[str, float], text_terms: set[str]) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    return sum(w for t, w in weights.items() if t in text_terms) / total


class ExtractiveAnswerer:
    """Selects answer sentences from retrieved passages; never writes text of its own."""

    name = "offline"
    streams = False

    def __init__(self, embedder: TextEmbedder, cache_dir: Path | None) -> None:
        self.background = BackgroundModel(embedder, cache_dir)

    def standalone(self, question: str, history: Sequence[Turn]) -> str | None:
        return None  # it cannot rewrite text; the search reads the history instead

    def stream(self, request: AnswerRequest) -> Streaming[Draft]:
        draft = self.answer(request)
        return Streaming.of(draft, draft.text)

    def answer(self, request: AnswerRequest) -> Draft:
        question, retrieval, corpus = request.question, request.retrieval, request.corpus
        if not retrieval.hits:
            return Draft(ABSTAIN_TEXT, abstained=True)
        qvec = retrieval.query_vector
        background = self.background.similarity(qvec) if qvec is not None else math.inf
        cands = candidates(question, retrieval, corpus, request.vectors)
        if not cands:
            return Draft(ABSTAIN_TEXT, abstained=True)
        cands.sort(key=lambda c: c.score(background), reverse=True)
        best = cands[0]
        if not answerable(
            question,
            corpus.lexical,
            coverage=best.coverage,
            margin=best.similarity - background,
            context_coverage=best.context_coverage,
        ):
            return Draft(ABSTAIN_TEXT, abstained=True)
        chosen = [best]
        weights = weighted_terms(question, corpus.lexical)
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
        return Draft(text, citations)


def candidates(
    question: str, retrieval: Retrieval, corpus: Corpus, vectors: SentenceVectors | None
) -> list[Candidate]:
    """Every sentence of the retrieved passages, scored against ``question``."""
    weights = weighted_terms(question, corpus.lexical)
    out: list[Candidate] = []
    seen: set[tuple[str, int]] = set()
    per_hit = [
        corpus.sentences_in(hit.chunk.source, hit.chunk.start, hit.chunk.end)
        for hit in retrieval.hits
    ]
    sims = _similarities([r for records in per_hit for r in records], retrieval, vectors)
    for hit, records in zip(retrieval.hits, per_hit, strict=True):
        ctx_cov = coverage(weights, set(terms(hit.chunk.text)))
        previous: set[str] = set()
        for record in records:
            text = corpus.text(record.source, record.start, record.end)
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
                    float(sims.get(record.id, 0.0)),
                    own_cov + 0.5 * carried,
                    ctx_cov,
                    hit.rank,
                )
            )
    return out


def _similarities(
    records: list[SentenceRecord], retrieval: Retrieval, vectors: SentenceVectors | None
) -> dict[str, float]:
    """Cosine of each sentence to the question; search already scored its nearest ones."""
    qvec = retrieval.query_vector
    if qvec is None:
        return {}
    sims = dict(retrieval.sentence_sims)
    missing = list(dict.fromkeys(r.id for r in records if r.id not in sims))
    if missing and vectors is not None:
        found = np.asarray(vectors.sentence_vectors(missing) @ qvec)
        sims.update(zip(missing, found.tolist(), strict=True))
    return sims


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return (
        text
        if len(text) <= MAX_EXCERPT_CHARS
        else text[: MAX_EXCERPT_CHARS - 1].rsplit(" ", 1)[0] + "…"
    )
