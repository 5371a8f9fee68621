"""``qabot ingest --rebuild``: the collection is emptied only under its ingest lock, and only
once the inputs are checked, so that a rebuild queues behind a running ingest and a rebuild
that fails before writing anything leaves the collection as it was.

The real pipeline, the real embedded Chroma and the packaged model; web pages from a small
site on 127.0.0.1 (tests/fake_site.py).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from answering.pipeline import Pipeline
from qabot.errors import InputError
from qabot.settings import PACKAGED_SEEDS, Settings
from qabot.types import IngestReport
from retrieval.ingest_lock import IngestLock
from retrieval.store import read_revision
from retrieval.web import WebRequest
from tests.e2e.test_discord_knowledge import long_document
from tests.fake_site import FakeSite

ISS_QUESTION = "When does Russia plan to leave the ISS?"
HARBOUR_QUESTION = "Which tug moved barge 21 to the grain terminal?"


@pytest.fixture
def seeded(tmp_path: Path) -> Pipeline:
    settings = Settings(_env_file=None, qabot_data_dir=tmp_path / "data", qabot_web_timeout=0.5)
    pipeline = Pipeline(settings)
    pipeline.ingest([PACKAGED_SEEDS])
    return pipeline


@pytest.fixture
def site() -> Iterator[FakeSite]:
    with FakeSite() as fake:
        yield fake


def wait_for_a_waiter(lock: Path, timeout: float = 120.0) -> None:
    """Until some thread or process is blocked on the flock of ``lock`` (``/proc/locks`` marks
    a blocked request with ``->``); without ``/proc/locks``, a pause."""
    try:
        with open("/proc/locks") as f:
            f.read()
    except OSError:  # pragma: no cover - not Linux
        time.sleep(2.0)
        return
    inode = f":{os.stat(lock).st_ino} "
    deadline = time.monotonic() + timeout
    while True:
        with open("/proc/locks") as f:
            if any("->" in line and inode in line for line in f):
                return
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing waits on {lock}")
        time.sleep(0.02)


def state(pipeline: Pipeline) -> tuple[dict[str, int], int, str]:
    """What the collection holds, read from the store itself, and its revision."""
    revision = read_revision(pipeline.settings.data_dir, pipeline.collection)
    return pipeline.store.sources(), pipeline.store.sentences.count(), revision


def test_a_rebuild_waits_for_a_running_ingest_and_answers_from_the_old_corpus_meanwhile(
    seeded: Pipeline, tmp_path: Path
) -> None:
    docs = tmp_path / "new"
    docs.mkdir()
    (docs / "harbour.md").write_text(long_document(12), encoding="utf-8")
    (docs / "pelicans.md").write_text(
        "# Pelicans\n\nBrown pelicans dive from twenty metres.\n", encoding="utf-8"
    )
    assert "2028" in seeded.ask(ISS_QUESTION).text
    old_corpus = seeded.corpus()
    before = state(seeded)
    assert before[0] and before[1]

    paused, resume = threading.Event(), threading.Event()

    def progress(label: str, done: int, total: int) -> None:
        if done == 1 and not paused.is_set():  # the rebuild wrote its first document
            paused.set()
            resume.wait(300)

    outcome: list[IngestReport | BaseException] = []

    def rebuild() -> None:
        try:
            outcome.append(seeded.ingest([docs], progress, rebuild=True))
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            outcome.append(exc)

    other_ingest = IngestLock(seeded.settings.data_dir, seeded.collection)
    thread = threading.Thread(target=rebuild)
    try:
        with other_ingest.hold():  # another ingest of the collection is running
            thread.start()
            wait_for_a_waiter(other_ingest.path)
            # The rebuild waits for it, and has emptied nothing.
            assert thread.is_alive() and not seeded.ingesting and not outcome
            assert state(seeded) == before
            answer = seeded.ask(ISS_QUESTION)
            assert "2028" in answer.text
            assert seeded.corpus() is old_corpus
        # Released: the rebuild empties the collection and writes; stopped after a document.
        assert paused.wait(300), outcome
        assert seeded.ingesting and other_ingest.running()  # it holds the lock
        written = seeded.store.sources()
        assert written and all(s.startswith(str(docs)) for s in written)  # the new content
        # Questions asked meanwhile are answered from the old corpus, whole.
        assert seeded.corpus() is old_corpus
        answer = seeded.ask(ISS_QUESTION)
        assert "2028" in answer.text and not answer.abstained
        assert all(str(PACKAGED_SEEDS) in c.source for c in answer.citations)
        assert state(seeded)[2] == before[2]  # no new revision yet
    finally:
        resume.set()
        thread.join(300)
    assert len(outcome) == 1 and isinstance(outcome[0], IngestReport), outcome
    assert sorted(outcome[0].added) == sorted(str(p) for p in docs.iterdir())
    sources, _, revision = state(seeded)
    assert sorted(sources) == sorted(str(p) for p in docs.iterdir())  # the seeds are gone
    assert revision != before[2]  # other processes re-read it
    assert seeded.corpus() is not old_corpus  # swapped in once complete
    harbour = seeded.ask(HARBOUR_QUESTION)
    assert any(c.source.endswith("harbour.md") for c in harbour.citations)
    assert not any(str(PACKAGED_SEEDS) in c.source for c in seeded.ask(ISS_QUESTION).citations)
    # A fresh pipeline (another process) reads the rebuilt collection.
    assert sorted(Pipeline(seeded.settings).sources()) == sorted(sources)


def test_a_rebuild_whose_inputs_fail_leaves_the_collection_as_it_was(
    seeded: Pipeline, site: FakeSite, tmp_path: Path
) -> None:
    assert "2028" in seeded.ask(ISS_QUESTION).text
    old_corpus = seeded.corpus()
    before = state(seeded)
    good = tmp_path / "pelicans.md"
    good.write_text("Brown pelicans dive from twenty metres.\n", encoding="utf-8")

    # A path that does not exist: refused before any work.
    with pytest.raises(InputError, match="No such file"):
        seeded.ingest([good, tmp_path / "missing.md"], rebuild=True)
    assert state(seeded) == before

    # A web page that cannot be fetched: a rebuild would empty the collection for nothing.
    missing = WebRequest((f"{site.url}/docs/missing.html",))
    with pytest.raises(InputError, match="HTTP 404.*as it was"):
        seeded.ingest([], web=missing, rebuild=True)
    assert state(seeded) == before

    # Ctrl-C while the pages load.
    def interrupt(label: str, done: int, total: int) -> None:
        raise KeyboardInterrupt

    crawl = WebRequest((f"{site.url}/docs/",), crawl=True, max_pages=50)
    with pytest.raises(KeyboardInterrupt):
        seeded.ingest([good], interrupt, web=crawl, rebuild=True)
    assert state(seeded) == before

    # The collection answers as before, in this process and in a new one.
    assert seeded.corpus() is old_corpus
    assert "2028" in seeded.ask(ISS_QUESTION).text
    assert "2028" in Pipeline(seeded.settings).ask(ISS_QUESTION).text
    # And a rebuild whose inputs are good still starts over.
    report = seeded.ingest([good], rebuild=True)
    assert report.added == [str(good)]
    assert seeded.store.sources() == {str(good): 1}
    assert state(seeded)[2] != before[2]
