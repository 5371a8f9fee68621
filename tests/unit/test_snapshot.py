"""The corpus snapshot (retrieval/snapshot.py): what it holds is what the store holds, each
revision gets its own, and a damaged, partial or foreign one is never read (issue 15)."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from answering.pipeline import Pipeline
from qabot.settings import Settings
from retrieval import snapshot
from retrieval.corpus import Corpus
from retrieval.ingest_lock import IngestLock
from retrieval.lexical import LexicalIndex
from retrieval.snapshot import Snapshots
from retrieval.store import Store

TEA = (
    "# Tea\n\nThe harbour office logged 140 crates of tea in March. The clerk, Ada Moss, "
    "counted them twice.\n\nShe sent the tally to the guild on Friday.\n"
)
ROPE = (
    "# Rope\n\nThe ropewalk on Quay Street made hemp cables for the navy. Each cable was "
    "three hundred yards long.\n\nThe walk closed in 1911 after a fire.\n"
)


def make(data: Path) -> Pipeline:
    return Pipeline(Settings(qabot_data_dir=data, _env_file=None))


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    d = tmp_path / "docs"
    d.mkdir()
    (d / "tea.md").write_text(TEA, encoding="utf-8")
    (d / "rope.md").write_text(ROPE, encoding="utf-8")
    return d


@pytest.fixture
def ingested(tmp_path: Path, docs: Path) -> Pipeline:
    pipeline = make(tmp_path / "data")
    pipeline.ingest([docs])
    return pipeline


def published(pipeline: Pipeline) -> list[Path]:
    root = snapshot.snapshots_dir(pipeline.settings.data_dir, pipeline.collection)
    if not root.exists():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def no_store_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading the whole store (what a snapshot saves) fails from now on."""

    def refuse(*args, **kwargs):
        raise AssertionError("the store was read in full")

    monkeypatch.setattr(Store, "page", refuse)
    monkeypatch.setattr(Store, "all_chunks", refuse)
    monkeypatch.setattr(Store, "all_sentences", refuse)


def test_a_snapshot_holds_exactly_what_the_store_holds(ingested: Pipeline) -> None:
    store = ingested.store
    revision = ingested._revision()
    [path] = published(ingested)
    assert path == Snapshots(ingested.settings.data_dir, ingested.collection).path(revision)
    corpus = snapshot.load(path, revision)

    chunks = sorted(store.all_chunks(), key=lambda c: c.id)
    assert sorted(corpus.chunks, key=lambda c: c.id) == chunks
    for c in chunks:
        assert corpus.chunks[corpus.position[c.id]] == c
        assert corpus.text(c.source, c.start, c.end) == c.text
    sentences = store.all_sentences()
    got = [
        r for source in {s.source for s in sentences} for r in corpus.sentences_in(source, 0, 10**9)
    ]
    assert sorted(got, key=lambda r: r.id) == sorted(sentences, key=lambda r: r.id)
    for r in sentences:
        assert corpus.sentence_by_id(r.id) == r

    ids = [r.id for r in sentences]
    expected = store.sentence_vectors(ids)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    assert np.allclose(corpus.sentence_vectors(ids), expected, atol=1e-6)
    unknown = corpus.sentence_vectors(["no-such-sentence", ids[0]])
    assert not unknown[0].any() and np.allclose(unknown[1], expected[0], atol=1e-6)

    # The BM25 index: the same scores and document frequencies as one built in memory.
    in_memory = LexicalIndex([c.text for c in corpus.chunks])
    for q in ("crates of tea", "hemp cables navy", "fire 1911", "nothing matches zebra"):
        assert np.allclose(corpus.lexical.scores(q), in_memory.scores(q))
    assert corpus.lexical.df == in_memory.df
    assert corpus.lexical.size == len(chunks)


def test_the_snapshot_corpus_answers_like_one_read_from_the_store(ingested: Pipeline) -> None:
    store = ingested.store
    snap = ingested.corpus()
    mem = Corpus(store.all_chunks(), snap.revision, store.all_sentences(), vectors=store)
    sources = {c.source for c in store.all_chunks()}
    assert set(snap.by_source) == set(mem.by_source) == sources
    for source in sources:
        for pos in range(0, 300, 7):
            assert snap.sentence_before(source, pos) == mem.sentence_before(source, pos)
            assert snap.sentence_after(source, pos) == mem.sentence_after(source, pos)
            assert snap.sentences_in(source, pos, pos + 40) == mem.sentences_in(
                source, pos, pos + 40
            )
            assert snap.text(source, pos, pos + 30) == mem.text(source, pos, pos + 30)
    assert snap.text("no-such-source", 0, 5) is None
    assert snap.sentences_in("no-such-source", 0, 5) == []
    assert "no-such-chunk" not in snap.position


def test_a_new_process_opens_the_snapshot_without_reading_the_store(
    ingested: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_store_reads(monkeypatch)
    other = make(ingested.settings.data_dir)
    answer = other.ask("How many crates of tea did the harbour office log?")
    assert "140" in answer.text


def test_answers_use_no_store_sentence_index(
    ingested: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store's sentence vectors are never read to answer (they would be loaded whole)."""
    store = ingested.store
    nearest = store.nearest

    def chunks_only(collection, vector, n):
        assert collection == "chunks", "the sentence index was queried"
        return nearest(collection, vector, n)

    def refuse(*args, **kwargs):
        raise AssertionError("sentence vectors were read from the store")

    monkeypatch.setattr(store, "nearest", chunks_only)
    monkeypatch.setattr(store, "sentence_vectors", refuse)
    monkeypatch.setattr(store, "vectors", refuse)
    answer = ingested.ask("Who counted the crates twice?")
    assert "Ada Moss" in answer.text
    assert ingested.ask("When did the ropewalk close?").citations


def test_an_ingest_publishes_a_new_snapshot_and_answers_see_the_new_text(
    ingested: Pipeline, docs: Path
) -> None:
    assert "140" in ingested.ask("How many crates of tea did the harbour office log?").text
    first = published(ingested)
    (docs / "tea.md").write_text(TEA.replace("140", "260"), encoding="utf-8")
    ingested.ingest([docs])
    assert "260" in ingested.ask("How many crates of tea did the harbour office log?").text
    second = published(ingested)
    assert len(second) == 2 and first[0] in second  # the previous one is kept
    fresh = make(ingested.settings.data_dir)
    assert "260" in fresh.ask("How many crates of tea did the harbour office log?").text
    (docs / "rope.md").write_text(ROPE.replace("1911", "1923"), encoding="utf-8")
    ingested.ingest([docs])
    third = published(ingested)
    assert len(third) == 2 and first[0] not in third  # older ones go


def test_a_corpus_in_use_survives_the_deletion_of_its_snapshot(
    ingested: Pipeline, docs: Path
) -> None:
    """A process answering from an old snapshot keeps it (mapped files outlive deletion)."""
    old = ingested.corpus()
    [chunk] = [c for c in old.chunks if "140 crates" in c.text]
    sentence = old.sentences_in(chunk.source, chunk.start, chunk.end)[0]
    vector = old.sentence_vectors([sentence.id])
    for n in (260, 380):
        (docs / "tea.md").write_text(TEA.replace("140", str(n)), encoding="utf-8")
        ingested.ingest([docs])
    assert (
        not snapshot.snapshots_dir(ingested.settings.data_dir, "default")
        .joinpath(snapshot.revision_key(old.revision))
        .exists()
    )
    assert old.text(chunk.source, chunk.start, chunk.end) == chunk.text
    assert np.array_equal(old.sentence_vectors([sentence.id]), vector)
    assert old.lexical.scores("crates").max() > 0


def corrupt_vectors(path: Path) -> None:
    with open(path / "sent_vectors.npy", "r+b") as f:
        f.truncate(200)


def corrupt_stated_vectors(path: Path) -> None:
    """The vectors of what leaning sentences state with the one before, cut short."""
    with open(path / "stated_vectors.npy", "r+b") as f:
        f.truncate(100)


def drop_stated_ids(path: Path) -> None:
    (path / "stated_ids.npy").unlink()


def corrupt_manifest(path: Path) -> None:
    (path / "manifest.json").write_text("{not json", encoding="utf-8")


def drop_bm25(path: Path) -> None:
    for f in (path / "lexical").glob("*.npy"):
        f.unlink()


def garble_offsets(path: Path) -> None:
    # The same size, other content: the arrays no longer agree with the blob.
    np.save(path / "text_end.npy", np.load(path / "text_end.npy") + 10**9)


@pytest.mark.parametrize(
    "damage",
    [
        corrupt_vectors,
        corrupt_stated_vectors,
        drop_stated_ids,
        corrupt_manifest,
        drop_bm25,
        garble_offsets,
    ],
)
def test_a_damaged_snapshot_is_rebuilt_from_the_store(ingested: Pipeline, damage) -> None:
    [path] = published(ingested)
    damage(path)
    other = make(ingested.settings.data_dir)
    assert "140" in other.ask("How many crates of tea did the harbour office log?").text
    [rebuilt] = published(ingested)
    assert rebuilt == path
    snapshot.load(rebuilt, ingested._revision())  # whole again


def test_a_snapshot_of_another_revision_is_never_used(ingested: Pipeline, docs: Path) -> None:
    [old] = published(ingested)
    (docs / "tea.md").write_text(TEA.replace("140", "260"), encoding="utf-8")
    ingested.ingest([docs])
    new = Snapshots(ingested.settings.data_dir, "default").path(ingested._revision())
    shutil.rmtree(new)
    shutil.copytree(old, new)  # the old revision's content where the new one's belongs
    other = make(ingested.settings.data_dir)
    assert "260" in other.ask("How many crates of tea did the harbour office log?").text
    assert json.loads((new / "manifest.json").read_text())["revision"] == ingested._revision()


def test_a_half_written_snapshot_is_never_read(
    ingested: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    [path] = published(ingested)
    shutil.rmtree(path)  # as for a store written before snapshots

    def killed(self, directory):
        directory.mkdir(parents=True)
        (directory / "lexical.json").write_text("{", encoding="utf-8")
        raise KeyboardInterrupt  # the builder dies half way

    monkeypatch.setattr(LexicalIndex, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        make(ingested.settings.data_dir).corpus()
    assert published(ingested) == []
    monkeypatch.undo()
    root = snapshot.snapshots_dir(ingested.settings.data_dir, "default")
    leftover = root / ".tmp-1-dead"  # as a builder killed by a signal leaves it
    leftover.mkdir()
    (leftover / "manifest.json").write_text("{}", encoding="utf-8")
    other = make(ingested.settings.data_dir)
    assert "140" in other.ask("How many crates of tea did the harbour office log?").text
    assert published(ingested) == [path]
    assert not leftover.exists()


def test_a_reader_during_an_ingest_does_not_publish_what_it_read(ingested: Pipeline) -> None:
    [path] = published(ingested)
    shutil.rmtree(path)
    with IngestLock(ingested.settings.data_dir, "default").hold():
        # Another process is ingesting: the store may be half changed.
        reader = make(ingested.settings.data_dir)
        assert "140" in reader.ask("How many crates of tea did the harbour office log?").text
        assert published(ingested) == []
    assert "140" in make(ingested.settings.data_dir).ask("How many crates of tea?").text
    assert published(ingested) == [path]


def test_answers_come_from_the_old_snapshot_while_the_new_one_is_built(
    ingested: Pipeline, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    question = "How many crates of tea did the harbour office log?"
    assert "140" in ingested.ask(question).text
    other = make(ingested.settings.data_dir)  # another process's pipeline, as a bot's
    assert "140" in other.ask(question).text
    building, release = threading.Event(), threading.Event()
    write = snapshot.write

    def slow_write(*args):
        building.set()
        assert release.wait(60)
        write(*args)

    monkeypatch.setattr(snapshot, "write", slow_write)
    (docs / "tea.md").write_text(TEA.replace("140", "260"), encoding="utf-8")
    failed: list[BaseException] = []

    def run() -> None:
        try:
            ingested.ingest([docs])
        except BaseException as exc:
            failed.append(exc)

    ingest = threading.Thread(target=run)
    ingest.start()
    try:
        assert building.wait(120)
        assert "140" in ingested.ask(question).text  # the old corpus, without waiting
        assert "140" in other.ask(question).text
    finally:
        release.set()
        ingest.join(120)
    assert not failed
    assert "260" in ingested.ask(question).text
    assert "260" in other.ask(question).text


def test_a_disk_that_refuses_the_snapshot_still_answers(
    ingested: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    [path] = published(ingested)
    shutil.rmtree(path)

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(snapshot, "write", full)
    other = make(ingested.settings.data_dir)
    assert "140" in other.ask("How many crates of tea did the harbour office log?").text
    assert published(ingested) == []


def test_a_snapshot_whose_chunks_differ_from_the_store_is_not_used(ingested: Pipeline) -> None:
    snapshots = Snapshots(ingested.settings.data_dir, "default")
    revision = ingested._revision()
    assert snapshots.open(revision, ingested.store.chunk_ids) is not None
    assert snapshots.open(revision, lambda: ["another-chunk"]) is None
    assert published(ingested) == []


def test_an_empty_collection_has_an_empty_snapshot(tmp_path: Path) -> None:
    pipeline = make(tmp_path / "data")
    corpus = pipeline.corpus()
    assert corpus.size == 0 and not corpus.chunks and not corpus.by_source
    assert corpus.lexical.scores("anything").shape == (0,)
    assert pipeline.ask("Is anything stored?").abstained
    assert len(published(pipeline)) == 1


def test_a_snapshot_that_cannot_be_built_still_answers(
    ingested: Pipeline, monkeypatch: pytest.MonkeyPatch, docs: Path
) -> None:
    """A snapshot is a cache: a failure building it never fails an ingest or a question."""

    def broken(*args):
        raise ValueError("a bug")

    monkeypatch.setattr(snapshot, "write", broken)
    (docs / "tea.md").write_text(TEA.replace("140", "260"), encoding="utf-8")
    report = ingested.ingest([docs])
    assert report.updated
    assert "260" in ingested.ask("How many crates of tea did the harbour office log?").text


def test_an_ingest_that_changes_nothing_keeps_the_revision_and_its_snapshot(
    ingested: Pipeline, docs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Re-running an ingest over unchanged documents (a nightly job, say) neither makes a
    new revision, which every process would re-read, nor builds the snapshot again."""
    revision = ingested._revision()
    before = published(ingested)

    def refuse(*args, **kwargs):
        raise AssertionError("the snapshot was built again")

    monkeypatch.setattr(Snapshots, "build", refuse)
    report = ingested.ingest([docs])
    assert len(report.unchanged) == 2
    assert ingested._revision() == revision and published(ingested) == before
    assert "140" in ingested.ask("How many crates of tea did the harbour office log?").text
    monkeypatch.undo()
    # A change still makes a new revision.
    (docs / "rope.md").unlink()
    assert ingested.ingest([docs]).removed
    assert ingested._revision() != revision


def test_the_bm25_index_is_the_one_bm25s_builds_from_every_text_at_once() -> None:
    """The index is built a text at a time (bounded memory), not from every text's term list
    at once as ``bm25s.BM25.index`` wants them: it must be that same index, bit for bit."""
    import bm25s

    from retrieval.lexical import terms

    texts = [
        TEA,
        ROPE,
        "",
        "the of and",  # stop words only: a text with no terms
        "Café café cafe\u0301 CAFÉ, tea tea tea and rope",
        "1911 1911 crates crate crating",
        *(f"word{i % 7} word{i % 3} harbour {i}" for i in range(50)),
    ]
    for corpus in (texts, ["", "the"], [TEA], []):
        expected = bm25s.BM25()
        tokens = [terms(t) for t in corpus]
        if any(tokens):
            expected.index(tokens, show_progress=False)
        index = LexicalIndex(corpus)
        df: dict[str, int] = {}
        for doc in tokens:
            for t in set(doc):
                df[t] = df.get(t, 0) + 1
        assert list(index.df.items()) == list(df.items())
        got = index._retriever
        if not any(tokens):
            assert index._empty and not hasattr(got, "scores")
            continue
        assert list(got.vocab_dict.items()) == list(expected.vocab_dict.items())
        assert got.scores["num_docs"] == expected.scores["num_docs"] == len(corpus)
        for name in ("data", "indices", "indptr"):
            a, b = got.scores[name], expected.scores[name]
            assert a.dtype == b.dtype and a.shape == b.shape
            assert a.tobytes() == b.tobytes(), name
        for query in ("tea crates", "café", "word3 harbour", "1911"):
            assert np.array_equal(index.scores(query), expected.get_scores(terms(query)))


def test_a_snapshot_read_in_small_pages_is_the_same_snapshot(
    ingested: Pipeline, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build keeps each page of records as arrays (ids as wide as the page's longest):
    pages of any size make the same files, byte for byte."""
    from retrieval import store as store_module

    revision = ingested._revision()
    snapshot.write(ingested.store, tmp_path / "one", revision)
    monkeypatch.setattr(store_module, "_GET_PAGE", 3)
    steps: list[str] = []
    snapshot.write(ingested.store, tmp_path / "small", revision, phase=steps.append)
    assert steps == [
        "chunks",
        "sentences",
        "assemble",
        "vectors",
        "lexical build",
        "lexical save",
        "manifest",
    ]
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*"))
    assert files == sorted(
        p.relative_to(tmp_path / "small") for p in (tmp_path / "small").rglob("*")
    )
    assert Path("manifest.json") in files and Path("sent_vectors.npy") in files
    for name in files:
        if (tmp_path / "one" / name).is_file():
            one = (tmp_path / "one" / name).read_bytes()
            assert one == (tmp_path / "small" / name).read_bytes(), name
    assert ingested.store.sentences.count() > 3 * 2  # more than one page of sentences
