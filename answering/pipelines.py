"""One :class:`~answering.pipeline.Pipeline` per collection, sharing the heavy parts.

A bot that answers many servers, each from its own collection, needs one pipeline (and one
in-memory corpus) per collection, but only one embedding model, one answering backend and
one Chroma client: those are what cost memory and start-up time. The pool builds a pipeline
on first use and keeps the ``capacity`` most recently used; the corpus of one it lets go is
freed and read again from the store if that collection is asked again (never one that is
ingesting: its ingest swaps its corpus when done).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from answering import backends
from answering.answerer import Answerer
from answering.pipeline import Pipeline, open_store
from qabot.settings import Settings
from retrieval import embedders
from retrieval.embeddings import Embedder, TextEmbedder
from retrieval.store import collection_names, open_client, validate_collection_name


class PipelinePool:
    """Pipelines by collection name (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        capacity: int = 32,
        *,
        embedder: TextEmbedder | None = None,
        answerer: Answerer | None = None,
    ) -> None:
        self.settings = settings
        self.capacity = capacity
        self._embedder = embedder
        self._ingest_embedder: TextEmbedder | None = None
        self._answerer = answerer
        self._client: Any = None
        self._pipelines: OrderedDict[str, Pipeline] = OrderedDict()
        self._lock = threading.Lock()
        if answerer is None:
            backends.resolve(settings)  # a missing key fails at start, not at the first question
        if embedder is None:
            embedders.check(settings)  # QABOT_EMBEDDINGS too

    @property
    def embedder(self) -> TextEmbedder:
        """The model (``QABOT_EMBEDDINGS``) for questions, shared by every pipeline."""
        with self._lock:
            if self._embedder is None:
                self._embedder = embedders.select_embedder(self.settings)
            return self._embedder

    @property
    def ingest_embedder(self) -> TextEmbedder:
        """The same model for ingests, in a second handle when it runs in-process: e5 takes
        one call at a time, so a question would otherwise wait for an ingest's batch of
        passages. A server's model is shared (it takes concurrent requests)."""
        embedder = self.embedder
        with self._lock:
            if self._ingest_embedder is None:
                local = isinstance(embedder, Embedder)
                threads = self.settings.discord_ingest_threads
                self._ingest_embedder = Embedder(threads) if local else embedder
            return self._ingest_embedder

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = open_client(self.settings.data_dir, self.settings.qabot_chroma_url)
            return self._client

    def exists(self, collection: str) -> bool:
        """Whether the store holds a collection of that name (created by anyone)."""
        names = {getattr(c, "name", c) for c in self.client().list_collections()}
        return collection_names(collection)[0] in names

    def get(self, collection: str) -> Pipeline:
        """The pipeline of ``collection`` (built now if it is not open)."""
        validate_collection_name(collection)
        with self._lock:
            pipeline = self._pipelines.get(collection)
            if pipeline is not None:
                self._pipelines.move_to_end(collection)
                return pipeline
        client, embedder = self.client(), self.embedder
        with self._lock:
            if self._answerer is None:
                self._answerer = backends.create(self.settings)
            pipeline = self._pipelines.get(collection)
            if pipeline is None:
                store = open_store(client, collection, self.settings, embedder)
                pipeline = Pipeline(
                    self.settings, store=store, embedder=embedder, answerer=self._answerer
                )
                self._pipelines[collection] = pipeline
            self._pipelines.move_to_end(collection)
            self._evict(keep=collection)
            return pipeline

    def _evict(self, keep: str) -> None:
        idle = [n for n, p in self._pipelines.items() if not p.ingesting and n != keep]
        for name in idle[: max(0, len(self._pipelines) - self.capacity)]:
            del self._pipelines[name]

    def open_names(self) -> list[str]:
        """The collections open now, least recently used first."""
        with self._lock:
            return list(self._pipelines)
