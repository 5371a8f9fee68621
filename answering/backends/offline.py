"""The default backend: the extractive answerer (``answering.extractive``), no model at all."""

from __future__ import annotations

from answering.backends.base import BackendSpec
from answering.extractive import ExtractiveAnswerer
from qabot.settings import Settings
from retrieval.embedders import select_embedder


def _build(model: str, settings: Settings) -> ExtractiveAnswerer:
    return ExtractiveAnswerer(select_embedder(settings), settings.data_dir)


SPEC = BackendSpec(
    prefix="offline",
    summary="Extractive answers: verbatim sentences from the documents, no model, no network.",
    example="offline",
    build=_build,
)
