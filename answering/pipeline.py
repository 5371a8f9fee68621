"""The answering pipeline shared by the CLI, the Discord bot and the evaluation harness."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

from answering.citations import keep_verified
from answering.offline import ABSTAIN_TEXT, BackgroundModel, OfflineAnswerer
from qabot.errors import InputError
from qabot.settings import Settings
from qabot.types import Answer, IngestReport
from retrieval import indexer
from retrieval.embeddings import Embedder, get_embedder
from retrieval.search import Corpus, HybridSearcher, Mode
from retrieval.store import Store, bump_revision, open_client, read_revision


def clean_question(question: str, max_chars: int) -> str:
    """Validate and normalise a question; long ones are cut (at a word) for retrieval."""
    text = " ".join((question or "").split())
    if not text:
        raise InputError("The question is empty: ask something about the documents.")
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0] or text[:max_chars]
    return text


class Pipeline:
    """Retrieve, answer, verify. Heavy parts are built on first use and then reused."""

    def __init__(self, settings: Settings | None = None, *, collection: str | None = None) -> None:
        self.settings = settings or Settings()
        self.collection = collection or self.settings.qabot_collection
        self._lock = threading.RLock()
        self._client = None
        self._store: Store | None = None
        self._corpus: Corpus | None = None
        self._background: BackgroundModel | None = None

    # ---- parts ---------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        return get_embedder(self.settings.qabot_embed_threads)

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                self._client = open_client(self.settings.data_dir)
                self._store = Store(self._client, self.collection, self.settings.qabot_embed_threads)
            return self._store

    def corpus(self) -> Corpus:
        """The in-memory corpus, rebuilt when another ingest changed the collection."""
        with self._lock:
            revision = read_revision(self.settings.data_dir, self.collection)
            if self._corpus is None or self._corpus.revision != revision:
                self._corpus = Corpus(self.store.all_chunks(), revision)
            return self._corpus

    # ---- documents -------------------------------------------------------------------------
    def ingest(self, paths: Sequence[Path], progress: indexer.Progress | None = None) -> IngestReport:
        with self._lock:
            try:
                return indexer.sync(
                    self.store,
                    self.embedder,
                    paths,
                    chunk_tokens=self.settings.qabot_chunk_tokens,
                    overlap=self.settings.qabot_chunk_overlap,
                    progress=progress,
                )
            finally:
                bump_revision(self.settings.data_dir, self.collection)
                self._corpus = None

    def ensure_seeded(self, progress: indexer.Progress | None = None) -> IngestReport | None:
        """Ingest the seed documents when the collection is empty."""
        seeds = self.settings.seeds
        if seeds is None or self.store.count() > 0:
            return None
        return self.ingest([seeds], progress)

    def sources(self) -> dict[str, int]:
        return self.store.sources()

    # ---- questions -------------------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        history: Sequence[str] = (),
        mode: Mode = "hybrid",
    ) -> Answer:
        """Answer ``question`` from the collection; ``history`` holds earlier questions."""
        t0 = time.perf_counter()
        text = clean_question(question, self.settings.qabot_max_question_chars)
        k = k or self.settings.qabot_top_k
        corpus = self.corpus()
        # A follow-up ("and when was it launched?") is searched together with the question
        # before it, so that its pronouns find the same passages.
        query = f"{history[-1]} {text}" if history else text
        query = query[: self.settings.qabot_max_question_chars]
        searcher = HybridSearcher(self.store, self.embedder, corpus)
        retrieval = searcher.search(query, k=k, mode=mode)
        t1 = time.perf_counter()
        answerer = OfflineAnswerer(self.store, corpus, self._background_model())
        answer_text, citations, abstained = answerer.answer(text, retrieval)
        citations, dropped = keep_verified(citations, corpus.text)
        if not abstained and not citations:
            answer_text, abstained = ABSTAIN_TEXT, True
        t2 = time.perf_counter()
        return Answer(
            question=question,
            text=answer_text,
            citations=citations,
            abstained=abstained,
            backend=answerer.name,
            retrieved=retrieval.hits,
            timings_ms={
                "retrieve": (t1 - t0) * 1000,
                "answer": (t2 - t1) * 1000,
                "total": (t2 - t0) * 1000,
            },
            dropped_citations=dropped,
        )

    def _background_model(self) -> BackgroundModel:
        with self._lock:
            if self._background is None:
                self._background = BackgroundModel(self.embedder, self.settings.data_dir)
            return self._background
