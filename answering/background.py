"""Vectors of unrelated sentences: what "related" is measured against.

e5 gives high cosines to any pair of texts, so how close a sentence is to a question only
means something against how close unrelated text is (the extractive answerer's margin).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from functools import cache
from importlib import resources
from pathlib import Path

import numpy as np

from retrieval.embeddings import MODEL_ID, TextEmbedder


@cache
def background_sentences() -> tuple[str, ...]:
    text = resources.files("answering").joinpath("background.txt").read_text(encoding="utf-8")
    return tuple(line.strip() for line in text.splitlines() if line.strip())


def background_file(model_id: str) -> str:
    """The cache file of one model's background vectors: another model never reads them.

    e5 keeps the name it always had; other ids are made file-safe, with a hash of the id so
    that two ids that read the same once cleaned never share a file.
    """
    if model_id == MODEL_ID:
        return "background-e5.npy"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", model_id).strip("-.")[:60]
    digest = hashlib.sha256(model_id.encode()).hexdigest()[:8]
    return f"background-{slug}-{digest}.npy"


class BackgroundModel:
    """Vectors of unrelated sentences, computed once and cached in the data directory."""

    def __init__(self, embedder: TextEmbedder, cache_dir: Path | None) -> None:
        self._embedder = embedder
        self._cache = cache_dir / background_file(embedder.model_id) if cache_dir else None
        self._vectors: np.ndarray | None = None

    def vectors(self) -> np.ndarray:
        if self._vectors is None:
            sentences = background_sentences()
            vectors = self._load(len(sentences))
            if vectors is None:
                vectors = self._embedder.passages(list(sentences))
                self._save(vectors)
            self._vectors = vectors
        return self._vectors

    def _load(self, rows: int) -> np.ndarray | None:
        """The cached vectors, or None when there are none that fit (a damaged cache too)."""
        if not self._cache or not self._cache.exists():
            return None
        try:
            cached = np.load(self._cache)
        except (OSError, ValueError, EOFError):
            return None
        return cached if cached.shape == (rows, self._embedder.dimensions) else None

    def _save(self, vectors: np.ndarray) -> None:
        """Write the cache whole or not at all (a full disk must not leave half a file)."""
        if not self._cache:
            return
        partial = self._cache.with_name(f".{self._cache.name}.{os.getpid()}.tmp")
        try:
            with open(partial, "wb") as f:
                np.save(f, vectors)
            os.replace(partial, self._cache)
        except OSError:
            with contextlib.suppress(OSError):
                partial.unlink()

    def similarity(self, query_vector: np.ndarray) -> float:
        return float(np.mean(self.vectors() @ query_vector))
