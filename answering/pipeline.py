"""The answering pipeline shared by the CLI, the Discord bot and the evaluation harness.

It reads as: search, answer with the chosen backend, verify, fall back to the extractive
answerer when the backend gave nothing that survives verification.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
import time
from collections.abc import Generator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from answering import backends
from answering.abstention import ABSTAIN_TEXT
from answering.answerer import Answerer, AnswerRequest, Draft, Streaming, Unavailable
from answering.citations import keep_verified
from answering.extractive import ExtractiveAnswerer
from qabot.errors import InputError, StoreError
from qabot.settings import Settings
from qabot.types import Answer, IngestReport, Turn
from retrieval import collection_record, embedders, indexer, seeding
from retrieval.corpus import Corpus
from retrieval.embeddings import TextEmbedder
from retrieval.ingest_lock import IngestLock
from retrieval.search import HybridSearcher, Mode
from retrieval.snapshot import Snapshots
from retrieval.store import Store, bump_revision, collection_names, open_client, read_revision
from retrieval.web import WebRequest

if TYPE_CHECKING:
    from retrieval.web import WebFetch
    from retrieval.web_cache import WebCache

log = logging.getLogger(__name__)

#: A conversation's earlier turns: questions alone (``str``) or with their answers.
History = Sequence["str | Turn"]


def clean_question(question: str, max_chars: int) -> str:
    """Validate and normalise a question; long ones are cut (at a word) for retrieval."""
    text = " ".join((question or "").split())
    if not text:
        raise InputError("The question is empty: ask something about the documents.")
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0] or text[:max_chars]
    return text


def as_turns(history: History) -> list[Turn]:
    return [t if isinstance(t, Turn) else Turn(str(t)) for t in history]


def verified_draft(draft: Draft, request: AnswerRequest) -> tuple[Draft | None, int]:
    """The draft with only the citations verbatim in the store, and how many were dropped.

    ``None`` when it claims an answer and none of its citations holds: an answer with no
    verified source is never shown.
    """
    citations, failed = keep_verified(draft.citations, request.lookup)
    dropped = draft.dropped + failed
    if draft.abstained:
        return Draft(ABSTAIN_TEXT, abstained=True), dropped
    if not citations:
        return None, dropped
    kept = {c.n for c in citations}
    # A marker whose citation failed points at nothing: it goes with it.
    text = _MARKER.sub(lambda m: m.group() if int(m.group(1)) in kept else "", draft.text)
    return Draft(text, citations), dropped


_MARKER = re.compile(r"\s*\[(\d+)\]")


def open_store(
    client: object, collection: str, settings: Settings, embedder: TextEmbedder
) -> Store:
    """The store of ``collection`` on ``client``, as the settings ask for it."""
    url = settings.qabot_chroma_url
    return Store(
        client,
        collection,
        settings.qabot_embed_threads,
        location=url or str(settings.data_dir),
        embedder=embedder,
        chunk_vectors=settings.qabot_chunk_vectors,
    )


def nothing_fetched(fetched: WebFetch, collection: str) -> None:
    """Raise :class:`InputError` when a rebuild's web request gave no page at all: emptying
    the collection to ingest nothing would lose it for a site that is down."""
    if any(result.document is not None for result in fetched.results):
        return
    failures = "; ".join(f"{r.path}: {r.error or 'unreadable'}" for r in fetched.results[:3])
    raise InputError(
        f"No web page could be fetched ({failures or 'nothing found'}): the rebuild stopped "
        f"and collection {collection!r} is as it was."
    )


class Pipeline:
    """Retrieve, answer, verify. Heavy parts are built on first use and then reused.

    Every part can be given instead (as httpx takes a ``transport``): ``store`` (a
    :class:`~retrieval.store.Store`), ``embedder`` and ``answerer`` (any
    :class:`~answering.answerer.Answerer`; default: the ``QABOT_LLM`` backend).
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        collection: str | None = None,
        store: Store | None = None,
        embedder: TextEmbedder | None = None,
        answerer: Answerer | None = None,
    ) -> None:
        self.settings = settings or Settings()
        self.collection: str = (
            store.name if store is not None else collection or self.settings.qabot_collection
        )
        self._lock = threading.RLock()  # building the parts (quick); never held by an ingest
        self._rereading = threading.Lock()  # one re-read of the corpus at a time
        self._ingest_lock = IngestLock(self.settings.data_dir, self.collection)
        self._ingesting = False
        self._stale = False  # a failed ingest left the collection changed: re-read it
        self._store = store
        self._embedder = embedder
        self._corpus: Corpus | None = None
        self._answerer = answerer
        self._fallback: ExtractiveAnswerer | None = None
        if answerer is None:
            # The answering backend (QABOT_LLM) is checked now: a missing key fails at start.
            backends.resolve(self.settings)
        if embedder is None:
            embedders.check(self.settings)  # QABOT_EMBEDDINGS too

    # ---- parts ---------------------------------------------------------------------------
    @property
    def embedder(self) -> TextEmbedder:
        """The model ``QABOT_EMBEDDINGS`` selects (the packaged e5 by default)."""
        if self._embedder is None:
            self._embedder = embedders.select_embedder(self.settings)
        return self._embedder

    @property
    def store(self) -> Store:
        with self._lock:
            if self._store is None:
                url = self.settings.qabot_chroma_url
                self._store = self._open_store(open_client(self.settings.data_dir, url))
            return self._store

    def _open_store(self, client: object) -> Store:
        return open_store(client, self.collection, self.settings, self.embedder)

    @property
    def answerer(self) -> Answerer:
        """The chosen backend, built on first use (raises :class:`BackendError`)."""
        with self._lock:
            if self._answerer is None:
                self._answerer = backends.create(self.settings)
            return self._answerer

    @property
    def fallback(self) -> ExtractiveAnswerer:
        """The extractive answerer, shown when the chosen backend gives nothing usable."""
        with self._lock:
            if isinstance(self._answerer, ExtractiveAnswerer):
                return self._answerer
            if self._fallback is None:
                self._fallback = ExtractiveAnswerer(self.embedder, self.settings.data_dir)
            return self._fallback

    def corpus(self) -> Corpus:
        """The in-memory corpus, re-read when an ingest changed the collection.

        While an ingest of the collection runs (here or in another process), the corpus read
        before it keeps answering: the swap to the new one happens only once the ingest is
        complete, so an answer never sees half of it and never waits for it. While one thread
        re-reads the corpus, the others keep answering from the one they had.
        """
        current = self._corpus
        if current is not None and (self._ingesting or self._ingest_lock.running()):
            return current
        # Read before the store: a change made after this is caught at the next question.
        # The marker file catches changes made on this machine; the chunk count also
        # catches most made by other machines sharing a Chroma server.
        revision = self._revision()
        if current is not None and current.revision == revision and not self._stale:
            return current
        if current is None:
            self._rereading.acquire()
        elif not self._rereading.acquire(blocking=False):
            return current
        try:
            if self._corpus is not current and self._corpus is not None:
                return self._corpus  # another thread re-read it meanwhile
            self._stale = False
            self._corpus = self._read_corpus(revision)
            return self._corpus
        finally:
            self._rereading.release()

    def _revision(self) -> str:
        return f"{read_revision(self.settings.data_dir, self.collection)}:{self.store.count()}"

    def _read_corpus(self, revision: str, *, ingested: bool = False) -> Corpus:
        """The corpus of ``revision``: its snapshot (``retrieval.snapshot``), built from the
        store when there is none yet (a store written before snapshots, or a damaged one).

        Published for other processes only when it is known to be the revision's content:
        built by the ingest that made the revision (``ingested``, under its lock), or by a
        reader that saw no ingest start or finish while it read. The revision is the one the
        corpus was always re-read on (this data directory's marker and the chunk count), and
        a snapshot is kept per store location, so that a data directory used with the
        embedded store and with a Chroma server never mixes the two.
        """
        store = self.store
        snapshots = self._snapshots()
        # Others may write a Chroma server without changing this directory's revision: a
        # snapshot of it is checked against the store's chunk ids (about a second at 100k).
        verify = store.chunk_ids if self.settings.qabot_chroma_url and not ingested else None
        corpus = snapshots.open(revision, verify)
        if corpus is not None:
            return corpus

        def publish() -> bool:
            if ingested:
                return True
            return not self._ingest_lock.running() and self._revision() == revision

        try:
            return snapshots.build(store, revision, publish)
        except StoreError:
            raise
        except OSError as exc:
            # The disk refused the snapshot (full, read-only): answer from memory, as before.
            log.warning("Cannot write the corpus snapshot (%s); reading it into memory.", exc)
        except Exception:
            # A snapshot is a cache: whatever went wrong with it, the store has the data.
            log.exception("Cannot build the corpus snapshot; reading it into memory.")
        return Corpus(store.all_chunks(), revision, store.all_sentences(), vectors=store)

    def _snapshots(self) -> Snapshots:
        location = self.settings.qabot_chroma_url or "embedded"
        return Snapshots(self.settings.data_dir, self.collection, location)

    @property
    def ingesting(self) -> bool:
        """Whether this pipeline is ingesting now."""
        return self._ingesting

    # ---- documents -------------------------------------------------------------------------
    def ingest(
        self,
        paths: Sequence[Path],
        progress: indexer.Progress | None = None,
        *,
        web: WebRequest | None = None,
        rebuild: bool = False,
        embedder: TextEmbedder | None = None,
    ) -> IngestReport:
        """Bring the collection in line with ``paths`` and the pages of ``web``.

        ``rebuild`` empties the collection first (to change QABOT_EMBEDDINGS, for one): only
        once the paths are checked and the pages fetched (a rebuild that fetched no page at
        all stops there), and under the collection's ingest lock, so that it waits for a
        running ingest and other ingests wait for it. A rebuild stopped before that leaves
        the collection as it was.
        Ingests of one collection queue (across processes too); questions are answered
        meanwhile from the corpus as it was, and the new one replaces it when the ingest is
        complete. ``embedder``: another handle of the same model for the ingest's passages,
        so that questions never wait for a batch of them (e5 takes one call at a time).
        """
        for path in paths:  # before any page is fetched
            if not path.exists():
                raise InputError(f"No such file or directory: {path}")
        with self._lock:
            # Opened first: a bad data directory fails before any work. A rebuild opens only
            # the client: the collection may hold another model's vectors, which the store
            # refuses; it is opened for the selected model once it is emptied.
            _ = self._client() if rebuild else self.store
        fetched, cache = None, None
        if web is not None:  # outside the lock: questions are answered while pages load
            from retrieval.web import fetch_pages
            from retrieval.web_cache import WebCache

            cache = WebCache.in_dir(self.settings.data_dir)
            try:
                fetched = fetch_pages(
                    web,
                    cache,
                    self.collection,
                    timeout=self.settings.qabot_web_timeout,
                    progress=progress,
                )
            except BaseException:
                cache.close()
                raise
        try:
            if rebuild and fetched is not None:
                nothing_fetched(fetched, self.collection)
            with self._ingest_lock.hold():
                self._ingesting = True
                try:
                    return self._sync(paths, progress, fetched, cache, embedder, rebuild=rebuild)
                finally:
                    self._ingesting = False
        finally:
            if cache is not None:
                cache.close()

    def _sync(
        self,
        paths: Sequence[Path],
        progress: indexer.Progress | None,
        fetched: WebFetch | None,
        cache: WebCache | None,
        embedder: TextEmbedder | None,
        *,
        rebuild: bool = False,
    ) -> IngestReport:
        """The ingest itself, under the collection's ingest lock; then the corpus swap.

        ``rebuild``: the collection is emptied first, here, under the lock. The corpus read
        before keeps answering this process's questions until the new one is read.
        An ingest that wrote and deleted nothing (and emptied nothing) leaves the revision as
        it is: every process keeps its corpus, and the revision's snapshot is not built again
        (minutes at 100k chunks, for no change).
        """
        try:
            if rebuild:
                self._drop_collection()
            store = self.store
            writes = store.writes
            report = indexer.sync(
                store,
                embedder or self.embedder,
                paths,
                chunk_tokens=self.settings.qabot_chunk_tokens,
                overlap=self.settings.qabot_chunk_overlap,
                progress=progress,
                documents=fetched.results if fetched else (),
                remove=fetched.remove if fetched else (),
                started=lambda: seeding.mark_initialised(self.settings.data_dir, self.collection),
            )
            if fetched is not None and cache is not None:
                fetched.commit(cache, self.collection)
        except BaseException:
            self._stale = True
            # Other processes must re-read a half-changed collection too, but the error
            # to report is the ingest's own (on a full disk both fail).
            with contextlib.suppress(StoreError):
                bump_revision(self.settings.data_dir, self.collection)
            raise
        if store.writes != writes or rebuild or self._stale:
            bump_revision(self.settings.data_dir, self.collection)
        # The new revision's snapshot, built once here, under the ingest lock: every process
        # that answers from the collection then opens it instead of reading the store.
        try:
            corpus = self._read_corpus(self._revision(), ingested=True)
            if self._corpus is not None:  # questions are asked here: swap in the new one
                self._corpus = corpus
        except StoreError:
            self._stale = True  # the next question reads it (or says why not)
        return report

    def _client(self) -> object:
        """The Chroma client of this pipeline's store (opened now if the store is not)."""
        with self._lock:
            if self._store is not None:
                return self._store._client
            return open_client(self.settings.data_dir, self.settings.qabot_chroma_url)

    def _drop_collection(self) -> None:
        """Delete this corpus's chunks and sentences (``qabot ingest --rebuild``, under the
        ingest lock), then open it again, empty, for the selected embedding model.

        The corpus in memory is kept: questions asked meanwhile are answered from it until
        the rebuild's own corpus replaces it (:meth:`_sync`). Their dense chunk candidates
        come from the store, which holds only what the rebuild wrote so far: chunks the old
        corpus does not know are ignored by the search.
        """
        with self._lock:
            client = self._client()
            self._store = None  # its collections go now: opened anew if the drop fails
            collection_record.drop(client, collection_names(self.collection))
            self._store = self._open_store(client)

    def ensure_seeded(self, progress: indexer.Progress | None = None) -> IngestReport:
        """Ingest the seed documents into a collection never initialised (an empty report if
        not; an initialised collection found empty raises StoreError: retrieval/seeding.py)."""
        seeds = self.settings.seeds
        if not seeding.needs_seeds(self.store, self.settings.data_dir, self.collection):
            return IngestReport()
        return IngestReport() if seeds is None else self.ingest([seeds], progress)

    def sources(self) -> dict[str, int]:
        return self.store.sources()

    # ---- questions -------------------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        k: int | None = None,
        history: History = (),
        mode: Mode = "hybrid",
    ) -> Answer:
        """Answer ``question`` from the collection; ``history`` holds the earlier turns."""
        return Streaming(self._answer(question, k, history, mode, stream=False)).result()

    def ask_stream(
        self,
        question: str,
        *,
        k: int | None = None,
        history: History = (),
        mode: Mode = "hybrid",
    ) -> Streaming[Answer]:
        """:meth:`ask` as it is written: iterate it for text deltas, then call ``result()``.

        The deltas are provisional (raw model text, markers not yet checked): show them as
        they come, then replace them with the final Answer's text, which is verified and may
        differ (claims dropped, markers renumbered, or the extractive answer with a notice).
        The extractive backend yields its whole answer as one delta; when a model's reply
        fails and the extractive answer is shown instead, it comes only as the result.
        """
        return Streaming(self._answer(question, k, history, mode, stream=True))

    def streams(self) -> bool:
        """Whether :meth:`ask_stream` yields the answer as it is written. The backend is
        built now if it was not yet, as :meth:`ask` would (so this can raise the same
        :class:`BackendError`)."""
        return self.answerer.streams

    def _answer(
        self, question: str, k: int | None, history: History, mode: Mode, stream: bool
    ) -> Generator[str, None, Answer]:
        t0 = time.perf_counter()
        text = clean_question(question, self.settings.qabot_max_question_chars)
        turns = as_turns(history)
        k = k or self.settings.qabot_top_k
        corpus = self.corpus()
        answerer = self.answerer
        standalone = answerer.standalone(text, turns) if turns else None
        # A follow-up ("and when was it launched?") is searched together with the question
        # before it, so that its pronouns find the same passages.
        query = standalone or (f"{turns[-1].question} {text}" if turns else text)
        query = query[: self.settings.qabot_max_question_chars]
        retrieval = HybridSearcher(self.store, self.embedder, corpus).search(query, k, mode)
        t1 = time.perf_counter()
        # The corpus holds the sentence vectors (memory-mapped from its snapshot): reading them
        # from the store would load the store's index of every sentence vector.
        vectors = corpus if corpus.has_vectors else self.store
        request = AnswerRequest(standalone or text, retrieval, corpus, vectors, turns)

        notice, dropped, backend = None, 0, answerer.name
        draft: Draft | None = None
        if not retrieval.hits:
            draft = Draft(ABSTAIN_TEXT, abstained=True)  # nothing to answer from
        else:
            try:
                if stream:
                    reply = answerer.stream(request)
                    yield from reply
                    draft = reply.result()
                else:
                    draft = answerer.answer(request)
            except Unavailable as error:
                notice = f"The model {answerer.name} was unavailable ({error}): "
            if draft is not None:
                draft, dropped = verified_draft(draft, request)
                if draft is None and answerer is not self.fallback:
                    notice = f"The answer of {answerer.name} had no verifiable citation: "
            if draft is None and answerer is not self.fallback:
                fallback = self.fallback
                draft, more = verified_draft(fallback.answer(request), request)
                dropped += more
                backend = fallback.name
                notice = notice and notice + f"{fallback.name} answer shown."
        if draft is None:  # even the extractive answer's citations failed verification
            draft = Draft(ABSTAIN_TEXT, abstained=True)
        t2 = time.perf_counter()
        return Answer(
            question=question,
            text=ABSTAIN_TEXT if draft.abstained else draft.text,
            citations=[] if draft.abstained else draft.citations,
            abstained=draft.abstained,
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
