"""Bring a collection in line with files on disk: add, keep, replace and remove documents.

Idempotent and crash-safe: ids come from content, sentences are written before chunks, and a
document counts as stored only when both counts recorded in its chunks' metadata are present
under its current hash. An ingest killed half-way is therefore seen as "changed" next time,
re-upserted under the same ids (no duplicates) and its stale rows deleted. Removal goes the
other way (sentences first, chunks last), so a document half-removed is still listed and
removed next time. The chunks are the commit record: written last, deleted last.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from qabot.errors import InputError, StoreError
from qabot.types import Chunk, Document, IngestReport
from retrieval.chunking import chunk_document, chunk_id, document_hash
from retrieval.embeddings import TextEmbedder as Embedder
from retrieval.loaders import LoadResult, display_path, load_paths
from retrieval.sentences import sentence_spans
from retrieval.store import Store

Progress = Callable[[str, int, int], None]  # (source, done, total)


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    document: Document
    doc_hash: str
    chunks: list[Chunk]
    sentences: list[tuple[int, int]]


def prepare(document: Document, chunk_tokens: int, overlap: int) -> PreparedDocument:
    doc_hash = document_hash(document.text)
    chunks = chunk_document(document, chunk_tokens, overlap, doc_hash)
    return PreparedDocument(document, doc_hash, chunks, sentence_spans(document.text))


def is_stored(store: Store, source: str, doc_hash: str) -> tuple[bool, bool]:
    """(anything stored for source, complete and current copy stored)."""
    c_ids, c_meta, s_ids, s_meta = store.source_state(source)
    if not c_ids and not s_ids:
        return False, False
    current = [m for m in c_meta if m.get("doc_hash") == doc_hash]
    if not current or len(current) != len(c_ids):
        return True, False
    want_chunks, want_sentences = current[0]["n_chunks"], current[0]["n_sentences"]
    complete = (
        len(current) == want_chunks
        and len(s_ids) == want_sentences
        and all(m.get("doc_hash") == doc_hash for m in s_meta)
    )
    return True, complete


def write_document(store: Store, embedder: Embedder, prepared: PreparedDocument) -> int:
    """Upsert a document's sentences, then its chunks, then delete its stale rows."""
    doc, h = prepared.document, prepared.doc_hash
    text = doc.text
    s_ids = [chunk_id(doc.source, h, s, e) + "-s" for s, e in prepared.sentences]
    s_texts = [text[s:e] for s, e in prepared.sentences]
    s_meta = [
        {"source": doc.source, "doc_hash": h, "start": s, "end": e} for s, e in prepared.sentences
    ]
    store.upsert("sentences", s_ids, embedder.passages(s_texts), s_meta, s_texts)
    chunks = prepared.chunks
    c_meta = [
        {
            "source": doc.source,
            "doc_hash": h,
            "start": c.start,
            "end": c.end,
            "n_chunks": len(chunks),
            "n_sentences": len(s_ids),
        }
        for c in chunks
    ]
    c_texts = [c.text for c in chunks]
    store.upsert("chunks", [c.id for c in chunks], embedder.passages(c_texts), c_meta, c_texts)
    old_c, _, old_s, _ = store.source_state(doc.source)
    store.delete("chunks", set(old_c) - {c.id for c in chunks})
    store.delete("sentences", set(old_s) - set(s_ids))
    return len(chunks)


def remove_source(store: Store, source: str) -> None:
    c_ids, _, s_ids, _ = store.source_state(source)
    # Chunks last: the sources still to remove are found through them.
    store.delete("sentences", s_ids)
    store.delete("chunks", c_ids)


#: Texts embedded in one call when documents are small (the embedder batches them by 32).
EMBED_GROUP_TEXTS = 128


def _texts(prepared: PreparedDocument) -> list[str]:
    text = prepared.document.text
    return [text[s:e] for s, e in prepared.sentences] + [c.text for c in prepared.chunks]


def _embedding_groups(
    todo: list[tuple[PreparedDocument, bool]],
) -> Iterator[list[tuple[PreparedDocument, bool]]]:
    """Consecutive documents with about EMBED_GROUP_TEXTS texts between them."""
    group: list[tuple[PreparedDocument, bool]] = []
    size = 0
    for item in todo:
        group.append(item)
        size += len(item[0].sentences) + len(item[0].chunks)
        if size >= EMBED_GROUP_TEXTS:
            yield group
            group, size = [], 0
    if group:
        yield group


def _in_scope(source: str, roots: list[str]) -> bool:
    return any(source == r or source.startswith(r.rstrip("/") + "/") for r in roots)


def sync(
    store: Store,
    embedder: Embedder,
    paths: Iterable[Path],
    *,
    chunk_tokens: int = 180,
    overlap: int = 30,
    progress: Progress | None = None,
    documents: Iterable[LoadResult] = (),
    remove: Iterable[str] = (),
) -> IngestReport:
    """Ingest ``paths``; documents that vanished from under a given directory are removed.

    ``documents`` come from other sources (web pages): ingested like files; ``remove`` are
    sources that such a source says are gone, removed unless ``documents`` had them.
    """
    paths = list(paths)
    for path in paths:
        if not path.exists():
            raise InputError(f"No such file or directory: {path}")
    report = IngestReport()
    results = list(load_paths(paths)) + list(documents)
    seen: set[str] = set()
    todo: list[tuple[PreparedDocument, bool]] = []  # (document, exists)
    done = 0

    def finished(source: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(source, done, len(results))

    for result in results:
        if result.document is None:
            report.skipped[result.path] = result.error or "unreadable"
            finished(result.path)
            continue
        doc = result.document
        seen.add(doc.source)
        prepared = prepare(doc, chunk_tokens, overlap)
        with _stopped_at(f"{doc.source} ({done} of {len(results)} documents done)"):
            exists, complete = is_stored(store, doc.source, prepared.doc_hash)
        if complete:
            report.unchanged.append(doc.source)
            finished(doc.source)
        else:
            todo.append((prepared, exists))
    for group in _embedding_groups(todo):
        # One model call for the whole group: small documents give the model batches of a
        # few texts each, and it is several times faster per text on full batches. The
        # vectors land in the embedder's cache, where write_document finds them.
        embedder.passages([t for prepared, _ in group for t in _texts(prepared)])
        for prepared, exists in group:
            source = prepared.document.source
            with _stopped_at(f"{source} ({done} of {len(results)} documents done)"):
                report.chunks_written += write_document(store, embedder, prepared)
            (report.updated if exists else report.added).append(source)
            finished(source)
    if progress:
        progress("", len(results), len(results))
    roots = [display_path(p) for p in paths]
    with _stopped_at("the removal of deleted documents"):
        gone = set(remove)
        for source in store.sources():
            in_scope = _in_scope(source, roots) and not Path(source).exists()
            if source not in seen and (in_scope or source in gone):
                remove_source(store, source)
                report.removed.append(source)
    return report


@contextmanager
def _stopped_at(where: str) -> Iterator[None]:
    """Say where an ingest stopped when the store fails, and that running it again finishes it."""
    try:
        yield
    except StoreError as exc:
        reason = str(exc).rstrip(". ")
        raise StoreError(
            f"{reason}. The ingest stopped at {where}: run it again to finish it."
        ) from exc
