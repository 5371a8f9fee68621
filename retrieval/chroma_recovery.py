"""Getting past failures of the embedded Chroma client that chromadb 1.5 does not recover from.

* After a write fails (e.g. "database or disk is full" during compaction) the client is wedged:
  the next write in the same process hangs for ever, holding the GIL, even once space is
  freed. A new process is fine. So after a failed write the client is set aside
  (:func:`set_aside`) and the store gets a fresh one before its next use (:func:`reopen`).
* After an open fails, chromadb keeps the stopped system cached under its path, and the next
  open of the path fails with "'RustBindingsAPI' object has no attribute 'bindings'" instead
  of working or saying why (:func:`forget_failed_open`).

Both reach into ``SharedSystemClient``'s per-path cache; if chromadb changes it, they do
nothing and the behaviour is chromadb's own.
"""

from __future__ import annotations

import contextlib
import shutil
from typing import Any

from qabot.errors import StoreError

#: Free space under which a store failure is reported as a full disk (a tenth of a small one).
LOW_SPACE = 4 * 1024 * 1024


def with_space(message: str, where: str) -> str:
    """``message``, plus ``The disk holding it is full (12 KB free).`` when that is so."""
    try:
        usage = shutil.disk_usage(where)
    except (OSError, ValueError):  # a server URL, or a directory that is gone
        return message
    if usage.free >= min(LOW_SPACE, usage.total // 10):
        return message
    return f"{message.rstrip('. ')}. The disk holding it is full ({usage.free // 1024} KB free)."


def _shared() -> Any:
    from chromadb.api.shared_system_client import SharedSystemClient

    return SharedSystemClient


def set_aside(store: Any) -> None:
    """After a failed write: take ``store``'s embedded client out of chromadb's cache.

    A new client for the path then gets a fresh system; the old one keeps serving ``store``'s
    reads until :func:`reopen` replaces it. A server client is left alone.
    """
    client: Any = getattr(store, "_client", None)
    if client is None:
        return
    try:
        settings = client.get_settings()
        if not settings.is_persistent:
            return
        shared = _shared()
        with shared._refcount_lock:
            old = shared._identifier_to_system.pop(client._identifier, None)
            shared._identifier_to_refcount.pop(client._identifier, None)
    except Exception:  # noqa: BLE001 - chromadb internals changed: nothing to set aside
        return
    store._wedged_client = (settings, old)


def reopen(store: Any, *, required: bool) -> None:
    """Give ``store`` a fresh embedded client in place of the one set aside.

    If that fails, a write (``required``) raises :class:`StoreError`, since the old client
    could hang; a read goes on with the old client, and the next call tries again.
    """
    import chromadb

    from retrieval.embeddings import E5EmbeddingFunction

    settings, old = store._wedged_client
    try:
        client = chromadb.PersistentClient(path=settings.persist_directory, settings=settings)
        chunks, sentences = (
            client.get_collection(
                c.name,
                embedding_function=getattr(c, "_embedding_function", None) or E5EmbeddingFunction(),  # type: ignore[arg-type]
            )
            for c in (store.chunks, store.sentences)
        )
    except Exception as exc:
        forget_failed_open(settings.persist_directory)
        if required:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            message = f"Cannot reopen the store in {store.location}: {first}"
            raise StoreError(with_space(message, store.location)) from exc
        return
    store._client, store.chunks, store.sentences = client, chunks, sentences
    store._wedged_client = None
    if old is not None:
        with contextlib.suppress(Exception):
            old.stop()


def forget_failed_open(path: str) -> None:
    """After a failed open of ``path``: drop the stopped system chromadb keeps cached for it."""
    try:
        shared = _shared()
        with shared._refcount_lock:
            if path not in shared._identifier_to_refcount:
                shared._identifier_to_system.pop(path, None)
    except Exception:  # noqa: BLE001 - chromadb internals changed: nothing to drop
        pass
