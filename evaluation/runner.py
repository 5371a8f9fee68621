"""Ask every gold question through the bot's pipeline and measure the answers.

Retrieval metrics need a ranking ten deep while the bot answers from ``k`` (5) passages, so
the runner asks the question exactly as the bot does, then re-ranks it to depth 10 with the
same searcher. The query vector of the ``ask`` is reused for that second search (a small
cache in front of the embedder), so it neither slows nor changes the measured ``ask``.
"""

from __future__ import annotations

import hashlib
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from answering.pipeline import Pipeline, clean_question
from evaluation.gold import GoldItem
from evaluation.metrics import QuestionResult, first_relevant_rank, judge, summarise
from qabot.settings import Settings
from retrieval import indexer
from retrieval.embedders import select_embedder
from retrieval.embeddings import TextEmbedder
from retrieval.search import MODES, HybridSearcher, Mode

RANK_DEPTH = 10
Progress = Callable[[int, int], None]  # (done, total)


class QueryCache:
    """An embedder whose ``query`` remembers its last few vectors; the rest is delegated."""

    def __init__(self, embedder: TextEmbedder, size: int = 4) -> None:
        self._embedder = embedder
        self._size = size
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def query(self, text: str) -> np.ndarray:
        vector = self._cache.pop(text, None)
        if vector is None:
            vector = self._embedder.query(text)
        self._cache[text] = vector
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)
        return vector

    def passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        return self._embedder.passages(texts, batch_size)

    def __getattr__(self, name: str) -> object:
        return getattr(self._embedder, name)


def docs_collection(paths: Sequence[Path]) -> str:
    """A stable collection name of its own for a set of document paths."""
    key = "\n".join(sorted(str(p.resolve()) for p in paths))
    return "eval-" + hashlib.sha1(key.encode()).hexdigest()[:10]


def open_pipeline(settings: Settings, collection: str, cache_size: int = 4) -> Pipeline:
    """The bot's pipeline with a query-vector cache (``cache_size`` vectors) in front of its
    embedder."""
    embedder = QueryCache(select_embedder(settings), cache_size)
    return Pipeline(settings, collection=collection, embedder=embedder)  # type: ignore[arg-type]


def with_backend(pipeline: Pipeline, spec: str) -> Pipeline:
    """A pipeline answering with the backend ``spec`` (a ``QABOT_LLM`` value) over the same
    store, embedder (and so the same retrieval) as ``pipeline``."""
    from answering import backends

    settings = pipeline.settings.model_copy(update={"qabot_llm": spec})
    return Pipeline(
        settings,
        store=pipeline.store,
        embedder=pipeline.embedder,
        answerer=backends.create(settings),
    )


def ingest(
    pipeline: Pipeline, paths: Sequence[Path], progress: indexer.Progress | None = None
) -> None:
    """Bring the collection in line with ``paths`` (a no-op when nothing changed)."""
    pipeline.ingest(list(paths), progress=progress)


@dataclass(slots=True)
class EvalRun:
    """One retriever's (and backend's) results over a gold set."""

    mode: str
    results: list[QuestionResult]
    summary: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    backend: str = ""  # the QABOT_LLM spec, when runs of several backends are compared

    @property
    def name(self) -> str:
        """The run's column name in reports: the retriever, and the backend when given."""
        return f"{self.mode} {self.backend}" if self.backend else self.mode

    def to_dict(self) -> dict:
        return {
            "retriever": self.mode,
            "backend": self.backend or None,
            "meta": self.meta,
            "summary": self.summary,
            "questions": [r.to_dict() for r in self.results],
        }


def _hit_dicts(hits: Sequence) -> list[dict]:
    return [
        {
            "rank": h.rank,
            "source": h.chunk.source,
            "start": h.chunk.start,
            "end": h.chunk.end,
            "score": round(h.score, 4),
        }
        for h in hits
    ]


def ask_one(pipeline: Pipeline, item: GoldItem, mode: Mode, k: int) -> QuestionResult:
    """Ask one gold question as the bot would and judge the answer."""
    t0 = time.perf_counter()
    answer = pipeline.ask(item.question, k=k, mode=mode)
    latency = (time.perf_counter() - t0) * 1000
    corpus = pipeline.corpus()
    hits = answer.retrieved
    if k < RANK_DEPTH:
        query = clean_question(item.question, pipeline.settings.qabot_max_question_chars)
        searcher = HybridSearcher(pipeline.store, pipeline.embedder, corpus)
        hits = searcher.search(query, k=RANK_DEPTH, mode=mode).hits
    citations = [
        c.to_dict() | {"verbatim": corpus.text(c.source, c.start, c.end) == c.excerpt}
        for c in answer.citations
    ]
    ranking = _hit_dicts(hits[:RANK_DEPTH])
    return QuestionResult(
        item=item,
        mode=mode,
        answer=answer.text,
        abstained=answer.abstained,
        citations=citations,
        retrieved=ranking,
        first_hit=first_relevant_rank([h["source"] for h in ranking], item.sources),
        latency_ms=latency,
        timings_ms=dict(answer.timings_ms),
        reasons=judge(item, answer.text, answer.abstained, [c.excerpt for c in answer.citations]),
        backend=answer.backend,
        notice=answer.notice,
        dropped_citations=answer.dropped_citations,
    )


def rank_one(pipeline: Pipeline, item: GoldItem, mode: Mode) -> QuestionResult:
    """Retrieval only: rank the question to depth 10 and time it."""
    corpus = pipeline.corpus()
    query = clean_question(item.question, pipeline.settings.qabot_max_question_chars)
    t0 = time.perf_counter()
    hits = (
        HybridSearcher(pipeline.store, pipeline.embedder, corpus)
        .search(query, k=RANK_DEPTH, mode=mode)
        .hits
    )
    latency = (time.perf_counter() - t0) * 1000
    ranking = _hit_dicts(hits)
    return QuestionResult(
        item=item,
        mode=mode,
        retrieved=ranking,
        first_hit=first_relevant_rank([h["source"] for h in ranking], item.sources),
        latency_ms=latency,
        answered=False,
    )


def evaluate(
    pipeline: Pipeline,
    items: Sequence[GoldItem],
    *,
    mode: str = "hybrid",
    k: int | None = None,
    answers: bool = True,
    warm_up: bool = True,
    progress: Progress | None = None,
    backend: str = "",
) -> EvalRun:
    """Evaluate ``items`` with one retriever; ``answers=False`` measures retrieval only.
    ``backend`` names the pipeline's answerer in the run's column (when comparing several)."""
    if mode not in MODES:
        raise ValueError(f"unknown retriever {mode!r}: use one of {', '.join(MODES)}")
    k = k or pipeline.settings.qabot_top_k
    if warm_up and items:
        # Latency is measured warm, as in the long-running bot: load the model first.
        pipeline.ask("warm-up: " + items[0].question, k=k, mode=mode)  # type: ignore[arg-type]
    results: list[QuestionResult] = []
    for i, item in enumerate(items, 1):
        if answers:
            results.append(ask_one(pipeline, item, mode, k))  # type: ignore[arg-type]
        else:
            results.append(rank_one(pipeline, item, mode))  # type: ignore[arg-type]
        if progress:
            progress(i, len(items))
    meta = {
        "collection": pipeline.collection,
        "k": k,
        "chunks": len(pipeline.corpus().chunks),
        "documents": len(pipeline.corpus().by_source),
        "answers": answers,
    }
    return EvalRun(mode, results, summarise(results), meta, backend)


def check_bars(
    summary: dict, minimums: dict[str, float], maximums: dict[str, float] | None = None
) -> list[str]:
    """Messages for every metric below its minimum (or above its maximum)."""
    failures: list[str] = []
    for name, bar in minimums.items():
        value = summary.get(name)
        if value is None:
            failures.append(f"{name} was not measured (bar {bar:g})")
        elif value < bar:
            failures.append(f"{name} = {value:.3f} is below {bar:g}")
    for name, bar in (maximums or {}).items():
        value = summary.get(name)
        if value is None:
            failures.append(f"{name} was not measured (bar {bar:g})")
        elif value > bar:
            failures.append(f"{name} = {value:.3f} is above {bar:g}")
    return failures
