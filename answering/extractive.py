"""The offline backend: extractive, grounded answers built from retrieved sentences.

For each sentence of the retrieved passages it combines two pieces of evidence:

* **coverage**: the share of the question's content (idf-weighted stemmed terms) that the
  sentence and the passage around it contain. A term the corpus never uses counts against
  every sentence, so a question about something absent from the documents scores low.
* **semantic margin**: how much closer the sentence is to the question than a fixed set of
  unrelated sentences is (e5 cosines are high for any pair of texts; only the margin over
  that background says "related"). This is what lets paraphrased and non-English questions
  be answered.

A sentence that leans on the one before it ("It was approved by ...") is scored as the pair.
The best sentence is the answer, with a second one when it adds question content the
first lacks. When the evidence is too weak (``answering.abstention``) it abstains.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from answering.abstention import (
    ABSTAIN_TEXT,
    MIN_COVERAGE,
    MIN_MARGIN,
    answerable,
    near_miss,
)
from answering.answerer import AnswerRequest, Draft, SentenceVectors, Streaming
from answering.asked import Kind, agents, asked_kind, has_kind
from answering.background import BackgroundModel
from answering.languages import function_words, is_english, words_of
from answering.short import only_span, short_answer
from qabot.types import Citation, Turn
from retrieval.corpus import Corpus
from retrieval.embeddings import TextEmbedder
from retrieval.lexical import LexicalIndex, terms
from retrieval.search import Retrieval
from retrieval.sentences import leans_on_previous
from retrieval.store import SentenceRecord, stated_id

MAX_SENTENCES = 2
MAX_EXCERPT_CHARS = 600
#: What a sentence that holds the asked-for kind of span ("when": a date) gains: half the
#: coverage scale, so that it beats a sentence that merely repeats more of the question.
KIND_WEIGHT = 1.0
#: The margin counts up to three times its "clearly related" bar: between two sentences that
#: are both clearly related, the closer one is still the likelier answer (a question asked in
#: another language has no words to match, only this closeness); beyond a margin of 0.24
#: (near paraphrase) closeness no longer tells sentences apart.
MAX_MARGIN_SHARE = 3.0
#: What a sentence gains that names who did the question's own verb ("appointed by ...
#: Vladimir Putin" for "Who appointed ...?"): English's passive names the doer after "by".
AGENT_WEIGHT = 1.0
#: What a sentence that only restates the question loses: it has nothing to add to it.
RESTATES_PENALTY = 0.5
#: The earlier turn of a conversation counts at this share of the follow-up's own words: it
#: says what "it" refers to, but the follow-up says what is asked.
CONTEXT_WEIGHT = 0.4
_SUBJECT = re.compile(r"\W*(?:he|she|they)\b", re.IGNORECASE)


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
    has_kind: bool = False
    agent: bool = False  # names who did the question's verb ("appointed by Putin")
    restates: bool = False
    previous: tuple[int, int, str] | None = None  # the sentence before, when this leans on it
    passage: str = ""  # the retrieved passage the sentence was found in
    # The sentence alone; ``similarity``, ``coverage`` and ``has_kind`` are those of what it
    # says, with the sentence it leans on.
    own_similarity: float = 0.0
    own_coverage: float = 0.0
    own_kind: bool = False
    own_agent: bool = False

    @property
    def said(self) -> str:
        """The sentence with the one it leans on: what it states."""
        return self.text if self.previous is None else f"{self.previous[2]} {self.text}"

    def score(self, background: float) -> float:
        return self._score(background, self.similarity, self.coverage, self.has_kind, self.agent)

    def own_score(self, background: float) -> float:
        """The score of the sentence alone, without the one it leans on."""
        return self._score(
            background, self.own_similarity, self.own_coverage, self.own_kind, self.own_agent
        )

    def _score(
        self, background: float, similarity: float, cover: float, kind: bool, agent: bool
    ) -> float:
        margin = similarity - background
        # Coverage and margin live on different scales; the margin is divided by the
        # "clearly related" bar so that both reach 1.0 at their own threshold. The passage's
        # search rank is no term: the search ranked passages by the same evidence (words,
        # closeness) that coverage and margin measure for the sentence itself, and a rank
        # penalty sinks the answer of a passage that ranked lower on its other sentences.
        return (
            cover
            + min(margin / MIN_MARGIN, MAX_MARGIN_SHARE)
            + 0.5 * self.context_coverage
            + KIND_WEIGHT * kind
            + AGENT_WEIGHT * agent
            - RESTATES_PENALTY * self.restates
        )


def weighted_terms(
    question: str, lexical: LexicalIndex, history: Sequence[Turn] = ()
) -> dict[str, float]:
    """The question's content terms with their idf weights; with a conversation, the last
    turn's question and answer terms too, at :data:`CONTEXT_WEIGHT` of theirs."""
    weights = {t: lexical.idf(t) for t in question_terms(question)}
    if history:
        last = history[-1]
        for t in question_terms(f"{last.question} {_plain(last.answer)}"):
            weights.setdefault(t, CONTEXT_WEIGHT * lexical.idf(t))
    return weights


def question_terms(text: str) -> set[str]:
    """The content terms of ``text``: closed-class words ("when", "should", "did"; "wann" in
    a German question) are the question's grammar, not what it is about, even where a corpus
    rarely uses them."""
    closed = function_words(text)
    return set(terms(" ".join(w for w in words_of(text) if w.lower() not in closed)))


def _plain(answer: str) -> str:
    return "" if answer.strip() == ABSTAIN_TEXT else re.sub(r"\[\d+\]", " ", answer)


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
        kind = asked_kind(question)
        weights = weighted_terms(question, corpus.lexical, request.history)
        cands = candidates(question, retrieval, corpus, request.vectors, kind, weights)
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
        ) or near_miss(question, kind, best.said, best.has_kind, corpus.lexical, best.passage):
            return Draft(ABSTAIN_TEXT, abstained=True)
        # Words the asker already said (in this question or the one it follows up) are not
        # its answer.
        said = question_terms(" ".join([question, *(t.question for t in request.history[-1:])]))
        return compose(best, cands, background, weights, said, kind, question)


def compose(
    best: Candidate,
    cands: list[Candidate],
    background: float,
    weights: dict[str, float],
    question_terms: set[str],
    kind: Kind,
    question: str,
) -> Draft:
    """The draft: the short answer (a span of a cited sentence) or the sentence itself, then
    the citations: the chosen sentence, the one it leans on, and a second when it adds."""
    # (source, start, end, text): a second sentence may come from another document.
    chosen: list[tuple[str, int, int, str]] = [(best.source, best.start, best.end, best.text)]
    if best.previous is not None:
        chosen.insert(0, (best.source, *best.previous))
    covered = set(terms(" ".join(t for *_, t in chosen)))
    for cand in cands[1:]:
        if len(chosen) >= MAX_SENTENCES + (best.previous is not None):
            break
        if any((cand.source, cand.start) == (src, s) for src, s, *_ in chosen):
            continue
        new = coverage(weights, covered | set(terms(cand.text))) - coverage(weights, covered)
        # A second sentence must itself cover most of the question (closeness alone only
        # says "same topic"), add question content the first lacks, and be nearly as
        # relevant: otherwise it is noise next to the answer.
        if (
            cand.coverage >= MIN_COVERAGE
            and new > 0.15
            and cand.score(background) >= 0.75 * best.score(background)
        ):
            chosen.append((cand.source, cand.start, cand.end, cand.text))
            covered |= set(terms(cand.text))
    citations = [Citation(n, src, s, e, t) for n, (src, s, e, t) in enumerate(chosen, 1)]
    markers = " ".join(f"[{c.n}]" for c in citations)
    # The span comes from the chosen sentence; a name it points back to ("She said"), from
    # the sentence before.
    order = [1] if best.previous is None else [2, 1]
    if best.previous is not None:
        # Of a pair, the span comes from the sentence that alone is the likelier answer:
        # "It is a theoretical device ..." leans on "A Turing machine is a mathematical model
        # of a general computing machine", which answers "What is the term for ...?" itself.
        first = next(
            (c for c in cands if (c.source, c.start) == (best.source, best.previous[0])), None
        )
        if first is not None and first.own_score(background) > best.own_score(background):
            order = [1, 2]
    if not is_english(question):
        # The span is cut by English grammar, next to the question's words: a question in
        # another language has none in the sentence to stand next to. A sentence that states
        # one thing of the kind asked for ("2028" for "wann") answers with it all the same.
        text = best.text
        span = only_span(text, kind, question)
        if span is not None:
            return Draft(f"{text[span[0] : span[1]]} {markers}", citations)
        order = []
    if best.previous is not None and kind is Kind.PERSON and _SUBJECT.match(best.text):
        order = [1, 2]  # "She described ...": who she is, the sentence before says
    for n in order:
        text = citations[n - 1].excerpt
        span = short_answer(text, question_terms, kind, question, weights)
        if span is not None:
            return Draft(f"{text[span[0] : span[1]]} {markers}", citations)
    body = " ".join(f"{_clip(c.excerpt)} [{c.n}]" for c in citations)
    return Draft(body, citations)


def candidates(
    question: str,
    retrieval: Retrieval,
    corpus: Corpus,
    vectors: SentenceVectors | None,
    kind: Kind = Kind.OTHER,
    weights: dict[str, float] | None = None,
) -> list[Candidate]:
    """Every sentence of the retrieved passages, scored against ``question``."""
    weights = weights if weights is not None else weighted_terms(question, corpus.lexical)
    own_terms = question_terms(question)
    out: list[Candidate] = []
    seen: set[tuple[str, int]] = set()
    per_hit = [
        _around(corpus, hit.chunk.source, hit.chunk.start, hit.chunk.end) for hit in retrieval.hits
    ]
    sims = _similarities([r for records in per_hit for r in records], retrieval, vectors)
    # Candidates that lean on the sentence before, by the id of what they state together.
    leaning: dict[str, Candidate] = {}
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
            before = None
            own_sim = similarity = float(sims.get(record.id, 0.0))
            own_cover = cover = own_cov + 0.5 * carried
            if leans_on_previous(text):
                prev = corpus.sentence_before(record.source, record.start)
                prev_text = prev and corpus.text(prev.source, prev.start, prev.end)
                if prev is not None and prev_text:
                    before = (prev.start, prev.end, prev_text)
                    # It states the two together ("It was approved by 75% of voters" after
                    # "The last attempt, the Pico Act of 1859, was passed ..."): the pair has
                    # the words of both and is as close to the question as the closer one.
                    cover = coverage(weights, own | set(terms(prev_text)))
                    similarity = max(similarity, float(sims.get(prev.id, similarity)))
            own_kind = typed = has_kind(text, kind) if kind is not Kind.OTHER else False
            if not typed and before is not None and kind is Kind.PERSON:
                typed = has_kind(before[2], kind)  # "She said": the name is just before
            own_agent = agent = kind is Kind.PERSON and bool(agents(text, own_terms))
            if not agent and before is not None and kind is Kind.PERSON:
                agent = bool(agents(before[2], own_terms))
            out.append(
                Candidate(
                    record.source,
                    record.start,
                    record.end,
                    text,
                    similarity,
                    cover,
                    ctx_cov,
                    hit.rank,
                    has_kind=typed,
                    agent=agent,
                    restates=bool(own) and own <= own_terms,
                    previous=before,
                    passage=hit.chunk.text,
                    own_similarity=own_sim,
                    own_coverage=own_cover,
                    own_kind=own_kind,
                    own_agent=own_agent,
                )
            )
            if before is not None:
                leaning[stated_id(record.id)] = out[-1]
    # What the pair states, as the store embedded it ("His predecessor, Dmitry Rogozin, ..."
    # read after "... Borisov ..."): as close to the question as that, when closer than either
    # sentence alone. A collection that never embedded pairs has no such vectors (zeros).
    stated = _stated_similarities(leaning, retrieval, vectors)
    for cand, sim in zip(leaning.values(), stated, strict=True):
        cand.similarity = max(cand.similarity, sim)
    return out


def _around(corpus: Corpus, source: str, start: int, end: int) -> list[SentenceRecord]:
    """The sentences of a retrieved passage and the one on each side of it: the sentence
    that matches the question's words is often next to the one that answers it."""
    records = corpus.sentences_in(source, start, end)
    if records:
        before = corpus.sentence_before(source, records[0].start)
        after = corpus.sentence_after(source, records[-1].end)
        records = [*([before] if before else []), *records, *([after] if after else [])]
    return records


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


def _stated_similarities(
    leaning: dict[str, Candidate], retrieval: Retrieval, vectors: SentenceVectors | None
) -> list[float]:
    """Cosine of what each leaning candidate states with the sentence before to the question
    (0.0 where the store holds no such vector: never above a sentence's own)."""
    qvec = retrieval.query_vector
    if not leaning or qvec is None or vectors is None:
        return [0.0] * len(leaning)
    return [float(s) for s in np.asarray(vectors.sentence_vectors(list(leaning)) @ qvec)]


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return (
        text
        if len(text) <= MAX_EXCERPT_CHARS
        else text[: MAX_EXCERPT_CHARS - 1].rsplit(" ", 1)[0] + "…"
    )
