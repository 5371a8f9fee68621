"""Embeddings computed by a server: any OpenAI-compatible ``/v1/embeddings`` or Ollama's own API.

Text-embeddings-inference, vLLM, Ollama (``/v1``) and hosted providers speak the OpenAI
protocol; Ollama also has ``/api/embed``. Both go through LangChain's embedding classes with
their SDK retries off: every request is retried here with the project's own policy (the one the
chat backends use), so a 429 or a 5xx waits and tries again, and a server that does not answer
within the timeout fails with one line. The vector size is whatever the server returns.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from chromadb.api.types import Documents, EmbeddingFunction, Embeddings

from answering.llm.retry import RetryPolicy, is_transient, status_of
from qabot.errors import EmbeddingError
from retrieval.embeddings import CACHE_ENTRIES, MAX_INPUT_CHARS

#: Local OpenAI-compatible servers accept any key; the SDK insists on having one.
PLACEHOLDER_KEY = "not-needed"
#: Embedded once to learn the vector size when a collection's record is written.
PROBE_TEXT = "dimension probe"


class ServerEmbedder:
    """A LangChain ``Embeddings`` client with batching, retries, a cache and checked replies."""

    def __init__(
        self,
        model_id: str,
        client: Any,
        *,
        where: str,
        batch: int = 64,
        policy: RetryPolicy | None = None,
        transient: tuple[type[BaseException], ...] = (),
        timeout: float = 60.0,
        query_prefix: str = "",
        passage_prefix: str = "",
    ) -> None:
        self.model_id = model_id
        self._client = client
        self._where = where
        self._batch = batch
        self._policy = policy or RetryPolicy()
        self._transient = transient
        self._timeout = timeout
        self._query_prefix = query_prefix
        self._passage_prefix = passage_prefix
        self._dimensions: int | None = None
        self._lock = threading.Lock()  # guards the cache only: requests may run side by side
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    @property
    def dimensions(self) -> int:
        """The server's vector size (one small request the first time it is needed)."""
        if self._dimensions is None:
            self._dimensions = int(self._embed([PROBE_TEXT]).shape[1])
        return self._dimensions

    def passages(self, texts: Sequence[str], batch_size: int | None = None) -> np.ndarray:
        """L2-normalised float32 vectors, one row per passage, in requests of ``batch`` texts.

        ``batch_size`` is ignored: how many texts one request may carry is the server's
        limit (``QABOT_EMBEDDINGS_BATCH``), not the caller's.
        """
        keys = [self._passage_prefix + t[:MAX_INPUT_CHARS] for t in texts]
        with self._lock:
            known = {k: self._cache[k] for k in keys if k in self._cache}
        todo = list(dict.fromkeys(k for k in keys if k not in known))
        for b in range(0, len(todo), self._batch):
            batch = todo[b : b + self._batch]
            vectors = self._embed(batch)
            with self._lock:
                for key, vector in zip(batch, vectors, strict=True):
                    known[key] = vector
                    self._cache[key] = vector
                while len(self._cache) > CACHE_ENTRIES:
                    self._cache.popitem(last=False)
        if not keys:
            return np.zeros((0, self._dimensions or 0), dtype=np.float32)
        return np.vstack([known[k] for k in keys])

    def query(self, text: str) -> np.ndarray:
        return self._embed([self._query_prefix + text[:MAX_INPUT_CHARS]])[0]

    # ---- one request -------------------------------------------------------------------------
    def _embed(self, batch: list[str]) -> np.ndarray:
        def transient(error: BaseException) -> bool:
            return is_transient(error, self._transient)

        try:
            raw = self._policy.call(lambda: self._client.embed_documents(batch), transient)
        except EmbeddingError:
            raise
        except Exception as error:
            raise EmbeddingError(self._failure(error)) from error
        vectors = _checked(raw, len(batch), self._dimensions)
        if vectors is None:
            raise EmbeddingError(
                f"The embedding server ({self.model_id} at {self._where}) answered "
                f"{_shape(raw)} for {len(batch)} texts: not one vector of numbers per text."
            )
        if self._dimensions is None:
            self._dimensions = vectors.shape[1]
        return vectors

    def _failure(self, error: BaseException) -> str:
        head = f"The embedding server ({self.model_id} at {self._where})"
        if _is_timeout(error):
            return f"{head} did not answer within {self._timeout:g} s."
        status = _status(error)
        if status is not None:
            return f"{head} failed: HTTP {status}: {_first_line(error)}"
        return f"{head} failed: {_first_line(error)}"


def _checked(raw: Any, rows: int, dimensions: int | None) -> np.ndarray | None:
    """``raw`` as normalised float32 rows, or None unless it is ``rows`` equal-sized vectors.

    Normalised here because the store uses cosine and the answerer compares dot products:
    most servers already normalise, and for those that do not this makes them agree.
    """
    try:
        vectors = np.asarray(raw, dtype=np.float32)
    except (TypeError, ValueError):
        return None
    if vectors.ndim != 2 or vectors.shape[0] != rows or vectors.shape[1] == 0:
        return None
    if dimensions is not None and vectors.shape[1] != dimensions:
        return None
    if not np.isfinite(vectors).all():
        return None
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


def _shape(raw: Any) -> str:
    try:
        return f"{len(raw)} vectors" if isinstance(raw, list) else type(raw).__name__
    except TypeError:
        return type(raw).__name__


def _is_timeout(error: BaseException) -> bool:
    import httpx

    names = {"APITimeoutError", "ReadTimeout", "ConnectTimeout", "TimeoutException"}
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, TimeoutError | httpx.TimeoutException):
            return True
        if type(current).__name__ in names:
            return True
        current = current.__cause__ or current.__context__
    return False


def _status(error: BaseException) -> int | None:
    current: BaseException | None = error
    seen: set[int] = set()
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        status = status_of(current)
        if status is not None:
            return status
        current = current.__cause__ or current.__context__
    return None


def _first_line(error: BaseException) -> str:
    lines = str(error).strip().splitlines()
    return (lines[0][:200] if lines else "") or type(error).__name__


# ---- building -------------------------------------------------------------------------------
def openai_client(model: str, base_url: str | None, key: str | None, batch: int, timeout: float):
    """LangChain's OpenAI embeddings, set up for any OpenAI-compatible server.

    ``check_embedding_ctx_length=False`` sends the texts themselves: the token-splitting path
    needs OpenAI's tokenizer files (a download) and servers other than OpenAI's reject token
    ids. Floats rather than the SDK's base64 default, which not every server implements.
    """
    import openai
    from langchain_openai import OpenAIEmbeddings

    client = OpenAIEmbeddings(
        model=model,
        openai_api_base=base_url,
        openai_api_key=key or PLACEHOLDER_KEY,
        request_timeout=timeout,
        max_retries=0,
        chunk_size=batch,
        check_embedding_ctx_length=False,
        model_kwargs={"encoding_format": "float"},
    )
    return client, (openai.APIConnectionError, openai.APIResponseValidationError)


def ollama_client(model: str, base_url: str | None, timeout: float):
    """LangChain's Ollama embeddings (``POST /api/embed``)."""
    from langchain_ollama import OllamaEmbeddings

    return OllamaEmbeddings(model=model, base_url=base_url, client_kwargs={"timeout": timeout}), ()


class ServerEmbeddingFunction(EmbeddingFunction[Documents]):
    """Chroma's view of a server embedder, so Chroma never falls back to its downloading default."""

    def __init__(self, embedder: ServerEmbedder | None = None, model_id: str = "") -> None:
        self._embedder = embedder
        self._model_id = embedder.model_id if embedder else model_id

    def _get(self) -> ServerEmbedder:
        if self._embedder is None:
            raise EmbeddingError(f"Open this collection through qabot ({self._model_id}).")
        return self._embedder

    def __call__(self, input: Documents) -> Embeddings:
        return list(self._get().passages(list(input)))

    def embed_query(self, input: Documents) -> Embeddings:
        return [self._get().query(text) for text in input]

    @staticmethod
    def name() -> str:
        return "qabot-server"

    def get_config(self) -> dict[str, Any]:
        return {"model": self._model_id}

    @staticmethod
    def build_from_config(config: dict[str, Any]) -> ServerEmbeddingFunction:
        return ServerEmbeddingFunction(model_id=str(config.get("model", "")))

    def default_space(self) -> str:  # type: ignore[override]
        return "cosine"
