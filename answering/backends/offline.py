"""The default backend: no model at all, the extractive answerer in ``answering.offline``."""

from __future__ import annotations

from answering.backends.base import BackendSpec, ChatBackend
from qabot.settings import Settings


def _build(model: str, settings: Settings) -> ChatBackend | None:
    return None  # the pipeline answers with OfflineAnswerer


SPEC = BackendSpec(
    prefix="offline",
    summary="Extractive answers: verbatim sentences from the documents, no model, no network.",
    example="offline",
    build=_build,
)
