"""Chunk vectors derived from sentence vectors: what they are, and that a collection keeps
the way it was built."""

from __future__ import annotations

import numpy as np
import pytest

from answering.pipeline import Pipeline
from qabot.settings import Settings
from retrieval import indexer
from retrieval.collection_record import EMBEDDED, SENTENCE_MEAN
from retrieval.embeddings import Embedder, get_embedder
from retrieval.sentences import sentence_spans, stated_span

NAMES = ["Ada", "Bela", "Chen", "Dara", "Emil", "Farah", "Goran", "Hana", "Ines", "Joao"]
TEXT = " ".join(
    f"Module {n} of the lunar Gateway was built by a team led by {name}. "
    f"It weighs {n * 3 + 2} tonnes and carries {n + 1} docking ports. "
    f"Crews will reach module {n} on their way to the Moon."
    for n, name in enumerate(NAMES)
)


@pytest.fixture
def doc(tmp_path):
    target = tmp_path / "docs"
    target.mkdir()
    (target / "gateway.txt").write_text(TEXT, encoding="utf-8")
    return target


def stored(pipeline: Pipeline, collection: str) -> dict[str, tuple[dict, np.ndarray]]:
    got = getattr(pipeline.store, collection).get(include=["metadatas", "embeddings"])
    vectors = np.asarray(got["embeddings"], dtype=np.float32)
    return {i: (m, v) for i, m, v in zip(got["ids"], got["metadatas"], vectors, strict=True)}


def expected_chunk_vector(text: str, start: int, end: int) -> np.ndarray:
    """The weighted mean, computed here from scratch: every sentence that reaches into the
    chunk, weighted by the characters it has inside it."""
    spans = [(s, e) for s, e in sentence_spans(text) if s < end and e > start]
    vectors = get_embedder().passages([text[s:e] for s, e in spans])
    weights = np.array([min(end, e) - max(start, s) for s, e in spans], dtype=np.float64)
    mean = (vectors * weights[:, None]).sum(0) / weights.sum()
    return mean / np.linalg.norm(mean)


def test_a_new_collection_derives_chunk_vectors_from_its_sentences(tmp_path, doc):
    settings = Settings(qabot_data_dir=tmp_path / "data", qabot_chunk_tokens=60, _env_file=None)
    embedder = Embedder()  # its own cache: every text it embeds is counted
    pipeline = Pipeline(settings, embedder=embedder)
    pipeline.ingest([doc])
    assert pipeline.store.chunk_vectors == SENTENCE_MEAN
    chunks = stored(pipeline, "chunks")
    assert len(chunks) > 3
    # Only the sentences (and what a leaning sentence states with the one before) went
    # through the model, each distinct text once: no chunk did.
    spans = sentence_spans(TEXT)
    pairs = [p for i in range(len(spans)) if (p := stated_span(spans, i, TEXT)) is not None]
    distinct = {TEXT[s:e] for s, e in spans + pairs}
    assert len(pairs) == len(NAMES)  # "It weighs ..."
    assert embedder.embedded == len(distinct)
    for meta, vector in chunks.values():
        want = expected_chunk_vector(TEXT, meta["start"], meta["end"])
        assert float(vector @ want) > 0.9999


def test_embedded_chunk_vectors_when_asked(tmp_path, doc):
    settings = Settings(
        qabot_data_dir=tmp_path / "data",
        qabot_chunk_tokens=60,
        qabot_chunk_vectors="embedded",
        _env_file=None,
    )
    pipeline = Pipeline(settings)
    pipeline.ingest([doc])
    assert pipeline.store.chunk_vectors == EMBEDDED
    for meta, vector in stored(pipeline, "chunks").values():
        direct = get_embedder().passages([TEXT[meta["start"] : meta["end"]]])[0]
        assert float(vector @ direct) > 0.9999


def test_a_collection_keeps_the_way_it_was_built(tmp_path, doc):
    """A collection built with embedded chunk vectors stays so when the setting changes:
    mixing the two would rank documents by how they happened to be ingested."""
    data = tmp_path / "data"
    old = Settings(qabot_data_dir=data, qabot_chunk_vectors="embedded", _env_file=None)
    Pipeline(old).ingest([doc])
    reopened = Pipeline(Settings(qabot_data_dir=data, _env_file=None))
    assert reopened.store.chunk_vectors == EMBEDDED
    # A rebuild starts over, the new way.
    reopened.ingest([doc], rebuild=True)
    assert reopened.store.chunk_vectors == SENTENCE_MEAN


def test_an_unrecorded_collection_with_chunks_counts_as_embedded(tmp_path, doc):
    """Collections written before the record existed embedded every chunk."""
    data = tmp_path / "data"
    pipeline = Pipeline(
        Settings(qabot_data_dir=data, qabot_chunk_vectors="embedded", _env_file=None)
    )
    pipeline.ingest([doc])
    chunks = pipeline.store.chunks
    meta = {k: v for k, v in (chunks.metadata or {}).items() if not k.startswith("hnsw:")}
    meta.pop("qabot:chunk_vectors")
    chunks.modify(metadata=meta)
    assert Pipeline(Settings(qabot_data_dir=data, _env_file=None)).store.chunk_vectors == EMBEDDED


def test_a_resumed_ingest_derives_chunks_from_sentences_written_before(tmp_path, doc, monkeypatch):
    """An ingest killed after writing some sentences: the next run finds their vectors in the
    store, and the chunk vectors come out as a clean ingest makes them."""
    settings = Settings(qabot_data_dir=tmp_path / "data", qabot_chunk_tokens=60, _env_file=None)
    pipeline = Pipeline(settings)
    monkeypatch.setattr(indexer, "BATCH_TEXTS", 8)
    real_flush = indexer._Writer.flush
    calls = {"n": 0}

    def failing_flush(self):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt  # killed half-way, after two batches were written
        real_flush(self)

    monkeypatch.setattr(indexer._Writer, "flush", failing_flush)
    with pytest.raises(KeyboardInterrupt):
        pipeline.ingest([doc])
    monkeypatch.setattr(indexer._Writer, "flush", real_flush)
    assert pipeline.store.sentences.count() > 0
    pipeline.ingest([doc])
    for meta, vector in stored(pipeline, "chunks").values():
        want = expected_chunk_vector(TEXT, meta["start"], meta["end"])
        assert float(vector @ want) > 0.9999
