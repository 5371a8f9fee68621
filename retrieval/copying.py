"""Copy a collection into another (vectors included, nothing embedded again).

How an existing single collection becomes a Discord server's knowledge base: copy it to
``guild-<server id>`` and the server answers from the copy, while the original keeps
answering wherever it did (direct messages, by default).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from qabot.errors import InputError
from retrieval.embeddings import TextEmbedder
from retrieval.store import Store, bump_revision

_PAGE = 1000


def copy_collection(
    client: Any,
    source: str,
    target: str,
    data_dir: Path,
    location: str,
    embedder: TextEmbedder | None = None,
) -> int:
    """Copy every chunk and sentence of ``source`` into ``target``; returns the chunks
    copied. ``target`` must be empty: merging two collections is not what this is for.
    ``embedder``: the model both are for (QABOT_EMBEDDINGS); the vectors are copied as
    they are, so the copy answers exactly as the original does."""
    if source == target:
        raise InputError("The source and the target are the same collection.")
    src = Store(client, source, location=location, embedder=embedder)
    if src.count() == 0:
        raise InputError(f"The collection {source!r} is empty: there is nothing to copy.")
    # The copy makes its vectors as the original did: they are copied, not rebuilt.
    dst = Store(
        client,
        target,
        location=location,
        embedder=embedder,
        chunk_vectors=src.chunk_vectors,
        leaning_sentences=src.leaning_sentences,
    )
    if dst.count() > 0 or dst.sentences.count() > 0:
        raise InputError(f"The collection {target!r} is not empty: choose a new name.")
    # Sentences first, chunks last, as the indexer writes them: a copy interrupted half-way
    # has no chunk whose sentences are missing (and the chunks are what lists a document).
    for kind in ("sentences", "chunks"):
        collection = src.sentences if kind == "sentences" else src.chunks
        offset = 0
        while True:
            page = collection.get(
                include=["metadatas", "documents", "embeddings"], limit=_PAGE, offset=offset
            )
            if not page["ids"]:
                break
            vectors = np.asarray(page["embeddings"], dtype=np.float32)
            dst.upsert(kind, page["ids"], vectors, page["metadatas"], page["documents"])
            offset += len(page["ids"])
    bump_revision(data_dir, target)
    return dst.count()
