"""A collection's corpus for one revision, held as flat arrays: every chunk with its text,
the BM25 index, where every sentence is and, from a snapshot, the sentence vectors.

Built in memory from the store's records, or opened from a snapshot on disk
(:mod:`retrieval.snapshot`) with every array memory-mapped. Search (:mod:`retrieval.search`)
and the answerers read it; nothing here queries the store.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, overload

import numpy as np

from qabot.types import Chunk
from retrieval.lexical import LexicalIndex
from retrieval.store import SentenceRecord

if TYPE_CHECKING:
    from answering.answerer import SentenceVectors


class RowIds:
    """The ids of a table's rows (fixed-width UTF-8, in row order) and their sorted order.

    An id is found by bisection over the sorted order (``np.searchsorted`` with a sorter), so
    a memory-mapped table needs no dict of 100k Python strings built at load time.
    """

    def __init__(self, ids: np.ndarray, order: np.ndarray) -> None:
        self.ids = ids
        self.order = order

    @classmethod
    def of(cls, ids: np.ndarray) -> RowIds:
        """The rows of ``ids`` (fixed-width UTF-8, in row order), their sorted order computed."""
        return cls(ids, np.argsort(ids, kind="stable").astype(np.int64))

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, key: str) -> int:
        """The row of the id ``key`` (as the dict of ids to rows this replaces)."""
        row = self.get(key)
        if row is None:
            raise KeyError(key)
        return row

    def id_of(self, row: int) -> str:
        return bytes(self.ids[row]).decode()

    def rows(self, keys: Sequence[str]) -> np.ndarray:
        """The row of each of ``keys``; -1 for an id not in the table."""
        out = np.full(len(keys), -1, dtype=np.int64)
        if not len(self.ids) or not keys:
            return out
        width = self.ids.dtype.itemsize
        encoded = [k.encode() for k in keys]
        # A longer key cannot be in the table, and would be cut to a false match.
        ok = [i for i, b in enumerate(encoded) if len(b) <= width and b and b[-1:] != b"\0"]
        if not ok:
            return out
        wanted = np.array([encoded[i] for i in ok], dtype=self.ids.dtype)
        j = np.searchsorted(self.ids, wanted, sorter=self.order)
        j = np.minimum(j, len(self.ids) - 1)
        rows = np.asarray(self.order[j], dtype=np.int64)
        found = np.asarray(self.ids[rows]) == wanted
        out[np.asarray(ok)[found]] = rows[found]
        return out

    def get(self, key: str, default: int | None = None) -> int | None:
        row = int(self.rows([key])[0])
        return default if row < 0 else row

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None


def _bytes_dtype(values: Sequence[str]) -> np.dtype:
    return np.dtype(f"S{max((len(v.encode()) for v in values), default=0) or 1}")


#: The arrays of a corpus (see :meth:`Corpus.arrays`), by name. Rows of chunks and of
#: sentences are sorted by (document, start), so a document's chunks and its sentences are
#: each one contiguous range of rows: a lookup is a bisection, and the sentence vectors of a
#: passage are neighbours on disk (a query touches few pages of the memory map).
ARRAYS = (
    "source_names",  # every document, sorted (UTF-8, fixed width)
    "chunk_ptr",  # chunk rows of document d: chunk_ptr[d] .. chunk_ptr[d + 1]
    "chunk_start",
    "chunk_end",
    "chunk_source",
    "chunk_ids",
    "chunk_id_order",
    "text_begin",  # chunk i's text: text_blob[text_begin[i]:text_end[i]], UTF-8
    "text_end",
    "text_blob",
    "sent_ptr",  # sentence rows of document d: sent_ptr[d] .. sent_ptr[d + 1]
    "sent_start",
    "sent_end",
    "sent_ids",
    "sent_id_order",
)


class VectorRows(Protocol):
    """Sentence vectors by row: ``rows[indices]`` is a float32 matrix (a numpy array, or
    :class:`retrieval.snapshot.Rows`, which reads a snapshot's file)."""

    @property
    def shape(self) -> tuple[int, ...]: ...

    def __getitem__(self, rows: np.ndarray) -> np.ndarray: ...


class ChunkList(Sequence[Chunk]):
    """The corpus's chunks as a sequence; each :class:`Chunk` is made when it is read."""

    def __init__(self, corpus: Corpus) -> None:
        self._corpus = corpus

    def __len__(self) -> int:
        return self._corpus.size

    @overload
    def __getitem__(self, i: int) -> Chunk: ...
    @overload
    def __getitem__(self, i: slice) -> list[Chunk]: ...
    def __getitem__(self, i: int | slice) -> Chunk | list[Chunk]:
        if isinstance(i, slice):
            return [self._corpus.chunk(j) for j in range(*i.indices(len(self)))]
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(i)
        return self._corpus.chunk(i)


class BySource(Mapping[str, list[Chunk]]):
    """The chunks of each document, in document order (a view; nothing is copied)."""

    def __init__(self, corpus: Corpus) -> None:
        self._corpus = corpus

    def __getitem__(self, source: str) -> list[Chunk]:
        lo, hi = self._corpus._chunk_rows(source)
        if lo == hi:
            raise KeyError(source)
        return [self._corpus.chunk(i) for i in range(lo, hi)]

    def __iter__(self) -> Iterator[str]:
        a = self._corpus.arrays
        for d in np.flatnonzero(np.diff(a["chunk_ptr"])):
            yield bytes(a["source_names"][d]).decode()

    def __len__(self) -> int:
        return int(np.count_nonzero(np.diff(self._corpus.arrays["chunk_ptr"])))


class Corpus:
    """Every chunk of a collection, its BM25 index and where every sentence is, for one
    revision, held as flat arrays.

    Built in memory from records (``Corpus(chunks, revision, sentences)``), or opened from a
    snapshot on disk (:mod:`retrieval.snapshot`) with every array memory-mapped: opening is
    then nearly free, and only the pages a question reads become resident. With sentence
    vectors (a snapshot has them) it also answers :meth:`sentence_vectors` itself, so neither
    search nor the answerer needs the store's sentence index.
    """

    def __init__(
        self,
        chunks: Sequence[Chunk],
        revision: str = "",
        sentences: Sequence[SentenceRecord] | None = None,
        vectors: SentenceVectors | None = None,
    ) -> None:
        """``vectors``: where sentence vectors come from (e.g. the store), as this corpus
        holds none of its own."""
        sentences = sentences or []
        arrays, chunk_order, _ = assemble(
            [c.id for c in chunks],
            [c.source for c in chunks],
            [c.start for c in chunks],
            [c.end for c in chunks],
            [s.id for s in sentences],
            [s.source for s in sentences],
            [s.start for s in sentences],
            [s.end for s in sentences],
        )
        blobs = [chunks[int(i)].text.encode() for i in chunk_order]
        ends = np.cumsum([len(b) for b in blobs], dtype=np.int64)
        arrays["text_end"] = ends
        arrays["text_begin"] = ends - np.array([len(b) for b in blobs], dtype=np.int64)
        arrays["text_blob"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        lexical = LexicalIndex([chunks[int(i)].text for i in chunk_order])
        self._attach(arrays, lexical, revision, None, vectors)

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, Any],
        lexical: LexicalIndex,
        revision: str,
        sentence_vectors: VectorRows | None,
        stated: tuple[RowIds, VectorRows] | None = None,
    ) -> Corpus:
        """A corpus over ``arrays`` (:data:`ARRAYS`; numpy arrays, memory-mapped or not,
        and the text blob as anything sliced to bytes) and ``sentence_vectors`` (rows in the
        sentences' row order, as a float32 matrix or anything indexed the same way);
        ``stated``: the ids and vectors of what sentences state with the one before."""
        corpus = cls.__new__(cls)
        corpus._attach(arrays, lexical, revision, sentence_vectors, None, stated)
        return corpus

    def _attach(
        self,
        arrays: dict[str, Any],
        lexical: LexicalIndex,
        revision: str,
        sentence_vectors: VectorRows | None,
        vector_source: SentenceVectors | None,
        stated: tuple[RowIds, VectorRows] | None = None,
    ) -> None:
        self.arrays = arrays
        self.revision = revision
        self.lexical = lexical
        self.size = len(arrays["chunk_start"])
        self.chunks = ChunkList(self)
        self.by_source = BySource(self)
        self.position = RowIds(arrays["chunk_ids"], arrays["chunk_id_order"])
        self.sentence_ids = RowIds(arrays["sent_ids"], arrays["sent_id_order"])
        self._vectors = sentence_vectors
        self._vector_source = vector_source
        self._stated = stated
        # The source names, sorted, are bisected; the last lookup is remembered, as the
        # answerer asks about the same few documents over and over.
        self._last_source: tuple[str, int] = ("", -1)

    # ---- rows ----------------------------------------------------------------------------
    def _source(self, source: str) -> int:
        """The row of ``source`` among the document names, or -1."""
        last = self._last_source  # one read: another thread may replace it
        if last[0] == source and last[1] >= 0:
            return last[1]
        names = self.arrays["source_names"]
        b = source.encode()
        if not len(names) or len(b) > names.dtype.itemsize or not b or b.endswith(b"\0"):
            return -1
        d = int(np.searchsorted(names, np.array(b, dtype=names.dtype)))
        found = d < len(names) and bytes(names[d]) == b
        if found:
            self._last_source = (source, d)
        return d if found else -1

    def _chunk_rows(self, source: str) -> tuple[int, int]:
        d = self._source(source)
        ptr = self.arrays["chunk_ptr"]
        return (int(ptr[d]), int(ptr[d + 1])) if d >= 0 else (0, 0)

    def _sentence_rows(self, source: str) -> tuple[int, int]:
        d = self._source(source)
        ptr = self.arrays["sent_ptr"]
        return (int(ptr[d]), int(ptr[d + 1])) if d >= 0 else (0, 0)

    def source_of(self, row: int) -> str:
        return bytes(self.arrays["source_names"][int(self.arrays["chunk_source"][row])]).decode()

    def chunk_text(self, row: int) -> str:
        a = self.arrays
        return bytes(a["text_blob"][int(a["text_begin"][row]) : int(a["text_end"][row])]).decode()

    def chunk(self, row: int) -> Chunk:
        a = self.arrays
        return Chunk(
            self.position.id_of(row),
            self.source_of(row),
            int(a["chunk_start"][row]),
            int(a["chunk_end"][row]),
            self.chunk_text(row),
        )

    def sentence(self, row: int, source: str | None = None) -> SentenceRecord:
        a = self.arrays
        if source is None:
            d = int(np.searchsorted(a["sent_ptr"], row, side="right")) - 1
            source = bytes(a["source_names"][d]).decode()
        return SentenceRecord(
            self.sentence_ids.id_of(row), source, int(a["sent_start"][row]), int(a["sent_end"][row])
        )

    def sentence_by_id(self, sentence_id: str) -> SentenceRecord | None:
        row = self.sentence_ids.get(sentence_id)
        return None if row is None else self.sentence(row)

    # ---- sentences -----------------------------------------------------------------------
    def sentence_span_rows(self, source: str, start: int, end: int) -> tuple[int, int]:
        """The rows ``[lo, hi)`` of the sentences of ``source`` that overlap ``[start, end)``."""
        lo, hi = self._sentence_rows(source)
        if lo == hi:
            return lo, lo
        a = self.arrays
        # Sentences of a document do not overlap, so their ends rise with their starts.
        first = lo + int(np.searchsorted(a["sent_end"][lo:hi], start, side="right"))
        last = lo + int(np.searchsorted(a["sent_start"][lo:hi], end, side="left"))
        return first, max(first, last)

    def chunk_sentence_rows(self, row: int) -> tuple[int, int]:
        """The rows ``[lo, hi)`` of the sentences that overlap the chunk in row ``row``."""
        a = self.arrays
        d = int(a["chunk_source"][row])
        lo, hi = int(a["sent_ptr"][d]), int(a["sent_ptr"][d + 1])
        start, end = int(a["chunk_start"][row]), int(a["chunk_end"][row])
        first = lo + int(np.searchsorted(a["sent_end"][lo:hi], start, side="right"))
        last = lo + int(np.searchsorted(a["sent_start"][lo:hi], end, side="left"))
        return first, max(first, last)

    def sentences_in(self, source: str, start: int, end: int) -> list[SentenceRecord]:
        """The sentences of ``source`` that overlap ``[start, end)``, in document order."""
        lo, hi = self.sentence_span_rows(source, start, end)
        return [self.sentence(i, source) for i in range(lo, hi)]

    def sentence_before(self, source: str, start: int) -> SentenceRecord | None:
        """The sentence of ``source`` that ends last before ``start``, if there is one."""
        lo, hi = self._sentence_rows(source)
        i = lo + int(np.searchsorted(self.arrays["sent_end"][lo:hi], start, side="right")) - 1
        return self.sentence(i, source) if i >= lo else None

    def sentence_after(self, source: str, end: int) -> SentenceRecord | None:
        """The sentence of ``source`` that starts first at or after ``end``, if there is one."""
        lo, hi = self._sentence_rows(source)
        a = self.arrays
        i = lo + int(np.searchsorted(a["sent_end"][lo:hi], end + 1, side="left"))
        while i < hi and int(a["sent_start"][i]) < end:
            i += 1
        return self.sentence(i, source) if i < hi else None

    @property
    def has_vectors(self) -> bool:
        return self._vectors is not None or self._vector_source is not None

    def row_vectors(self, rows: np.ndarray) -> np.ndarray:
        """The vectors of the sentence rows ``rows`` (float32, one row each)."""
        if self._vectors is not None:
            return np.asarray(self._vectors[rows], dtype=np.float32)
        if self._vector_source is not None:
            ids = [self.sentence_ids.id_of(int(r)) for r in rows]
            return np.asarray(self._vector_source.sentence_vectors(ids), dtype=np.float32)
        raise LookupError("this corpus has no sentence vectors")

    def sentence_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The vectors of the sentences ``ids``, in that order (zeros for an unknown id):
        :class:`~answering.answerer.SentenceVectors`, read from the snapshot's memory map.
        The ids of what a sentence states with the one before (:func:`retrieval.store.
        stated_id`) are read from the snapshot's table of those."""
        if self._vectors is None:
            if self._vector_source is not None:
                return self._vector_source.sentence_vectors(ids)
            raise LookupError("this corpus has no sentence vectors")
        out = np.zeros((len(ids), self._vectors.shape[1]), dtype=np.float32)
        _fill(out, self.sentence_ids.rows(ids), self._vectors)
        if self._stated is not None:
            _fill(out, self._stated[0].rows(ids), self._stated[1])
        return out

    # ---- chunks --------------------------------------------------------------------------
    def chunk_rows_overlapping(self, source: str, start: int, end: int) -> list[int]:
        lo, hi = self._chunk_rows(source)
        if lo == hi:
            return []
        a = self.arrays
        i = max(0, int(np.searchsorted(a["chunk_start"][lo:hi], start, side="right")) - 1)
        out = []
        for row in range(lo + max(0, i - 2), hi):
            if int(a["chunk_start"][row]) >= end:
                break
            if int(a["chunk_end"][row]) > start:
                out.append(row)
        return out

    def chunks_overlapping(self, source: str, start: int, end: int) -> list[Chunk]:
        return [self.chunk(r) for r in self.chunk_rows_overlapping(source, start, end)]

    def text(self, source: str, start: int, end: int) -> str | None:
        """The document's text in ``[start, end)``, stitched from its (tiling) chunks."""
        a = self.arrays
        parts: list[str] = []
        pos = start
        for row in self.chunk_rows_overlapping(source, start, end):
            c_start, c_end = int(a["chunk_start"][row]), int(a["chunk_end"][row])
            if c_start > pos:
                return None  # a gap: the span is not fully stored
            if c_end > pos:
                parts.append(self.chunk_text(row)[pos - c_start : min(end, c_end) - c_start])
                pos = min(end, c_end)
            if pos >= end:
                break
        return "".join(parts) if pos >= end else None


def assemble(
    chunk_ids: Sequence[str],
    chunk_sources: Sequence[str],
    chunk_starts: Sequence[int],
    chunk_ends: Sequence[int],
    sent_ids: Sequence[str],
    sent_sources: Sequence[str],
    sent_starts: Sequence[int],
    sent_ends: Sequence[int],
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """The arrays of a corpus (all but the texts), from its records in any order, and the
    orders that sort the chunk and the sentence records into rows (``records[order]``)."""
    names = sorted({*chunk_sources, *sent_sources}, key=str.encode)
    index = {name: d for d, name in enumerate(names)}

    def table(
        ids: Sequence[str], sources: Sequence[str], starts: Sequence[int], ends: Sequence[int]
    ) -> Records:
        return Records(
            np.array([i.encode() for i in ids], dtype=_bytes_dtype(ids)),
            np.array([index[s] for s in sources], dtype=np.int64),
            np.array(starts, dtype=np.int64),
            np.array(ends, dtype=np.int64),
        )

    return assemble_records(
        names,
        table(chunk_ids, chunk_sources, chunk_starts, chunk_ends),
        table(sent_ids, sent_sources, sent_starts, sent_ends),
    )


class Records(NamedTuple):
    """Records (chunks or sentences) in any order, as arrays: their ids (UTF-8, fixed width:
    the longest id's), their documents (indexes into the sorted names), starts and ends."""

    ids: np.ndarray
    sources: np.ndarray
    starts: np.ndarray
    ends: np.ndarray


def assemble_records(
    names: Sequence[str], chunks: Records, sentences: Records
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """:func:`assemble` from records already in arrays (``names``: every document, sorted
    by their UTF-8 bytes), as :mod:`retrieval.snapshot` collects them page by page."""
    arrays: dict[str, np.ndarray] = {
        "source_names": np.array([n.encode() for n in names], dtype=_bytes_dtype(names))
    }
    orders = []
    for prefix, records in (("chunk", chunks), ("sent", sentences)):
        src = np.asarray(records.sources, dtype=np.int64)
        start = np.asarray(records.starts, dtype=np.int64)
        order = np.lexsort((start, src)) if len(src) else np.zeros(0, dtype=np.int64)
        src = src[order]
        arrays[f"{prefix}_ptr"] = np.searchsorted(src, np.arange(len(names) + 1)).astype(np.int64)
        arrays[f"{prefix}_start"] = start[order]
        arrays[f"{prefix}_end"] = np.asarray(records.ends, dtype=np.int64)[order]
        row_ids = RowIds.of(records.ids[order])
        arrays[f"{prefix}_ids"], arrays[f"{prefix}_id_order"] = row_ids.ids, row_ids.order
        if prefix == "chunk":
            arrays["chunk_source"] = src.astype(np.int32)
        orders.append(order)
    return arrays, orders[0], orders[1]


def _fill(out: np.ndarray, rows: np.ndarray, vectors: VectorRows) -> None:
    """Set ``out[i]`` to ``vectors[rows[i]]`` wherever ``rows[i]`` is a row (not -1)."""
    known = rows >= 0
    if known.any():
        order = np.argsort(rows[known])  # ascending rows: the memory map is read forward
        picked = rows[known][order]
        block = np.empty((len(picked), out.shape[1]), dtype=np.float32)
        block[order] = vectors[picked]
        out[known] = block
