"""The store fails under qabot: a Chroma server gone mid-ingest, a full disk, a read-only one.

Each failure gives the user one clear line (never a traceback), and the next run, once the
store is back, leaves it exactly as a clean ingest would: the same chunk and sentence ids.
The server restart itself (ask while down, then again after it is back) is covered in
``tests/e2e/test_chroma_server.py``.

The disk tests mount a small tmpfs (we run as root in the test sandbox); they are skipped
where mounting is not permitted.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from answering.pipeline import Pipeline
from bot.cli import app
from qabot.errors import StoreError
from qabot.settings import Settings
from retrieval import indexer
from tests.e2e.test_chroma_server import CHROMA, free_port, pipeline_for, start_server
from tests.paths import ROOT

pytestmark = pytest.mark.slow  # load, fault and hostile tests: `pytest -m "not slow"` skips them

QUESTION = "Which budget line did the committee approve in report 2?"


def answers_from_report_2(pipeline: Pipeline) -> bool:
    """The question finds report 2's text first and answers from the store (the sentence
    chosen among its near-identical ones is the answerer's business, not these tests')."""
    answer = pipeline.ask(QUESTION)
    top = answer.retrieved[0].chunk if answer.retrieved else None
    return (
        not answer.abstained
        and top is not None
        and top.source.endswith("report2.txt")
        and "budget line 20" in top.text
        and "committee approved budget line" in answer.citations[0].excerpt
    )


def write_docs(folder: Path, n: int = 5) -> Path:
    folder.mkdir(parents=True)
    for i in range(n):
        body = " ".join(
            f"Report {i} paragraph {j}: the committee approved budget line {i * 100 + j}."
            for j in range(12)
        )
        (folder / f"report{i}.txt").write_text(body, "utf-8")
    return folder


def rows(pipeline: Pipeline) -> dict[str, set[str]]:
    store = pipeline.store
    return {name: set(getattr(store, name).get()["ids"]) for name in ("chunks", "sentences")}


def clean_rows(docs: Path, data: Path) -> dict[str, set[str]]:
    clean = Pipeline(Settings(qabot_data_dir=data, _env_file=None))
    clean.ingest([docs])
    return rows(clean)


def one_line(error: BaseException | str) -> str:
    text = str(error)
    assert len(text.strip().splitlines()) == 1, text
    return text


# ---- a Chroma server that goes away in the middle of an ingest -------------------------------
@pytest.mark.skipif(not CHROMA.exists(), reason="chromadb's `chroma` CLI not found")
def test_server_gone_mid_ingest_then_the_next_ingest_repairs(tmp_path, monkeypatch):
    docs = write_docs(tmp_path / "docs")
    path, port = tmp_path / "chroma-server", free_port()
    url = f"http://127.0.0.1:{port}"
    proc = start_server(path, port)
    try:
        pipeline = pipeline_for(url, tmp_path / "local")
        store = pipeline.store
        real_upsert = store.upsert
        calls: list[str] = []

        def upsert(collection: str, *args: Any, **kwargs: Any) -> None:
            calls.append(collection)
            metas = args[2] if len(args) > 2 else kwargs.get("metadatas", [])
            # The third document's first chunk: its sentences are written by then.
            third = any(str(m["source"]).endswith("report2.txt") for m in metas)
            if collection == "chunks" and third and proc.poll() is None:
                proc.kill()
                proc.wait()
            return real_upsert(collection, *args, **kwargs)

        # One row per write, so that the documents before the third are complete when the
        # server dies (the indexer otherwise writes rows of several documents at once).
        monkeypatch.setattr(indexer, "BATCH_TEXTS", 1)
        monkeypatch.setattr(store, "upsert", upsert)
        with pytest.raises(StoreError) as failed:
            pipeline.ingest([docs])
        message = one_line(failed.value)
        assert f"The vector store ({url}) failed" in message
        assert "ingest stopped at" in message and "report2.txt" in message
        assert "run it again" in message
        monkeypatch.setattr(store, "upsert", real_upsert)

        proc = start_server(path, port)
        report = pipeline.ingest([docs])  # the same Pipeline: qabot was not restarted
        assert len(report.unchanged) == 2 and len(report.added) + len(report.updated) == 3
        assert rows(pipeline) == clean_rows(docs, tmp_path / "clean")
        assert store.count() == len(rows(pipeline)["chunks"])
        assert answers_from_report_2(pipeline)
    finally:
        proc.kill()
        proc.wait()


def test_removal_cut_half_way_is_finished_next_time(settings, tmp_path, monkeypatch):
    """A document deleted from disk, its removal cut between its two collections."""
    docs = write_docs(tmp_path / "docs", n=3)
    pipeline = Pipeline(settings)
    pipeline.ingest([docs])
    (docs / "report1.txt").unlink()
    store = pipeline.store
    real_delete = store.delete
    deletes: list[str] = []

    def delete(collection: str, ids: Any) -> None:
        deletes.append(collection)
        if len(deletes) == 2:
            raise StoreError("The vector store (test) failed: simulated outage")
        return real_delete(collection, ids)

    monkeypatch.setattr(store, "delete", delete)
    with pytest.raises(StoreError, match="removal of deleted documents"):
        pipeline.ingest([docs])
    monkeypatch.setattr(store, "delete", real_delete)

    report = pipeline.ingest([docs])
    assert [Path(s).name for s in report.removed] == ["report1.txt"]
    assert rows(pipeline) == clean_rows(docs, tmp_path / "clean")


# ---- the data directory's disk ----------------------------------------------------------------
def mount(*args: str) -> None:
    done = subprocess.run(["mount", *args], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here ({done.stderr.strip() or done.returncode})")


def umount(target: Path) -> None:
    subprocess.run(["umount", "-l", str(target)], capture_output=True)


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """An 8 MB tmpfs: small enough to fill in a moment."""
    target = tmp_path / "disk"
    target.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    mount("-t", "tmpfs", "-o", "size=8m", "tmpfs", str(target))
    yield target
    umount(target)


def fill(disk: Path, leave: int) -> Path:
    """Fill ``disk`` until ``leave`` bytes are free; delete the returned file to free it."""
    filler = disk / "filler"
    with filler.open("wb") as f:
        f.write(b"\0" * max(0, shutil.disk_usage(disk).free - leave))
    return filler


def cli(*args: str, data: Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"QABOT_DATA_DIR": str(data)})
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{args} raised {result.exception!r}\n{result.stderr}")
    return result.exit_code, result.stdout, result.stderr


def full_disk_in_one_process(data_dir: str, docs_dir: str) -> None:
    """Run in a child process: the disk fills during an ingest, then space is freed and the
    same Pipeline (a running bot) ingests again. Prints what happened as JSON."""
    data, docs = Path(data_dir), Path(docs_dir)
    pipeline = Pipeline(Settings(qabot_data_dir=data, _env_file=None))
    pipeline.sources()  # the store exists; the disk fills up after this
    filler = fill(data.parent, leave=64 * 1024)
    try:
        pipeline.ingest([docs])
        error = None
    except StoreError as exc:
        error = str(exc)
    filler.unlink()
    report = pipeline.ingest([docs])
    print(json.dumps({"error": error, "rerun": len(report.added) + len(report.updated)}))


def test_full_disk_is_one_clear_line_and_the_rerun_completes(small_disk, tmp_path):
    docs = write_docs(tmp_path / "docs")
    # A full disk before the store exists: qabot cannot even open it.
    filler = fill(small_disk, leave=64 * 1024)
    code, out, err = cli("ingest", str(docs), data=small_disk / "cli")
    assert code == 1 and "disk is full" in err and "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1
    filler.unlink()
    code, out, err = cli("ingest", str(docs), data=small_disk / "cli")  # same process
    assert code == 0, err

    # The disk fills in the middle of an ingest. In chromadb 1.5 the failed write wedges the
    # embedded client: unless qabot sets it aside, the next write in that process hangs for
    # ever, holding the GIL. So this part runs in a child process that can be killed.
    script = (
        "import sys, tests.e2e.test_faults_store as t; t.full_disk_in_one_process(*sys.argv[1:])"
    )
    cmd = [sys.executable, "-c", script, str(small_disk / "data"), str(docs)]
    try:
        child = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        pytest.fail("the ingest after the disk was freed hung: the Chroma client is wedged")
    assert child.returncode == 0, child.stderr
    outcome = json.loads(child.stdout.strip().splitlines()[-1])
    message = one_line(outcome["error"])
    assert "The disk holding it is full" in message and "run it again" in message
    assert outcome["rerun"] > 0

    # What the child left is exactly a clean ingest, and it answers.
    pipeline = Pipeline(Settings(qabot_data_dir=small_disk / "data", _env_file=None))
    expected = clean_rows(docs, tmp_path / "clean")
    assert rows(pipeline) == expected
    assert rows(Pipeline(Settings(qabot_data_dir=small_disk / "cli", _env_file=None))) == expected
    assert answers_from_report_2(pipeline)


def test_read_only_store_gives_one_clear_line(tmp_path):
    """A populated store whose directory is read-only (a read-only bind mount: we are root,
    so ``chmod`` would not stop a write). Embedded Chroma writes when it opens a store, even
    to read it ("attempt to write a readonly database"), so asking cannot work: every command
    says so in one line rather than failing somewhere inside Chroma."""
    docs = write_docs(tmp_path / "docs", n=2)
    data = tmp_path / "data"
    Pipeline(Settings(qabot_data_dir=data, _env_file=None)).ingest([docs])
    view = tmp_path / "read-only"
    view.mkdir()
    mount("--bind", str(data), str(view))
    try:
        mount("-o", "remount,bind,ro", str(view))
        for args in (["ask", QUESTION], ["ingest", str(docs)], ["sources"]):
            code, out, err = cli(*args, data=view)
            assert code == 1, args
            assert f"Cannot write to the data directory {view}" in err
            assert "Read-only file system" in err and "Traceback" not in out + err
            assert len(err.strip().splitlines()) == 1
        assert sorted(p.name for p in view.iterdir()) == sorted(p.name for p in data.iterdir())
    finally:
        umount(view)


def test_a_cache_cut_short_by_a_full_disk_does_not_break_asking(small_disk, tmp_path):
    docs = write_docs(tmp_path / "docs", n=3)
    settings = Settings(qabot_data_dir=small_disk / "data", _env_file=None)
    Pipeline(settings).ingest([docs])
    cache = small_disk / "data" / "background-e5.npy"
    assert not cache.exists()  # written on the first question
    filler = fill(small_disk, leave=16 * 1024)
    assert answers_from_report_2(Pipeline(settings))  # the disk is full
    filler.unlink()
    assert not cache.exists()  # written whole or not at all: never cut short
    assert answers_from_report_2(Pipeline(settings))  # space is back
    assert cache.exists()
    cache.write_bytes(b"\x93NUMPY damaged")  # a cache that does not load counts as missing
    assert answers_from_report_2(Pipeline(settings))
