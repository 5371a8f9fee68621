"""Which embedding model built a collection, and refusing to mix vectors from two models.

Vectors of different models live in different spaces (and usually differ in size): a question
embedded by one model and compared with passages of another finds noise. So each Chroma
collection records, in its metadata, the model id and vector size that built it; opening a
collection that holds vectors of another model fails with one line saying how to rebuild.
Collections from before the record existed were necessarily built by the packaged e5.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from qabot.errors import StoreError
from retrieval.embeddings import MODEL_ID as E5_MODEL_ID

MODEL_KEY = "qabot:embedding_model"
DIMENSIONS_KEY = "qabot:embedding_dimensions"
#: How the chunk vectors of a collection were made (``QABOT_CHUNK_VECTORS``).
CHUNK_VECTORS_KEY = "qabot:chunk_vectors"
#: Each chunk embedded by the model, as every collection was before the choice existed.
EMBEDDED = "embedded"
#: Each chunk's vector the mean of its sentences' vectors (no model call of its own).
SENTENCE_MEAN = "sentence-mean"
#: How a sentence that leans on the one before it ("His predecessor, ...") is embedded.
LEANING_KEY = "qabot:leaning_sentences"
#: By itself, as every collection did before the choice existed.
ALONE = "alone"
#: With the sentence it leans on, a second time (:func:`retrieval.sentences.stated_span`).
WITH_PREVIOUS = "with-previous"


def built_by(collection: Any) -> str | None:
    """The model id recorded for ``collection``; e5 for an unrecorded one that holds vectors."""
    recorded = (collection.metadata or {}).get(MODEL_KEY)
    if recorded:
        return str(recorded)
    return E5_MODEL_ID if collection.count() > 0 else None


def check(client: Any, corpus: str, names: Iterable[str], model_id: str) -> None:
    """Raise :class:`StoreError` if any of ``names`` holds vectors of a model other than ours."""
    for name in names:
        try:
            existing = client.get_collection(name)
        except Exception:  # noqa: BLE001 - not there yet (chromadb's NotFoundError / ValueError)
            continue
        other = built_by(existing)
        if other is not None and other != model_id and existing.count() > 0:
            raise StoreError(
                f"Collection {corpus!r} was built with the embedding model {other}, not "
                f"{model_id} (QABOT_EMBEDDINGS): rebuild it with `qabot ingest --rebuild PATH...`"
                " or use another collection (--collection NAME)."
            )


def record(collections: Iterable[Any], model_id: str, dimensions: Callable[[], int]) -> None:
    """Write the record on collections that lack it (new, or empty, or from before it existed)."""
    for collection in collections:
        meta = collection.metadata or {}
        if meta.get(MODEL_KEY) == model_id and DIMENSIONS_KEY in meta:
            continue
        # ``modify`` replaces the metadata; the distance function lives in the collection's
        # configuration and is not repeated (Chroma refuses to be told it again).
        kept = {k: v for k, v in meta.items() if not k.startswith("hnsw:")}
        collection.modify(metadata={**kept, MODEL_KEY: model_id, DIMENSIONS_KEY: dimensions()})


def drop(client: Any, names: Iterable[str]) -> None:
    """Delete the collections ``names`` (for ``qabot ingest --rebuild``); absent ones are fine."""
    for name in names:
        try:
            client.delete_collection(name)
        except Exception as exc:  # noqa: BLE001 - chromadb raises several types for "absent"
            if "does not exist" not in str(exc).lower() and "not found" not in str(exc).lower():
                raise StoreError(f"Cannot delete collection {name!r}: {exc}") from exc


def chunk_vectors(chunks: Any, preferred: str) -> str:
    """How ``chunks`` makes its vectors: as recorded, else as it was made before the record
    existed (embedded) when it holds any, else ``preferred``, recorded now.

    A collection keeps one way for good: mixing embedded and derived chunk vectors would rank
    a document by how it happened to be ingested, not by what it says.
    """
    return _way(chunks, CHUNK_VECTORS_KEY, (EMBEDDED, SENTENCE_MEAN), EMBEDDED, preferred)


def leaning_sentences(sentences: Any, preferred: str) -> str:
    """How ``sentences`` embeds a sentence that leans on the one before it: as recorded, else
    alone (as every collection did before the choice existed) when it holds any, else
    ``preferred``, recorded now. Kept for good, like :func:`chunk_vectors`."""
    return _way(sentences, LEANING_KEY, (ALONE, WITH_PREVIOUS), ALONE, preferred)


def _way(collection: Any, key: str, ways: tuple[str, ...], before: str, preferred: str) -> str:
    meta = collection.metadata or {}
    recorded = meta.get(key)
    if recorded in ways:
        return str(recorded)
    way = before if collection.count() > 0 else preferred
    kept = {k: v for k, v in meta.items() if not k.startswith("hnsw:")}
    collection.modify(metadata={**kept, key: way})
    return way
