"""Nothing lost, nothing invented: source identity, seeding, files changing during an ingest,
big files streamed in batches, and no text embedded twice (issue 14, items 1-3, 13, 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

from answering.pipeline import Pipeline
from qabot.errors import StoreError
from qabot.settings import Settings
from retrieval import embeddings, indexer
from retrieval.seeding import marker_path
from tests.paths import SEEDS


def make_pipeline(data: Path, **kwargs) -> Pipeline:
    return Pipeline(Settings(qabot_data_dir=data, _env_file=None, **kwargs))


def long_text(n: int, tag: str = "") -> str:
    """``n`` distinct sentences, a paragraph break every ten."""
    return "".join(
        f"Entry {i}{tag}: the harbour office logged {i * 7} crates of {tag or 'tea'}."
        + ("\n\n" if i % 10 == 9 else " ")
        for i in range(n)
    )


class CountingModel:
    """The real e5 model (whichever engine), counting the texts it embeds and each call's size."""

    def __init__(self, embed) -> None:
        self.embed, self.texts, self.calls = embed, [], []

    def __call__(self, texts):
        self.texts.extend(texts)
        self.calls.append(len(texts))
        return self.embed(texts)


@pytest.fixture
def small_batches(monkeypatch) -> int:
    """Batches of 24 texts: a small file spans many of them, as a big one would."""
    monkeypatch.setattr(indexer, "BATCH_TEXTS", 24)
    return 24


@pytest.fixture
def counting(monkeypatch) -> CountingModel:
    embedder = embeddings.get_embedder(2)
    counter = CountingModel(embedder._embed)
    monkeypatch.setattr(embedder, "_embed", counter)  # every passage the model embeds
    monkeypatch.setattr(embedder, "_cache", type(embedder._cache)())
    return counter


# ---- 1. one stable identity per source ---------------------------------------------------


def test_another_working_directory_removes_nothing(tmp_path, monkeypatch):
    for name, text in (("p1", "Alpha is the first letter."), ("p2", "Beta is the second.")):
        (tmp_path / name / "docs").mkdir(parents=True)
        (tmp_path / name / "docs" / f"{name}.txt").write_text(text, "utf-8")
    pipeline = make_pipeline(tmp_path / "data")
    monkeypatch.chdir(tmp_path / "p1")
    pipeline.ingest([Path("docs")])
    monkeypatch.chdir(tmp_path / "p2")
    report = pipeline.ingest([Path("docs")])
    assert report.removed == [] and len(report.added) == 1
    assert sorted(pipeline.sources()) == [
        str((tmp_path / "p1/docs/p1.txt").resolve()),
        str((tmp_path / "p2/docs/p2.txt").resolve()),
    ]
    # A file deleted from the folder is removed, whichever directory the ingest runs from.
    (tmp_path / "p1/docs/p1.txt").unlink()
    report = pipeline.ingest([Path("../p1/docs")])
    assert report.removed == [str((tmp_path / "p1/docs/p1.txt").resolve())]
    assert list(pipeline.sources()) == [str((tmp_path / "p2/docs/p2.txt").resolve())]


def test_relative_and_absolute_paths_are_one_document(tmp_path, monkeypatch):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("The ferry leaves at noon.", "utf-8")
    pipeline = make_pipeline(tmp_path / "data")
    monkeypatch.chdir(tmp_path)
    pipeline.ingest([Path("docs")])
    again = pipeline.ingest([(tmp_path / "docs").resolve()])
    assert again.added == [] and len(again.unchanged) == 1
    assert list(pipeline.sources().values()) == [1]
    top = pipeline.ask("When does the ferry leave?", k=5)
    assert len({(h.chunk.source, h.chunk.start) for h in top.retrieved}) == len(top.retrieved)


def test_relative_sources_of_an_older_store_are_migrated_not_lost(tmp_path, monkeypatch):
    """Stores written before the absolute identity hold relative sources: the ingest that
    finds the same file from the same directory replaces them; others are left alone."""
    for name in ("p1", "p2"):
        (tmp_path / name / "docs").mkdir(parents=True)
        (tmp_path / name / "docs" / "a.txt").write_text(f"The {name} garden opens in May.", "utf-8")
    pipeline = make_pipeline(tmp_path / "data")
    pipeline.ingest([tmp_path / "p1" / "docs"])
    store = pipeline.store
    # Rewrite the stored rows as an older version wrote them: source "docs/a.txt".
    for collection in (store.chunks, store.sentences):
        rows = collection.get(include=["embeddings", "metadatas", "documents"])
        collection.delete(ids=rows["ids"])
        metas = [{**m, "source": "docs/a.txt"} for m in rows["metadatas"]]
        ids = [f"old-{i}" for i in rows["ids"]]
        collection.upsert(
            ids=ids, embeddings=rows["embeddings"], metadatas=metas, documents=rows["documents"]
        )
    assert list(pipeline.sources()) == ["docs/a.txt"]
    monkeypatch.chdir(tmp_path / "p2")  # here docs/a.txt is another file: keep the old one
    pipeline.ingest([Path("docs")])
    assert "docs/a.txt" in pipeline.sources()
    monkeypatch.chdir(tmp_path / "p1")  # here it is the same file: replaced, not duplicated
    report = pipeline.ingest([Path("docs")])
    assert report.updated == [str((tmp_path / "p1/docs/a.txt").resolve())]
    assert sorted(pipeline.sources()) == [
        str((tmp_path / "p1/docs/a.txt").resolve()),
        str((tmp_path / "p2/docs/a.txt").resolve()),
    ]


# ---- 2. seeds only for a store never initialised -----------------------------------------


def test_an_initialised_store_found_empty_is_an_error_not_reseeded(tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The archive closes at five.", "utf-8")
    make_pipeline(tmp_path / "data", qabot_seeds=SEEDS).ingest([docs])
    lost = tmp_path / "lost"  # the data directory after its Chroma files were lost
    lost.mkdir()
    marker_path(lost, "default").write_bytes(marker_path(tmp_path / "data", "default").read_bytes())
    pipeline = make_pipeline(lost, qabot_seeds=SEEDS)
    with pytest.raises(StoreError, match="has no documents.*rebuild"):
        pipeline.ensure_seeded()
    assert pipeline.sources() == {}
    # A data directory never used is still seeded.
    fresh = make_pipeline(tmp_path / "fresh", qabot_seeds=SEEDS)
    assert fresh.ensure_seeded() is not None and len(fresh.sources()) == 2


def test_an_ask_during_a_first_ingest_adds_no_seeds(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "mine.txt").write_text("My notes say the bakery opens at six.", "utf-8")
    settings = Settings(qabot_data_dir=tmp_path / "data", _env_file=None, qabot_seeds=SEEDS)
    ingesting, asking = Pipeline(settings), Pipeline(settings)
    embedder = ingesting.embedder
    real = embedder.passages
    seen: list[object] = []

    def passages(texts, *args, **kwargs):
        if not seen:  # the first ingest has read its files and embeds, nothing is stored
            try:
                seen.append(asking.ensure_seeded())
            except StoreError as exc:
                seen.append(exc)
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(embedder, "passages", passages)
    ingesting.ingest([docs])
    assert isinstance(seen[0], StoreError)
    assert [Path(s).name for s in ingesting.sources()] == ["mine.txt"]


# ---- 3. a file changed or deleted during the ingest --------------------------------------


def test_a_file_changed_or_deleted_during_the_ingest_leaves_no_stale_text(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("The gym opens at six in the morning.", "utf-8")
    (docs / "b.txt").write_text("The pool is heated to twenty-eight degrees.", "utf-8")
    pipeline = make_pipeline(tmp_path / "data")
    embedder = pipeline.embedder
    real = embedder.passages
    state = {"edited": False}

    def passages(texts, *args, **kwargs):
        if not state["edited"]:  # both files read, nothing written yet
            state["edited"] = True
            (docs / "a.txt").write_text("The gym now opens at nine, after the refit.", "utf-8")
            (docs / "b.txt").unlink()
        return real(texts, *args, **kwargs)

    monkeypatch.setattr(embedder, "passages", passages)
    report = pipeline.ingest([docs])
    texts = " ".join(pipeline.store.chunks.get()["documents"])
    assert "nine" in texts and "six" not in texts
    assert [Path(s).name for s in pipeline.sources()] == ["a.txt"]
    assert [Path(s).name for s in report.removed] == ["b.txt"]
    corpus = pipeline.corpus()
    for chunk in corpus.chunks:
        assert Path(chunk.source).read_text("utf-8")[chunk.start : chunk.end] == chunk.text


# ---- 13. big files: progress inside the file, bounded batches, work kept after a kill ----


@pytest.mark.slow
def test_a_big_file_is_streamed_in_batches_with_progress_inside_it(
    tmp_path, counting, small_batches
):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "big.txt").write_text(long_text(120), "utf-8")
    seen: list[tuple[str, int, int]] = []
    report = make_pipeline(tmp_path / "data").ingest(
        [tmp_path / "docs"], lambda *step: seen.append(step)
    )
    assert len(report.added) == 1
    within = [label for label, done, _ in seen if done == 0 and label.endswith("%")]
    assert len(within) >= 2, seen  # the bar moves while the one file is written
    # No call holds more than one batch of texts (and so of vectors) at once.
    assert max(counting.calls) <= small_batches


@pytest.mark.slow
def test_a_killed_ingest_keeps_the_batches_it_wrote(tmp_path, monkeypatch, counting, small_batches):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "big.txt").write_text(long_text(120), "utf-8")
    clean = make_pipeline(tmp_path / "clean")
    clean.ingest([tmp_path / "docs"])
    total = len(counting.texts)
    want = {n: set(getattr(clean.store, n).get()["ids"]) for n in ("chunks", "sentences")}

    pipeline = make_pipeline(tmp_path / "data")
    real = pipeline.store.upsert
    calls = {"n": 0}

    def dying_upsert(collection, *args, **kwargs):
        # A batch writes its chunks last: at the third batch's chunks, two batches are stored.
        calls["n"] += collection == "chunks"
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(collection, *args, **kwargs)

    monkeypatch.setattr(pipeline.store, "upsert", dying_upsert)
    with pytest.raises(KeyboardInterrupt):
        pipeline.ingest([tmp_path / "docs"])
    monkeypatch.setattr(pipeline.store, "upsert", real)
    embeddings.get_embedder(2)._cache.clear()  # as in a new process
    counting.texts.clear()
    report = pipeline.ingest([tmp_path / "docs"])
    assert len(report.updated) == 1
    assert len(counting.texts) <= total - 2 * small_batches  # not redone from scratch
    got = {n: set(getattr(pipeline.store, n).get()["ids"]) for n in ("chunks", "sentences")}
    assert got == want


# ---- 14. nothing the same ingest needs is embedded twice ---------------------------------


@pytest.mark.slow
def test_each_distinct_text_is_embedded_once_per_ingest(tmp_path, monkeypatch, counting):
    monkeypatch.setattr(embeddings, "CACHE_ENTRIES", 10)  # far fewer than the ingest's texts
    boiler = [f"Notice {i}: this page is for internal use only." for i in range(10)]
    parts = []
    for i in range(80):
        parts.append(f"Line {i}: the depot shipped {i * 3} boxes of nails.")
        if i % 4 == 0:
            parts.append(boiler[i % 10])
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text(" ".join(parts), "utf-8")
    (tmp_path / "docs" / "b.txt").write_text(" ".join(reversed(parts)), "utf-8")
    make_pipeline(tmp_path / "data").ingest([tmp_path / "docs"])
    assert len(counting.texts) == len(set(counting.texts))
