"""Per-revision snapshots of a corpus on disk, opened memory-mapped in a fraction of a second.

Reading a collection back from Chroma and indexing it took ~42 s and ~1.1 GB at 100k chunks,
in every process and after every ingest. A snapshot is that work done once per revision:
``<data dir>/snapshots/<collection>/<revision key>/`` holds the corpus as flat numpy arrays
(:data:`retrieval.search.ARRAYS`), the chunk texts as one UTF-8 blob, the sentence vectors
(float32, unit length, in the sentences' row order), the vectors of what a sentence that leans
on the one before states (:func:`retrieval.store.stated_id`; looked up by id) and the BM25
index in bm25s's own format.
Opening reads next to nothing: the arrays and the BM25 matrix are memory-mapped (a question
makes resident only the pages it reads: the BM25 columns of its terms, a few rows of the
position arrays), and the two big parts, the texts and the sentence vectors, are read with
``pread`` a passage at a time (see :class:`_File`), so they never count against the process.

Data safety:

* A snapshot is written to a hidden temporary directory and published by one ``rename``: a
  half-written snapshot is never at a snapshot's path. Its ``manifest.json`` (written last)
  names the full revision and the size of every file; a snapshot whose manifest does not
  match the revision asked for, or whose files are missing, short or unreadable, is never
  used: it is deleted and rebuilt from the store.
* Only one builder at a time per collection (an ``flock``), so two processes that find no
  snapshot do not both read the whole store; the second finds the first one's.
* A reader publishes the snapshot it built only when no ingest ran meanwhile (the revision is
  unchanged and the ingest lock is free); otherwise it uses it privately and deletes it.
* Publishing removes snapshots of older revisions but keeps the one before the new one: a
  process may have just read its manifest and be about to open it. A process that already
  has one open keeps it even once deleted (a mapped file lives until it is unmapped).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import mmap
import os
import shutil
import uuid
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from itertools import compress
from pathlib import Path
from typing import Any

import numpy as np

from qabot.errors import StoreError
from retrieval.corpus import ARRAYS, Corpus, Records, RowIds, assemble_records
from retrieval.lexical import LexicalIndex
from retrieval.store import Store, is_stated

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: builds are not serialised across processes
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

#: Bumped when the layout changes: a snapshot of another format is rebuilt, never misread.
FORMAT = 2
_COPY_ROWS = 16384  # sentence vectors reordered per block: bounded memory at any size
_BLOB = "text_blob.bin"
_VECTORS = "sent_vectors.npy"
#: What a sentence that leans on the one before states: ids (row order), their sorted order
#: and vectors (row order).
_STATED_IDS = "stated_ids.npy"
_STATED_ORDER = "stated_id_order.npy"
_STATED_VECTORS = "stated_vectors.npy"
_MANIFEST = "manifest.json"


def snapshots_dir(data_dir: Path, collection: str) -> Path:
    return data_dir / "snapshots" / collection


def revision_key(revision: str, location: str = "embedded") -> str:
    """The directory name of the snapshot of ``revision`` of the store at ``location`` (a
    revision may hold any character; one data directory may serve more than one store)."""
    return hashlib.sha256(f"{location}\0{revision}".encode()).hexdigest()[:32]


class Snapshots:
    """The snapshots of one collection under a data directory, for the store at ``location``
    (``"embedded"``, or a Chroma server's URL)."""

    def __init__(self, data_dir: Path, collection: str, location: str = "embedded") -> None:
        self.root = snapshots_dir(data_dir, collection)
        self.location = location

    def path(self, revision: str) -> Path:
        return self.root / revision_key(revision, self.location)

    def open(
        self, revision: str, store_ids: Callable[[], list[str]] | None = None
    ) -> Corpus | None:
        """The corpus of ``revision`` from its snapshot; ``None`` when there is none, or when
        it is damaged (it is then deleted, to be rebuilt).

        ``store_ids``: the store's chunk ids, for a store others may write without changing
        this data directory's revision (a Chroma server): the snapshot is used only if it
        holds the same chunks (ids come from content), else it is deleted and rebuilt.
        """
        if not (self.path(revision) / _MANIFEST).exists():
            return None
        corpus = self._load(revision)
        if (
            corpus is not None
            and store_ids is not None
            and ids_digest(store_ids()) != _manifest(self.path(revision)).get("chunk_ids")
        ):
            log.warning("The corpus snapshot of %s is out of date: rebuilding it.", revision)
            with self._build_lock():
                _remove(self.path(revision))
            return None
        if corpus is None:
            with self._build_lock():
                self._load(revision, remove=True)
        return corpus

    def _load(self, revision: str, remove: bool = False) -> Corpus | None:
        path = self.path(revision)
        if not (path / _MANIFEST).exists():
            return None
        try:
            return load(path, revision, self.location)
        except Exception as exc:  # any damage: a snapshot is a cache, the store has the data
            log.warning("Ignoring the damaged corpus snapshot %s: %s", path, exc)
            if remove:
                _remove(path)
            return None

    def build(self, store: Store, revision: str, publish: Callable[[], bool]) -> Corpus:
        """Read the store into a new snapshot of ``revision`` and open it.

        ``publish()`` is asked once the snapshot is written: true, it becomes the revision's
        snapshot for every process; false (the store may have changed while it was read),
        it is opened, then deleted (this process keeps its mapping; no other sees it).
        Raises :class:`StoreError` (the store failed) or :class:`OSError` (the disk did).
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with self._build_lock():
            # Another process may have built it while this one waited (a damaged one goes).
            corpus = self._load(revision, remove=True)
            if corpus is not None:
                return corpus
            self._remove_leftovers()
            tmp = self.root / f".tmp-{os.getpid()}-{uuid.uuid4().hex}"
            try:
                write(store, tmp, revision, self.location)
                final = self.path(revision)
                if publish():
                    _remove(final)  # a damaged one that open() could not delete
                    os.rename(tmp, final)
                    _fsync_dir(self.root)
                    self._prune(keep=final)
                    return load(final, revision, self.location)
                return load(tmp, revision, self.location)
            finally:
                _remove(tmp)

    def _prune(self, keep: Path) -> None:
        """Delete the snapshots of old revisions, all but ``keep`` and the newest other one."""
        others = []
        for child in self.root.iterdir():
            if child.name.startswith(".") or child == keep or not child.is_dir():
                continue
            try:
                others.append((child.stat().st_mtime, child))
            except OSError:
                continue
        others.sort(reverse=True)
        for _, child in others[1:]:
            _remove(child)

    def _remove_leftovers(self) -> None:
        """Temporary directories of builders that died (under the build lock, no other
        builder is writing one)."""
        for child in self.root.iterdir():
            if child.name.startswith(".tmp-"):
                _remove(child)

    @contextlib.contextmanager
    def _build_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        if fcntl is None:  # pragma: no cover
            yield
            return
        fd = os.open(self.root / ".build.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)


def write(
    store: Store,
    directory: Path,
    revision: str,
    location: str = "embedded",
    phase: Callable[[str], None] | None = None,
) -> None:
    """Write the snapshot of ``store`` as it is now into ``directory`` (created).

    Bounded memory: each page read from the store leaves only flat arrays behind (its
    records' ids, documents and offsets; no Python object per record), the texts and the
    vectors go straight to files, and are read back with ``pread`` (a memory map of them
    would count every page it touched against this process: ~1 GB at 100k chunks). Most of
    what the process holds while it builds is Chroma's own index of each collection, loaded
    by the first read of it (~0.9 GB at 100k chunks; the ingest before had loaded it).

    ``phase(name)`` is called as each step ends (``bench/snapshot_build.py`` measures them).
    """
    done = phase or (lambda name: None)
    directory.mkdir(parents=True)
    sources: dict[str, int] = {}  # every document, numbered in the order first read
    # Chunks: texts straight to the blob (in the store's order; rows point into it, so it
    # never has to be reordered or held in memory).
    chunks = _Collected(sources)
    spans = array("q", [0])
    with open(directory / _BLOB, "wb") as blob:
        for page in store.pages("chunks", ["metadatas", "documents"]):
            chunks.add(page["ids"], page["metadatas"])
            if len(page["documents"]) != len(page["ids"]):
                raise StoreError("The store returned a page of ids and texts of different sizes.")
            for text in page["documents"]:
                spans.append(spans[-1] + blob.write((text or "").encode()))
            del page
        _flush(blob)
    done("chunks")
    # Sentences: vectors to a scratch file in the store's order, reordered below; the rows
    # of what a sentence states with the one before, to their own, kept in the store's order.
    sentences = _Collected(sources)
    stated_ids: list[np.ndarray] = []
    width = 0
    raw_path, stated_path = directory / ".vectors.raw", directory / ".stated.raw"
    with open(raw_path, "wb") as raw, open(stated_path, "wb") as stated_raw:
        for page in store.pages("sentences", ["metadatas", "embeddings"]):
            if page["ids"]:
                vectors = np.asarray(page["embeddings"], dtype=np.float32)
                vectors = vectors.reshape(len(page["ids"]), -1)
                width = width or vectors.shape[1]
                if vectors.shape[1] != width:
                    raise StoreError("The store holds sentence vectors of different widths.")
                # Unit length, so that a dot product is the cosine the store's index ranks by.
                norms = np.linalg.norm(vectors, axis=1, keepdims=True)
                vectors = (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
                stated_rows = np.array([is_stated(i) for i in page["ids"]], dtype=bool)
                raw.write(vectors[~stated_rows].tobytes())
                stated_raw.write(vectors[stated_rows].tobytes())
                if len(page["metadatas"]) != len(page["ids"]):
                    raise StoreError(
                        "The store returned a page of ids and metadata of different sizes."
                    )
                sentences.add(
                    [i for i, s in zip(page["ids"], stated_rows, strict=True) if not s],
                    [m for m, s in zip(page["metadatas"], stated_rows, strict=True) if not s],
                )
                if stated_rows.any():
                    stated_ids.append(_fixed_width(list(compress(page["ids"], stated_rows))))
                del vectors, norms
            del page
    done("sentences")
    if not width:
        with contextlib.suppress(Exception):
            width = store.dimensions()
    names = sorted(sources, key=str.encode)
    rank = np.zeros(len(names), dtype=np.int64)
    rank[[sources[name] for name in names]] = np.arange(len(names), dtype=np.int64)
    del sources
    arrays, c_order, s_order = assemble_records(
        names, chunks.records(rank), sentences.records(rank)
    )
    del names, rank, chunks, sentences
    offsets = np.frombuffer(spans, dtype=np.int64)
    arrays["text_begin"] = offsets[:-1][c_order]
    arrays["text_end"] = offsets[1:][c_order]
    del offsets, spans
    for name, array_ in arrays.items():
        np.save(directory / f"{name}.npy", array_)
    done("assemble")

    n = len(s_order)
    _write_rows(raw_path, directory / _VECTORS, s_order, width)
    ids = np.concatenate(stated_ids) if stated_ids else np.zeros(0, dtype="S1")
    del stated_ids
    np.save(directory / _STATED_IDS, ids)
    np.save(directory / _STATED_ORDER, np.argsort(ids, kind="stable").astype(np.int64))
    _write_rows(stated_path, directory / _STATED_VECTORS, np.arange(len(ids)), width)
    n_stated = len(ids)
    del ids
    done("vectors")

    texts = _Texts(Blob(directory / _BLOB), arrays["text_begin"], arrays["text_end"])
    lexical = LexicalIndex(texts)
    done("lexical build")
    lexical.save(directory / "lexical")
    del lexical
    done("lexical save")

    files = {
        str(p.relative_to(directory)): p.stat().st_size
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }
    for name in files:
        _fsync(directory / name)
    ids = arrays["chunk_ids"][arrays["chunk_id_order"]]
    manifest = {
        "chunk_ids": ids_digest(bytes(i).decode() for i in ids),
        "format": FORMAT,
        "revision": revision,
        "location": location,
        "collection": store.name,
        "chunks": len(c_order),
        "sentences": n,
        "stated": n_stated,
        "width": width,
        "files": files,
    }
    with open(directory / _MANIFEST, "w", encoding="utf-8") as f:
        json.dump(manifest, f)
        _flush(f)
    done("manifest")


def _write_rows(raw_path: Path, path: Path, order: np.ndarray, width: int) -> None:
    """The float32 rows of the scratch file ``raw_path`` into the ``.npy`` file ``path``, in
    ``order``, a block at a time; the scratch file is removed."""
    n = len(order)
    out = np.lib.format.open_memmap(path, "w+", np.float32, (n, width))
    header = out.offset
    del out  # only the header and the file's size: the rows are written with pwrite
    if n and width:
        src = _File(raw_path)
        with open(path, "r+b") as dst:
            for a in range(0, n, _COPY_ROWS):
                block = _read_rows(src, 0, (n, width), order[a : a + _COPY_ROWS])
                _pwrite(dst.fileno(), block.tobytes(), header + a * 4 * width)
        del src
    raw_path.unlink()


def _fixed_width(ids: Sequence[str]) -> np.ndarray:
    """``ids`` as fixed-width UTF-8 (the width of the longest)."""
    encoded = [i.encode() for i in ids]
    return np.array(encoded, dtype=f"S{max(map(len, encoded), default=0) or 1}")


class _Collected:
    """The ids, documents, starts and ends of records read a page at a time, kept as flat
    arrays (in lists of strings and ints, they held ~120 MB more at 100k chunks)."""

    def __init__(self, sources: dict[str, int]) -> None:
        self._sources = sources  # shared by chunks and sentences
        self._ids: list[np.ndarray] = []  # a page's ids, UTF-8, as wide as its longest
        self._source = array("q")
        self._start = array("q")
        self._end = array("q")

    def add(self, ids: Sequence[str], metadatas: Sequence[Any]) -> None:
        self._ids.append(_fixed_width(ids))
        for meta in metadatas:
            self._source.append(self._sources.setdefault(meta["source"], len(self._sources)))
            self._start.append(int(meta["start"]))
            self._end.append(int(meta["end"]))
        if len(self._source) != sum(len(page) for page in self._ids):
            raise StoreError("The store returned a page of ids and metadata of different sizes.")

    def records(self, rank: np.ndarray) -> Records:
        """The records, documents numbered by ``rank`` (first-read number -> sorted one)."""
        # Pages of different widths concatenate to the widest: :func:`assemble`'s width.
        ids = np.concatenate(self._ids) if self._ids else np.zeros(0, dtype="S1")
        source = rank[np.frombuffer(self._source, dtype=np.int64)]
        start = np.frombuffer(self._start, dtype=np.int64)
        end = np.frombuffer(self._end, dtype=np.int64)
        return Records(ids, source, start, end)


def _pwrite(fd: int, data: bytes, offset: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, offset)
        view, offset = view[n:], offset + n


def ids_digest(ids: Iterable[str]) -> str:
    """A digest of a set of chunk ids (in any order)."""
    h = hashlib.sha256()
    for i in sorted(ids):
        h.update(i.encode() + b"\n")
    return h.hexdigest()


def _manifest(directory: Path) -> dict:
    return dict(json.loads((directory / _MANIFEST).read_text(encoding="utf-8")))


def load(directory: Path, revision: str, location: str = "embedded") -> Corpus:
    """The corpus in the snapshot ``directory``, memory-mapped; raises on any mismatch."""
    manifest = _manifest(directory)
    if manifest.get("format") != FORMAT:
        raise ValueError(f"format {manifest.get('format')}, not {FORMAT}")
    if manifest.get("revision") != revision:
        raise ValueError(f"revision {manifest.get('revision')!r}, not {revision!r}")
    if manifest.get("location") != location:
        raise ValueError(f"a snapshot of the store at {manifest.get('location')}, not {location}")
    for name, size in manifest["files"].items():
        if (directory / name).stat().st_size != size:
            raise ValueError(f"{name} is {(directory / name).stat().st_size} bytes, not {size}")
    arrays: dict[str, Any] = {
        name: _array(directory / f"{name}.npy") for name in ARRAYS if name != "text_blob"
    }
    blob = arrays["text_blob"] = Blob(directory / _BLOB)
    blob_size = len(blob)
    vectors = Rows(directory / _VECTORS)
    n_chunks, n_sentences = int(manifest["chunks"]), int(manifest["sentences"])
    n_sources = len(arrays["source_names"])
    rows = {k: n_chunks for k in ARRAYS if k.startswith(("chunk_", "text_begin", "text_end"))}
    rows |= {k: n_sentences for k in ARRAYS if k.startswith("sent_")}
    rows["chunk_ptr"] = rows["sent_ptr"] = n_sources + 1
    checks = [
        all(len(arrays[k]) == n for k, n in rows.items()),
        int(arrays["chunk_ptr"][-1]) == n_chunks and int(arrays["sent_ptr"][-1]) == n_sentences,
        vectors.shape == (n_sentences, int(manifest["width"])),
        not n_chunks or int(np.max(arrays["text_end"])) <= blob_size,
    ]
    n_stated = int(manifest["stated"])
    stated_ids = RowIds(_array(directory / _STATED_IDS), _array(directory / _STATED_ORDER))
    stated_vectors = Rows(directory / _STATED_VECTORS)
    checks += [
        len(stated_ids.ids) == len(stated_ids.order) == n_stated,
        stated_vectors.shape == (n_stated, int(manifest["width"])),
    ]
    if not all(checks):
        raise ValueError("its arrays do not agree with each other")
    lexical = LexicalIndex.load(directory / "lexical")
    if lexical.size != n_chunks:
        raise ValueError("its BM25 index is not of its chunks")
    return Corpus.from_arrays(arrays, lexical, revision, vectors, (stated_ids, stated_vectors))


class _File:
    """A file read with ``pread``, not mapped. The two big parts of a snapshot (the sentence
    vectors and the texts) are read a few rows at a time at random places: mapped, each page
    fault also reads ahead (fault-around and readahead, 64 KB and more), so the process's
    resident memory grew by ~8 MB a question at 100k chunks and would grow towards the whole
    file. Read with ``pread``, what was read stays in the kernel's page cache (shared, and
    dropped under memory pressure) and never counts against the process. ``pread`` takes
    its offset, so threads share the descriptor; an open descriptor keeps a deleted file."""

    def __init__(self, path: Path) -> None:
        self._fd = os.open(path, os.O_RDONLY)
        self.size = os.fstat(self._fd).st_size

    def read(self, offset: int, n: int) -> bytes:
        data = os.pread(self._fd, n, offset)
        if len(data) != n:
            raise OSError(f"short read: {len(data)} of {n} bytes at {offset}")
        return data

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            os.close(self._fd)


class Blob(_File):
    """The chunk texts: ``blob[begin:end]`` is the UTF-8 bytes of one chunk."""

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, span: slice) -> bytes:
        start, stop, _ = span.indices(self.size)
        return self.read(start, max(0, stop - start)) if stop > start else b""


class Rows(_File):
    """The rows of a 2-D float32 ``.npy`` file: ``rows[[i, j, ...]]`` reads those rows, one
    ``pread`` per run of consecutive rows (a passage's sentences are consecutive)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
            self._offset = f.tell()
        if len(shape) != 2 or fortran or dtype != np.dtype("<f4"):
            raise ValueError(f"{path.name} is not a float32 matrix")
        self.shape: tuple[int, int] = (int(shape[0]), int(shape[1]))
        self._row = 4 * self.shape[1]
        if self.size != self._offset + self.shape[0] * self._row:
            raise ValueError(f"{path.name} is {self.size} bytes, not its shape's")

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, rows: np.ndarray) -> np.ndarray:
        return _read_rows(self, self._offset, self.shape, rows)


def _read_rows(f: _File, offset: int, shape: tuple[int, int], rows: np.ndarray) -> np.ndarray:
    """Rows ``rows`` of the float32 matrix of ``shape`` at ``offset`` in ``f``, one ``pread``
    per run of consecutive rows."""
    rows = np.asarray(rows, dtype=np.int64).reshape(-1)
    n, width = shape
    out = np.empty((len(rows), width), dtype=np.float32)
    if not len(rows):
        return out
    row = 4 * width
    if rows.min() < 0 or rows.max() >= n:
        raise IndexError("row out of range")
    cuts = np.flatnonzero(np.diff(rows) != 1) + 1
    for a, b in zip([0, *cuts.tolist()], [*cuts.tolist(), len(rows)], strict=True):
        data = f.read(offset + int(rows[a]) * row, (b - a) * row)
        out[a:b] = np.frombuffer(data, dtype=np.float32).reshape(b - a, width)
    return out


class _Texts(Sequence[str]):
    """Chunk texts read from the blob one at a time (the BM25 build needs no list of all)."""

    def __init__(self, blob: Blob, begin: np.ndarray, end: np.ndarray) -> None:
        self._blob, self._begin, self._end = blob, begin, end

    def __len__(self) -> int:
        return len(self._begin)

    def __getitem__(self, i):  # noqa: ANN001, ANN204
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        return bytes(self._blob[int(self._begin[i]) : int(self._end[i])]).decode()


def _array(path: Path) -> np.ndarray:
    try:
        return random_access(np.load(path, mmap_mode="r", allow_pickle=False))
    except ValueError:
        # numpy cannot map an empty array (an empty collection): read it, it holds nothing.
        array = np.load(path, allow_pickle=False)
        if array.size:
            raise
        return array


def random_access(array: np.ndarray) -> np.ndarray:
    """``array`` (memory-mapped) with read-ahead turned off: a question reads a few entries
    at random places (a bisection, a candidate's row), and each page fault would otherwise
    bring in 64 KB or more around it, which then stay resident."""
    mapped = getattr(array, "_mmap", None)
    if mapped is not None and hasattr(mmap, "MADV_RANDOM"):
        with contextlib.suppress(OSError, ValueError):
            mapped.madvise(mmap.MADV_RANDOM)
    return array


def _flush(f) -> None:
    f.flush()
    os.fsync(f.fileno())


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        _fsync(path)


def _remove(path: Path) -> None:
    """Delete a snapshot directory (a process that has it open keeps its mappings)."""
    shutil.rmtree(path, ignore_errors=True)
