"""The answering pipeline shared by the CLI, the Discord bot and the evaluation harness."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

from answering import backends
from answering.citations import keep_verified
from answering.generative import GenerativeAnswerer, generate
from answering.offline import ABSTAIN_TEXT, BackgroundModel, OfflineAnswerer
from qabot.errors import BackendError, InputError, StoreError
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
        # The answering backend (QABOT_LLM) is checked now: a missing key fails at start.
        self._llm_spec, self._llm_model = backends.resolve(self.settings)
        self._generative: GenerativeAnswerer | None = None

    # ---- parts ---------------------------------------------------------------------------
    @property
    def embedder(self) -> Embedder:
        return get_embedder(self.settings.qabot_embed_threads)

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                url = self.settings.qabot_chroma_url
                self._client = open_client(self.settings.data_dir, url)
                self._store = Store(
                    self._client,
                    self.collection,
                    self.settings.qabot_embed_threads,
                    location=url or str(self.settings.data_dir),
                )
            return self._store

    def corpus(self) -> Corpus:
        """The in-memory corpus, rebuilt when another ingest changed the collection."""
        with self._lock:
            # The marker file catches changes made on this machine; the chunk count also
            # catches most made by other machines sharing a Chroma server.
            revision = (
                f"{read_revision(self.settings.data_dir, self.collection)}:{self.store.count()}"
            )
            if self._corpus is None or self._corpus.revision != revision:
                store = self.store
                self._corpus = Corpus(store.all_chunks(), revision, store.all_sentences())
            return self._corpus

    # ---- documents -------------------------------------------------------------------------
    def ingest(
        self, paths: Sequence[Path], progress: indexer.Progress | None = None
    ) -> IngestReport:
        with self._lock:
            store = self.store  # opened first: a bad data directory fails before any work
            try:
                report = indexer.sync(
                    store,
                    self.embedder,
                    paths,
                    chunk_tokens=self.settings.qabot_chunk_tokens,
                    overlap=self.settings.qabot_chunk_overlap,
                    progress=progress,
                )
            except BaseException:
                self._corpus = None
                # Other processes must re-read a half-changed collection too, but the error
                # to report is the ingest's own (on a full disk both fail).
                with contextlib.suppress(StoreError):
                    bump_revision(self.settings.data_dir, self.collection)
                raise
            self._corpus = None
            bump_revision(self.settings.data_dir, self.collection)
            return report

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
        *_, answer = self._answer(question, k=k, history=history, mode=mode, stream=False)
        assert isinstance(answer, Answer)
        return answer

    def ask_stream(
        self,
        question: str,
        *,
        k: int | None = None,
        history: Sequence[str] = (),
        mode: Mode = "hybrid",
    ) -> Iterator[str | Answer]:
        """:meth:`ask` as it is written: text deltas (``str``), then the final :class:`Answer`.

        The deltas are provisional (raw model text, markers not yet checked): show them as
        they come, then replace them with the final Answer's text, which is verified and may
        differ (claims dropped, markers renumbered, or the offline answer with a notice).
        The offline backend yields its whole answer as one delta; when a model's reply fails
        and the offline answer is shown instead, it comes only as the final Answer.
        """
        yield from self._answer(question, k=k, history=history, mode=mode, stream=True)

    def streams(self) -> bool:
        """Whether :meth:`ask_stream` yields the answer as it is written: the backend
        (``QABOT_LLM``) is a model whose replies stream. It is built now if it was not yet,
        as :meth:`ask` would (so this can raise the same :class:`BackendError`). The offline
        backend does not stream: it yields its whole answer as one delta."""
        model = self._model()
        return model is not None and bool(model.backend.streams)

    def _answer(
        self, question: str, *, k: int | None, history: Sequence[str], mode: Mode, stream: bool
    ) -> Iterator[str | Answer]:
        t0 = time.perf_counter()
        text = clean_question(question, self.settings.qabot_max_question_chars)
        k = k or self.settings.qabot_top_k
        corpus = self.corpus()
        model = self._model()
        standalone = None
        if model is not None and history and self.settings.qabot_llm_condense:
            standalone = model.condense(text, history)
        # A follow-up ("and when was it launched?") is searched together with the question
        # before it, so that its pronouns find the same passages.
        query = standalone or (f"{history[-1]} {text}" if history else text)
        query = query[: self.settings.qabot_max_question_chars]
        searcher = HybridSearcher(self.store, self.embedder, corpus)
        retrieval = searcher.search(query, k=k, mode=mode)
        t1 = time.perf_counter()
        checked, notice, dropped = None, None, 0
        if model is not None:
            checked, notice, dropped = yield from generate(
                model, standalone or text, retrieval.hits, corpus.text, stream
            )
        if checked is not None:
            answer_text, citations, abstained = checked.text, checked.citations, checked.abstained
            answer_text = ABSTAIN_TEXT if abstained else answer_text
            backend = model.name if model is not None else "offline"
        else:
            answerer = OfflineAnswerer(self.store, corpus, self._background_model())
            answer_text, citations, abstained = answerer.answer(standalone or text, retrieval)
            citations, offline_dropped = keep_verified(citations, corpus.text)
            dropped += offline_dropped
            if not abstained and not citations:
                answer_text, abstained = ABSTAIN_TEXT, True
            backend = answerer.name
            if stream and model is None:
                # The offline backend's one delta. After a model's failed or rejected reply
                # the final Answer replaces the model's text: appended to it, the offline
                # answer would read as its continuation.
                yield answer_text
        t2 = time.perf_counter()
        yield Answer(
            question=question,
            text=answer_text,
            citations=citations,
            abstained=abstained,
            backend=backend,
            retrieved=retrieval.hits,
            timings_ms={
                "retrieve": (t1 - t0) * 1000,
                "answer": (t2 - t1) * 1000,
                "total": (t2 - t0) * 1000,
            },
            dropped_citations=dropped,
            notice=notice,
        )

    def _model(self) -> GenerativeAnswerer | None:
        """The generative answerer for QABOT_LLM, built on first use; None when offline."""
        with self._lock:
            if self._generative is None:
                try:
                    backend = self._llm_spec.build(self._llm_model, self.settings)
                except BackendError:
                    raise
                except Exception as error:
                    raise BackendError(
                        f"QABOT_LLM={self.settings.qabot_llm} could not start: {error}"
                    ) from error
                if backend is None:
                    return None
                self._generative = GenerativeAnswerer(backend, self.settings)
            return self._generative

    def _background_model(self) -> BackgroundModel:
        with self._lock:
            if self._background is None:
                self._background = BackgroundModel(self.embedder, self.settings.data_dir)
            return self._background
