"""Bring a collection in line with files on disk: add, keep, replace and remove documents.

Idempotent and crash-safe: ids come from content, and a document counts as stored only when
both counts recorded in its chunks' metadata are present under its current hash, with no
rows of another version left. Documents are streamed: one file is read at a time and its
sentences, then its chunks, are embedded and written in batches of ``BATCH_TEXTS`` texts
(a batch may span small documents), so memory holds one document's text and one batch of
vectors, however big the file. An ingest killed half-way is seen as "changed" next time: the
rows it wrote under the current hash are kept (not embedded again), the missing ones are
written and the stale rows of the old version deleted, which leaves exactly the rows of a
clean ingest. Removal goes the other way (sentences first, chunks last), so a document
half-removed is still listed and removed next time. The chunks are the commit record:
written last, deleted last.

Sources are identified by absolute path (:func:`retrieval.loaders.source_id`). A stored
document is removed only when it lies under a directory this ingest names and this ingest
did not find it there. Each file's signature (inode, size, mtime) is taken when it is read and
checked again once everything is written: a file changed during the ingest is written again,
and one deleted during it is removed, so the store never keeps text the file no longer had
when the ingest finished.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qabot.errors import InputError, StoreError
from qabot.types import Chunk, Document, IngestReport
from retrieval.chunking import chunk_document, chunk_id, chunk_spans, document_hash
from retrieval.collection_record import SENTENCE_MEAN, WITH_PREVIOUS
from retrieval.embeddings import MAX_INPUT_CHARS
from retrieval.embeddings import TextEmbedder as Embedder
from retrieval.loaders import (
    LoadResult,
    Signature,
    display_path,
    iter_files,
    load_one,
    root_id,
    signature,
    source_id,
)
from retrieval.sentences import sentence_spans, stated_span
from retrieval.store import Store, stated_id

#: (label, files done, files total). The label names the file being worked on; while a big
#: file is written batch by batch it also says how far it is ("big.txt 40%").
Progress = Callable[[str, int, int], None]

#: Sentence vectors a writer keeps after writing them, for the derived chunks queued after
#: them: a chunk of up to 1,000 tokens spans far fewer sentences than this.
RECENT_SENTENCES = 4096

#: Texts embedded and written together: full batches keep the model fast (it is several
#: times faster per text on a full batch than on a few texts), and one batch of vectors
#: (1.5 kB each) is all the memory an ingest needs for them.
BATCH_TEXTS = 256


@dataclass(frozen=True, slots=True)
class PreparedDocument:
    document: Document
    doc_hash: str
    chunks: list[Chunk]
    sentences: list[tuple[int, int]]


def prepare(document: Document, chunk_tokens: int, overlap: int) -> PreparedDocument:
    """The chunks (with their text) and sentences of a document (for benchmarks and tools)."""
    doc_hash = document_hash(document.text)
    chunks = chunk_document(document, chunk_tokens, overlap, doc_hash)
    return PreparedDocument(document, doc_hash, chunks, sentence_spans(document.text))


def is_stored(store: Store, source: str, doc_hash: str) -> tuple[bool, bool]:
    """(anything stored for source, complete and current copy stored)."""
    return _complete(store.source_state(source), doc_hash)


def _complete(
    state: tuple[list[str], list[dict], list[str], list[dict]], doc_hash: str
) -> tuple[bool, bool]:
    c_ids, c_meta, s_ids, s_meta = state
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


def remove_source(store: Store, source: str) -> None:
    c_ids, _, s_ids, _ = store.source_state(source)
    # Chunks last: the sources still to remove are found through them.
    store.delete("sentences", s_ids)
    store.delete("chunks", c_ids)


@dataclass(frozen=True, slots=True)
class Part:
    """A sentence that a derived chunk vector averages: its id, text and how many of the
    chunk's characters it covers (the weight)."""

    id: str
    text: str
    weight: int


@dataclass(slots=True)
class _Row:
    collection: str
    id: str
    text: str
    meta: dict
    #: For a chunk whose vector is derived from its sentences' vectors: those sentences.
    parts: tuple[Part, ...] = ()


@dataclass(slots=True)
class _Writer:
    """Rows waiting to be embedded and written, flushed ``BATCH_TEXTS`` at a time.

    ``known`` maps each text written by this ingest (a 16-byte digest) to a record holding its
    vector, so a text repeated anywhere in the ingest (boilerplate, a sentence that is also a
    chunk) is embedded once, whatever the embedder's cache has evicted meanwhile: the vector
    is read back from the store, which costs a fraction of embedding it.
    """

    store: Store
    embedder: Embedder
    rows: list[_Row] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)
    known: dict[bytes, tuple[str, str]] = field(default_factory=dict)
    chunks_written: int = 0
    #: Vectors of the sentences written last, by id: a derived chunk is queued right after
    #: its sentences, so they are here even when they went out in the batch before.
    recent: OrderedDict[str, np.ndarray] = field(default_factory=OrderedDict)

    def add(self, row: _Row) -> bool:
        """Queue ``row``; True when that filled a batch and it was written."""
        self.rows.append(row)
        if len(self.rows) >= BATCH_TEXTS:
            self.flush()
            return True
        return False

    def then(self, action: Callable[[], None]) -> None:
        """Run ``action`` once every row queued so far is written."""
        if self.rows:
            self.after.append(action)
        else:
            action()

    def flush(self) -> None:
        rows, self.rows = self.rows, []
        if rows:
            vectors = self._vectors(rows)
            for collection in ("sentences", "chunks"):  # chunks, the commit record, last
                picked = [i for i, r in enumerate(rows) if r.collection == collection]
                if picked:
                    self.chunks_written += len(picked) if collection == "chunks" else 0
                    self.store.upsert(
                        collection,
                        [rows[i].id for i in picked],
                        vectors[picked],
                        [rows[i].meta for i in picked],
                        [rows[i].text for i in picked],
                    )
            for row, vector in zip(rows, vectors, strict=True):
                self.known.setdefault(_key(row.text), (row.collection, row.id))
                if row.collection == "sentences":
                    self.recent[row.id] = vector
            while len(self.recent) > RECENT_SENTENCES:
                self.recent.popitem(last=False)
        actions, self.after = self.after, []
        for action in actions:
            action()

    def _vectors(self, rows: list[_Row]) -> np.ndarray:
        keys = [_key(r.text) for r in rows]
        reuse: dict[str, dict[str, int]] = {"chunks": {}, "sentences": {}}
        fresh: list[int] = []
        for i, key in enumerate(keys):
            if rows[i].parts:
                continue  # derived below, from its sentences' vectors
            if key in self.known:
                collection, rid = self.known[key]
                reuse[collection][rid] = i
            else:
                fresh.append(i)
        found: dict[int, np.ndarray] = {}
        for collection, wanted in reuse.items():
            for rid, vector in self.store.vectors(collection, list(wanted)).items():
                found[wanted[rid]] = vector
        # A record gone from the store meanwhile is embedded again.
        fresh += [i for ids in reuse.values() for i in ids.values() if i not in found]
        embedded = self.embedder.passages([rows[i].text for i in fresh])
        out = np.zeros((len(rows), embedded.shape[1]), dtype=np.float32)
        if fresh:
            out[fresh] = embedded
        for i, vector in found.items():
            out[i] = vector
        # A text already in this batch was embedded once for every copy (the embedder
        # dedupes within a call); copies in later batches find it through ``known``.
        derived = [i for i, r in enumerate(rows) if r.parts]
        if derived:
            batch = {r.id: out[i] for i, r in enumerate(rows) if r.collection == "sentences"}
            parts = self._part_vectors([p for i in derived for p in rows[i].parts], batch)
            for i in derived:
                out[i] = mean_vector(
                    [parts[p.id] for p in rows[i].parts], [p.weight for p in rows[i].parts]
                )
        return out

    def _part_vectors(self, parts: list[Part], batch: dict[str, np.ndarray]) -> dict:
        """The vector of every sentence in ``parts``: from this batch or the last ones, else
        from the store (written by an interrupted ingest), else embedded now."""
        out: dict[str, np.ndarray] = {}
        for part in parts:
            vector = batch.get(part.id)
            if vector is None:
                vector = self.recent.get(part.id)
            if vector is not None:
                out[part.id] = vector
        missing = list(dict.fromkeys(p.id for p in parts if p.id not in out))
        if missing:
            out.update(self.store.vectors("sentences", missing))
        texts = {p.id: p.text for p in parts if p.id not in out}
        if texts:
            out.update(zip(texts, self.embedder.passages(list(texts.values())), strict=True))
        return out


def mean_vector(vectors: list[np.ndarray], weights: list[int]) -> np.ndarray:
    """The direction of the weighted mean of unit vectors.

    Why a chunk's vector can be its sentences' mean: the model's cost grows with the tokens
    it reads, and every token of a chunk is also in one of its sentences, so embedding the
    chunk again doubles the work for a vector that the mean approximates (a chunk embedding
    is itself a mean, over its tokens). Weighting by the characters each sentence has inside
    the chunk counts a sentence that straddles the chunk's edge for the part it contributes.
    """
    total = np.average(np.asarray(vectors, dtype=np.float32), axis=0, weights=weights)
    norm = float(np.linalg.norm(total))
    return (total / norm if norm > 0 else total).astype(np.float32)


def _key(text: str) -> bytes:
    return hashlib.blake2b(text[:MAX_INPUT_CHARS].encode("utf-8"), digest_size=16).digest()


@dataclass(slots=True)
class _Run:
    """The state of one :func:`sync` call."""

    store: Store
    writer: _Writer
    chunk_tokens: int
    overlap: int
    progress: Progress | None
    total: int
    report: IngestReport = field(default_factory=IngestReport)
    done: int = 0
    read: dict[str, tuple[Path, Signature]] = field(default_factory=dict)  # source -> as read

    def finished(self, label: str) -> None:
        self.done += 1
        self.tell(label)

    def tell(self, label: str) -> None:
        if self.progress:
            self.progress(label, self.done, self.total)

    def where(self, label: str) -> str:
        return f"{label} ({self.done} of {self.total} documents done)"

    def ingest(
        self, file: Path | None, result: LoadResult, legacy: list[str], again: bool = False
    ) -> None:
        """Bring one loaded document into the store (``again``: a second pass). ``file``:
        where it was read, to check afterwards that it did not change (None for web pages)."""
        report = self.report
        if result.document is None:
            report.skipped[result.path] = result.error or "unreadable"
            self.finished(result.path)
            return
        doc, label = result.document, result.path
        if file is not None and result.signature is not None:
            self.read[doc.source] = (file, result.signature)
        doc_hash = document_hash(doc.text)
        with _stopped_at(self.where(label)):
            state = self.store.source_state(doc.source)
        exists, complete = _complete(state, doc_hash)
        if complete:
            if not again:
                report.unchanged.append(doc.source)
                self.finished(label)
            self._drop_legacy(legacy, doc.source, doc_hash)
            return
        with _stopped_at(self.where(label)):
            new_chunks, new_sentences = self._write(doc, doc_hash, state, label)

        def commit() -> None:
            with _stopped_at(self.where(label)):
                c_ids, _, s_ids, _ = self.store.source_state(doc.source)
                self.store.delete("chunks", set(c_ids) - new_chunks)
                self.store.delete("sentences", set(s_ids) - new_sentences)
                replaced = self._drop_legacy(legacy, doc.source, doc_hash)
            if again:
                return
            (report.updated if exists or replaced else report.added).append(doc.source)
            self.finished(label)

        self.writer.then(commit)

    def _write(
        self, doc: Document, doc_hash: str, state: tuple, label: str
    ) -> tuple[set[str], set[str]]:
        """Queue the rows of ``doc`` not already stored as they should be; the ids of its
        chunks and sentences."""
        text, source = doc.text, doc.source
        c_ids, c_meta, s_ids, s_meta = state
        stored = dict(zip(c_ids, c_meta, strict=True)) | dict(zip(s_ids, s_meta, strict=True))
        sentences = sentence_spans(text)
        chunks = chunk_spans(text, self.chunk_tokens, self.overlap)
        base = {"source": source, "doc_hash": doc_hash}
        # What a sentence that leans on the one before states, by the sentence's index, for
        # a collection that stores it (:data:`retrieval.collection_record.WITH_PREVIOUS`).
        stated = (
            {
                i: span
                for i in range(len(sentences))
                if (span := stated_span(sentences, i, text)) is not None
            }
            if self.store.leaning_sentences == WITH_PREVIOUS
            else {}
        )
        # "n_sentences": the rows of the sentence collection, those of what a sentence states
        # included (a copy missing any of them is not complete).
        counts = {"n_chunks": len(chunks), "n_sentences": len(sentences) + len(stated)}
        todo, written = len(sentences) + len(stated) + len(chunks), 0
        ids: tuple[set[str], set[str]] = (set(), set())

        def queue(
            collection: str, rid: str, s: int, e: int, extra: dict, parts: tuple[Part, ...] = ()
        ) -> None:
            nonlocal written
            ids[collection == "sentences"].add(rid)
            meta = {**base, "start": s, "end": e, **extra}
            written += 1
            if stored.get(rid) == meta:  # written by an earlier, interrupted ingest
                return
            row = _Row(collection, rid, text[s:e], meta, parts)
            if self.writer.add(row) and written < todo:
                self.tell(f"{label} {100 * written // todo}%")

        def sentence_id(s: int, e: int) -> str:
            return chunk_id(source, doc_hash, s, e) + "-s"

        def queue_sentence(i: int) -> None:
            ss, se = sentences[i]
            queue("sentences", sentence_id(ss, se), ss, se, {})
            if i in stated:
                ps, pe = stated[i]
                queue("sentences", stated_id(sentence_id(ss, se)), ps, pe, {})

        # In document order, each chunk right after the sentences that reach into it, so
        # that a chunk derived from its sentences finds their vectors just written.
        derive = self.store.chunk_vectors == SENTENCE_MEAN
        next_sentence = 0
        for s, e in chunks:
            while next_sentence < len(sentences) and sentences[next_sentence][0] < e:
                queue_sentence(next_sentence)
                next_sentence += 1
            parts = (
                tuple(
                    Part(sentence_id(ss, se), text[ss:se], min(e, se) - max(s, ss))
                    for ss, se in _overlapping(sentences, next_sentence, s)
                )
                if derive
                else ()
            )
            queue("chunks", chunk_id(source, doc_hash, s, e), s, e, counts, parts)
        for i in range(next_sentence, len(sentences)):
            queue_sentence(i)
        return ids

    def _drop_legacy(self, legacy: list[str], source: str, doc_hash: str) -> bool:
        """Remove the copy an older version stored under a relative path for ``source``.

        Such a path was relative to a working directory nobody recorded, so it is taken for
        this document only when it names this file from here *and* holds the same text (the
        same hash); any other relative source is kept, never deleted on a guess.
        """
        same = [
            old
            for old in legacy
            if source_id(Path(old)) == source
            and any(m.get("doc_hash") == doc_hash for m in self.store.source_state(old)[1])
        ]
        for old in same:
            remove_source(self.store, old)
            legacy.remove(old)
        return bool(same)


def _overlapping(sentences: list[tuple[int, int]], stop: int, start: int) -> list[tuple[int, int]]:
    """The sentences before index ``stop`` that end after ``start`` (sentences do not
    overlap, so their ends rise: walk back from ``stop``)."""
    out = []
    i = stop - 1
    while i >= 0 and sentences[i][1] > start:
        out.append(sentences[i])
        i -= 1
    return out[::-1]


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
    started: Callable[[], None] | None = None,
    documents: Iterable[LoadResult] = (),
    remove: Iterable[str] = (),
) -> IngestReport:
    """Ingest ``paths``; documents that vanished from under a given directory are removed.

    ``started`` is called once the paths are checked, before anything is written.
    ``documents`` come from other sources (web pages): ingested like files; ``remove`` are
    sources that such a source says are gone, removed unless ``documents`` had them.
    """
    paths = list(paths)
    for path in paths:
        if not os.path.exists(path):
            raise InputError(f"No such file or directory: {display_path(path)}")
    if started:
        started()
    files = list(iter_files(paths))
    others = list(documents)
    total = len(files) + len(others)
    run = _Run(store, _Writer(store, embedder), chunk_tokens, overlap, progress, total)
    with _stopped_at("the start"):
        # Paths stored by older versions, relative to some working directory (not URLs).
        legacy = [s for s in store.sources() if not s.startswith("/") and "://" not in s]
    found: set[str] = set()
    for file, source in files:
        result = load_one(file, source)
        if not result.missing:
            found.add(source)  # found, even if unreadable now: its stored copy is kept
        run.ingest(file, result, legacy)
    for result in others:
        if result.document is not None:
            found.add(result.document.source)
        run.ingest(None, result, legacy)
    with _stopped_at(run.where("the last batch")):
        run.writer.flush()
    _recheck(run, legacy, found)
    run.tell("")
    roots = [root_id(p) for p in paths if os.path.isdir(p)]
    report = run.report
    report.chunks_written = run.writer.chunks_written
    with _stopped_at("the removal of deleted documents"):
        gone = set(remove)
        for source in store.sources():
            if source not in found and (_in_scope(source, roots) or source in gone):
                remove_source(store, source)
                report.removed.append(source)
    return report


#: Passes over files that changed while they were ingested before giving up on them.
RECHECKS = 2


def _recheck(run: _Run, legacy: list[str], found: set[str]) -> None:
    """Write again the files that changed since they were read; remove the deleted ones.

    A file still changing after ``RECHECKS`` passes is removed from the store and reported as
    skipped: a copy that may be behind the file is worse than none.
    """
    for attempt in range(RECHECKS + 1):
        changed = [(s, p) for s, (p, sig) in run.read.items() if _signature(p) != sig]
        if not changed:
            return
        run.read = {}
        for source, path in changed:
            result = load_one(path, source)
            if result.document is None or attempt == RECHECKS:
                with _stopped_at(f"the removal of {display_path(path)}"):
                    remove_source(run.store, source)
                for bucket in (run.report.added, run.report.updated, run.report.unchanged):
                    if source in bucket:
                        bucket.remove(source)
                if result.missing:
                    found.discard(source)
                    run.report.removed.append(source)
                else:
                    run.report.skipped[result.path] = (
                        result.error or "kept changing while it was ingested: ingest it again"
                    )
                continue
            run.ingest(path, result, legacy, again=True)
        with _stopped_at(run.where("the last batch")):
            run.writer.flush()


def _signature(path: Path) -> Signature | None:
    try:
        return signature(os.stat(path))
    except OSError:
        return None


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
