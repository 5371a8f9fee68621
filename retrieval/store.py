"""Chroma, embedded and persistent: one chunk collection and one sentence collection per corpus.

Chunks carry the retrieval; sentences carry the fine-grained similarity that the ranking and
the extractive answerer use. Both carry ``source``, ``doc_hash``, ``start`` and ``end``.

The sentence collection also holds, for each sentence that leans on the one before it, the
vector of what it states (the two together: :func:`retrieval.sentences.stated_span`), under
the sentence's id with :data:`STATED_SUFFIX`. Those rows are no sentences of their own:
:meth:`Store.all_sentences` and the snapshot's sentence table leave them out.
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

import numpy as np

from qabot.errors import InputError, StoreError
from qabot.types import Chunk
from retrieval import collection_record
from retrieval.chroma_recovery import forget_failed_open, reopen, set_aside, with_space
from retrieval.collection_record import SENTENCE_MEAN, WITH_PREVIOUS
from retrieval.embeddings import DIMENSIONS, MODEL_ID, E5EmbeddingFunction, TextEmbedder

P = ParamSpec("P")
R = TypeVar("R")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_BATCH = 1000
_GET_PAGE = 5000


#: Ends the id of a sentence collection row that holds what a sentence states with the one
#: it leans on (no "-" in a hex digest, and a sentence id ends "-s").
STATED_SUFFIX = "-with-previous"


def stated_id(sentence_id: str) -> str:
    """The id of the row holding what sentence ``sentence_id`` states with the one before."""
    return sentence_id + STATED_SUFFIX


def is_stated(row_id: str) -> bool:
    """Whether ``row_id`` is such a row, not a sentence."""
    return row_id.endswith(STATED_SUFFIX)


@dataclass(frozen=True, slots=True)
class SentenceRecord:
    id: str
    source: str
    start: int
    end: int


def validate_collection_name(name: str) -> str:
    if not _NAME.match(name):
        raise InputError(f"Invalid collection name {name!r}: use 1-63 letters, digits, '-' or '_'.")
    return name


def ensure_writable(directory: Path) -> None:
    """Fail early, with a clear message, on a data directory that cannot be written."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / f".write-test-{uuid.uuid4().hex}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StoreError(
            f"Cannot write to the data directory {directory}: {exc.strerror or exc}."
        ) from exc


def _is_store_failure(exc: BaseException) -> bool:
    """Errors that mean "the store is unreachable or refused", not a bug in qabot."""
    module = type(exc).__module__
    return isinstance(exc, ConnectionError | TimeoutError) or module.startswith(
        ("httpx", "httpcore", "chromadb")
    )


def guarded(method: Callable[P, R]) -> Callable[P, R]:
    """Turn a store failure inside ``method`` into a one-line :class:`StoreError`.

    A failed write to the embedded store also sets its client aside, and the next call opens a
    fresh one first (see :mod:`retrieval.chroma_recovery`).
    """
    write = method.__name__ in ("upsert", "delete")

    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        store = args[0] if args else None
        where = getattr(store, "location", "the store")
        try:
            if getattr(store, "_wedged_client", None) is not None:
                reopen(store, required=write)
            return method(*args, **kwargs)
        except StoreError:
            raise
        except Exception as exc:
            if not _is_store_failure(exc):
                raise
            if write:
                set_aside(store)
            if is_damage(exc) and not where.startswith(("http://", "https://")):
                raise StoreError(damaged_message(where, exc)) from exc
            message = f"The vector store ({where}) failed: {_first_line(exc)}"
            raise StoreError(with_space(message, where)) from exc

    return wrapper


#: What chromadb and SQLite say when the embedded store's files are corrupt (garbage in
#: chroma.sqlite3 surfaces as the compactor failing to "pull logs" from it).
_DAMAGE = re.compile(
    r"malformed|not a database|Failed to pull logs|database corruption|no such table|"
    r"file is encrypted|disk image",
    re.IGNORECASE,
)


def is_damage(exc: BaseException) -> bool:
    return any(_DAMAGE.search(str(e)) for e in (exc, exc.__cause__, exc.__context__) if e)


def damaged_message(data_dir: str, exc: BaseException) -> str:
    """What a damaged embedded store is, and how to rebuild it."""
    chroma = Path(data_dir) / "chroma"
    return (
        f"The store in {chroma} is damaged ({_first_line(exc)}). To rebuild it, move that "
        f"folder aside (mv {chroma} {chroma}.damaged) and run qabot ingest with your "
        "documents again."
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return (text[0][:200] if text else type(exc).__name__) or type(exc).__name__


def open_client(data_dir: Path, chroma_url: str | None = None) -> Any:
    """A Chroma client: a server when ``chroma_url`` is set, else embedded under ``data_dir``."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    chroma_settings = ChromaSettings(anonymized_telemetry=False, allow_reset=False)
    ensure_writable(data_dir)  # caches and the revision marker live here in both modes
    if chroma_url:
        url = urlsplit(chroma_url)
        if url.scheme not in ("http", "https") or not url.hostname:
            raise StoreError(
                f"QABOT_CHROMA_URL must look like http://host:port, not {chroma_url!r}."
            )
        try:
            client = chromadb.HttpClient(
                host=url.hostname,
                port=url.port or (443 if url.scheme == "https" else 8000),
                ssl=url.scheme == "https",
                settings=chroma_settings,
            )
            client.heartbeat()
            return client
        except Exception as exc:
            raise StoreError(
                f"Cannot reach the Chroma server at {chroma_url}: {_first_line(exc)}"
            ) from exc
    path = str(data_dir / "chroma")
    try:
        return chromadb.PersistentClient(path=path, settings=chroma_settings)
    except Exception as exc:  # chromadb raises several types for a bad or locked directory
        forget_failed_open(path)
        if is_damage(exc):
            raise StoreError(damaged_message(str(data_dir), exc)) from exc
        message = f"Cannot open the store in {data_dir}: {_first_line(exc)}"
        raise StoreError(with_space(message, str(data_dir))) from exc


class Store:
    """The chunk and sentence collections of one corpus."""

    def __init__(
        self,
        client: Any,
        collection: str,
        embed_threads: int = 2,
        location: str = "embedded",
        embedder: TextEmbedder | None = None,
        chunk_vectors: str = SENTENCE_MEAN,
        leaning_sentences: str = WITH_PREVIOUS,
    ) -> None:
        """``embedder``: the model that embeds for this collection (default: the packaged e5).
        ``chunk_vectors`` and ``leaning_sentences``: how a new collection makes its chunk
        vectors and embeds a sentence that leans on the one before (an existing one keeps its
        own ways: :mod:`retrieval.collection_record`)."""
        self.name = validate_collection_name(collection)
        self.location = location
        #: Calls that wrote to or deleted from the store (an ingest that made none changed
        #: nothing, and needs no new revision).
        self.writes = 0
        self._client = client
        if embedder is None:
            ef: Any = E5EmbeddingFunction(embed_threads)
            model_id, self._dimensions = MODEL_ID, lambda: DIMENSIONS
        else:
            from retrieval.embedders import embedding_function

            ef, model_id = embedding_function(embedder, embed_threads), embedder.model_id
            self._dimensions = lambda: embedder.dimensions
        names = collection_names(self.name)
        collection_record.check(client, self.name, names, model_id)
        meta = {"hnsw:space": "cosine"}
        try:
            self.chunks = client.get_or_create_collection(
                names[0], embedding_function=ef, metadata=meta
            )
            self.sentences = client.get_or_create_collection(
                names[1], embedding_function=ef, metadata=meta
            )
            collection_record.record((self.chunks, self.sentences), model_id, self._dimensions)
            self.chunk_vectors = collection_record.chunk_vectors(self.chunks, chunk_vectors)
            self.leaning_sentences = collection_record.leaning_sentences(
                self.sentences, leaning_sentences
            )
        except StoreError:
            raise
        except Exception as exc:
            if is_damage(exc) and not location.startswith(("http://", "https://")):
                raise StoreError(damaged_message(location, exc)) from exc
            raise StoreError(f"Cannot open collection {self.name!r}: {exc}") from exc

    # ---- reads -------------------------------------------------------------------------
    @guarded
    def count(self) -> int:
        return self.chunks.count()

    @guarded
    def source_state(self, source: str) -> tuple[list[str], list[dict], list[str], list[dict]]:
        """Ids and metadata of the chunks and sentences stored for ``source``."""
        c = self.chunks.get(where={"source": source}, include=["metadatas"])
        s = self.sentences.get(where={"source": source}, include=["metadatas"])
        return c["ids"], c["metadatas"], s["ids"], s["metadatas"]

    @guarded
    def sources(self) -> dict[str, int]:
        """Every stored document and its chunk count."""
        counts: dict[str, int] = {}
        for _, meta, _ in self._iter_records("chunks", ["metadatas"]):
            counts[meta["source"]] = counts.get(meta["source"], 0) + 1
        return dict(sorted(counts.items()))

    @guarded
    def all_chunks(self) -> list[Chunk]:
        """Every chunk with its text (for the lexical index)."""
        return [
            Chunk(cid, meta["source"], int(meta["start"]), int(meta["end"]), text)
            for cid, meta, text in self._iter_records("chunks", ["metadatas", "documents"])
        ]

    @guarded
    def all_sentences(self) -> list[SentenceRecord]:
        """Where every sentence is (no vectors): the corpus keeps these in memory."""
        return [
            SentenceRecord(sid, meta["source"], int(meta["start"]), int(meta["end"]))
            for sid, meta, _ in self._iter_records("sentences", ["metadatas"])
            if not is_stated(sid)
        ]

    @guarded
    def nearest(self, collection: str, vector: np.ndarray, n: int) -> list[tuple[str, float]]:
        """Ids of the ``n`` nearest chunks or sentences, with their cosine similarity.

        Only ids and distances: the corpus in memory already knows where each record is,
        and reading metadata and text back for every hit doubled the query's cost.
        """
        if n <= 0:
            return []
        target = self.chunks if collection == "chunks" else self.sentences
        res = target.query(query_embeddings=[vector], n_results=n, include=["distances"])
        return [
            (rid, 1.0 - float(d)) for rid, d in zip(res["ids"][0], res["distances"][0], strict=True)
        ]

    @guarded
    def vectors(self, collection: str, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of the records ``ids`` that exist, by id."""
        if not ids:
            return {}
        target = self.chunks if collection == "chunks" else self.sentences
        res = target.get(ids=list(ids), include=["embeddings"])
        found = np.asarray(res["embeddings"], dtype=np.float32).reshape(len(res["ids"]), -1)
        return dict(zip(res["ids"], found, strict=True))

    @guarded
    def sentence_vectors(self, ids: Sequence[str]) -> np.ndarray:
        """The stored vectors of the sentences ``ids``, one row each, in that order.

        A lookup by id, in one call for all of a question's passages: a metadata-filtered
        ``get`` per passage scans the filter and grew to ~140 ms a call at 35k sentences.
        """
        if not ids:
            return np.zeros((0, self._dimensions()), dtype=np.float32)
        res = self.sentences.get(ids=list(ids), include=["embeddings"])
        row = {sid: i for i, sid in enumerate(res["ids"])}
        found = np.asarray(res["embeddings"], dtype=np.float32).reshape(len(res["ids"]), -1)
        width = found.shape[1] if len(res["ids"]) else self._dimensions()
        out = np.zeros((len(ids), width), dtype=np.float32)
        for i, sid in enumerate(ids):
            if sid in row:  # a sentence deleted since the corpus was read scores as unrelated
                out[i] = found[row[sid]]
        return out

    @guarded
    def page(self, collection: str, include: list[str], offset: int, limit: int) -> dict:
        """One page of the records of ``collection`` (``get`` with ``limit`` and ``offset``):
        what :mod:`retrieval.snapshot` reads the whole collection with, a page at a time."""
        target = self.chunks if collection == "chunks" else self.sentences
        return dict(target.get(include=include, limit=limit, offset=offset))

    def pages(self, collection: str, include: list[str]) -> Iterator[dict]:
        """Every record of ``collection``, a page (:meth:`page`) at a time."""
        offset = 0
        while True:
            page = self.page(collection, include, offset, _GET_PAGE)
            yield page
            if len(page["ids"]) < _GET_PAGE:
                return
            offset += _GET_PAGE

    @guarded
    def chunk_ids(self) -> list[str]:
        """The id of every chunk (ids come from content: an edited document has new ones)."""
        # Not through :meth:`pages`: ids alone are a check of a snapshot, not a read of
        # the collection's contents.
        ids: list[str] = []
        while True:
            page = self.chunks.get(include=[], limit=_GET_PAGE, offset=len(ids))
            ids += page["ids"]
            if len(page["ids"]) < _GET_PAGE:
                return ids

    def dimensions(self) -> int:
        """The width of this collection's vectors (its embedding model's)."""
        return int(self._dimensions())

    # ---- writes ------------------------------------------------------------------------
    @guarded
    def upsert(
        self,
        collection: str,
        ids: Sequence[str],
        vectors: np.ndarray,
        metadatas: Sequence[dict],
        documents: Sequence[str] | None = None,
    ) -> None:
        target = self.chunks if collection == "chunks" else self.sentences
        self.writes += bool(len(ids))
        for i in range(0, len(ids), _BATCH):
            kwargs: dict[str, Any] = {
                "ids": list(ids[i : i + _BATCH]),
                "embeddings": vectors[i : i + _BATCH],
                "metadatas": list(metadatas[i : i + _BATCH]),
            }
            if documents is not None:
                kwargs["documents"] = list(documents[i : i + _BATCH])
            target.upsert(**kwargs)

    @guarded
    def delete(self, collection: str, ids: Iterable[str]) -> None:
        target = self.chunks if collection == "chunks" else self.sentences
        ids = list(ids)
        self.writes += bool(ids)
        for i in range(0, len(ids), _BATCH):
            target.delete(ids=ids[i : i + _BATCH])

    def _iter_records(self, collection: str, include: list[str]) -> Iterable[tuple[str, dict, Any]]:
        """(id, metadata, document or None) of every record, read page by page."""
        for page in self.pages(collection, include):
            documents = page.get("documents") or [None] * len(page["ids"])
            yield from zip(page["ids"], page["metadatas"], documents, strict=True)


def collection_names(collection: str) -> tuple[str, str]:
    """The Chroma collections (chunks, sentences) of the corpus ``collection``."""
    return f"qabot-{collection}-chunks", f"qabot-{collection}-sentences"


def revision_path(data_dir: Path, collection: str) -> Path:
    return data_dir / f"{collection}.revision"


def bump_revision(data_dir: Path, collection: str) -> None:
    """Tell other processes (a running bot) that the corpus changed."""
    path = revision_path(data_dir, collection)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text(uuid.uuid4().hex)
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"Cannot write to the data directory {data_dir}: {exc.strerror}.") from exc


def read_revision(data_dir: Path, collection: str) -> str:
    try:
        return revision_path(data_dir, collection).read_text()
    except OSError:
        return ""
