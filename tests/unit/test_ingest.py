"""Ingest is idempotent, applies updates and deletions, and repairs an interrupted run."""

from __future__ import annotations

import shutil

import pytest

from answering.pipeline import Pipeline
from qabot.errors import InputError, StoreError
from qabot.settings import Settings
from retrieval import indexer
from tests.paths import SEEDS


@pytest.fixture
def docs(tmp_path):
    target = tmp_path / "docs"
    shutil.copytree(SEEDS, target)
    (target / "extra.md").write_text(
        "# Lunar gateway\n\nThe Gateway is a planned space station in lunar orbit. "
        "Its first modules are due to launch together on one rocket.\n",
        encoding="utf-8",
    )
    return target


def store_rows(pipeline: Pipeline) -> tuple[set[str], set[str]]:
    store = pipeline.store
    return set(store.chunks.get()["ids"]), set(store.sentences.get()["ids"])


def test_second_ingest_is_a_no_op(settings, docs):
    pipeline = Pipeline(settings)
    first = pipeline.ingest([docs])
    assert len(first.added) == 3 and first.chunks_written > 0
    before = store_rows(pipeline)
    second = pipeline.ingest([docs])
    assert second.added == [] and second.updated == [] and second.removed == []
    assert len(second.unchanged) == 3 and second.chunks_written == 0
    assert store_rows(pipeline) == before


def test_update_and_deletion_are_applied(settings, docs):
    pipeline = Pipeline(settings)
    pipeline.ingest([docs])
    extra = docs / "extra.md"
    extra.write_text("# Lunar gateway\n\nThe Gateway will orbit the Moon from 2027.\n", "utf-8")
    (docs / "003_293c8d6e3f4fbd2b.txt").unlink()
    report = pipeline.ingest([docs])
    assert [s.rsplit("/", 1)[-1] for s in report.updated] == ["extra.md"]
    assert [s.rsplit("/", 1)[-1] for s in report.removed] == ["003_293c8d6e3f4fbd2b.txt"]
    sources = pipeline.sources()
    assert not any(s.endswith("003_293c8d6e3f4fbd2b.txt") for s in sources)
    texts = " ".join(pipeline.store.chunks.get()["documents"])
    assert "from 2027" in texts and "together on one rocket" not in texts
    answer = pipeline.ask("When will the Gateway orbit the Moon?")
    assert "2027" in answer.text and not answer.abstained


def test_ingesting_another_path_keeps_the_first(settings, docs, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "note.txt").write_text("Tea is best brewed at eighty degrees.", "utf-8")
    pipeline = Pipeline(settings)
    pipeline.ingest([docs])
    report = pipeline.ingest([other])
    assert report.removed == [] and len(pipeline.sources()) == 4


def test_interrupted_ingest_is_repaired_without_duplicates(settings, docs, tmp_path, monkeypatch):
    clean = Pipeline(Settings(qabot_data_dir=tmp_path / "clean", _env_file=None))
    clean.ingest([docs])
    expected = store_rows(clean)

    pipeline = Pipeline(settings)
    real_upsert = pipeline.store.upsert
    calls = {"n": 0}

    def dying_upsert(collection, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the first batch's sentences written, its chunks not
            raise KeyboardInterrupt("killed")
        return real_upsert(collection, *args, **kwargs)

    monkeypatch.setattr(pipeline.store, "upsert", dying_upsert)
    with pytest.raises(KeyboardInterrupt):
        pipeline.ingest([docs])
    monkeypatch.setattr(pipeline.store, "upsert", real_upsert)
    report = pipeline.ingest([docs])
    assert len(report.unchanged) + len(report.added) + len(report.updated) == 3
    assert store_rows(pipeline) == expected


def test_missing_path_is_a_clear_error(settings, tmp_path):
    with pytest.raises(InputError, match="No such file or directory"):
        Pipeline(settings).ingest([tmp_path / "nope"])


def test_unwritable_data_dir_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    pipeline = Pipeline(Settings(qabot_data_dir=blocker / "data", _env_file=None))
    with pytest.raises(StoreError, match="Cannot write to the data directory"):
        pipeline.ingest([SEEDS])


def test_bad_files_are_skipped_and_the_run_goes_on(settings, tmp_path):
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "ok.txt").write_text("Saturn has at least 146 moons.", "utf-8")
    (folder / "binary.txt").write_bytes(bytes(range(256)) * 10)
    report = Pipeline(settings).ingest([folder])
    assert [s.rsplit("/", 1)[-1] for s in report.added] == ["ok.txt"]
    assert list(report.skipped) and "binary" in next(iter(report.skipped.values()))


def test_is_stored_detects_partial_documents(settings, docs):
    pipeline = Pipeline(settings)
    pipeline.ingest([docs])
    source = next(iter(pipeline.sources()))
    c_ids, c_meta, _, _ = pipeline.store.source_state(source)
    assert indexer.is_stored(pipeline.store, source, c_meta[0]["doc_hash"]) == (True, True)
    pipeline.store.delete("chunks", c_ids[:1])
    assert indexer.is_stored(pipeline.store, source, c_meta[0]["doc_hash"]) == (True, False)
