"""An ingest never stops the answers: in-process, and from the CLI in another process."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from answering.pipeline import Pipeline
from bot.cli import app
from qabot.settings import PACKAGED_SEEDS, Settings
from retrieval.embeddings import Embedder
from retrieval.ingest_lock import IngestLock
from tests.e2e.test_chroma_server import CHROMA, free_port, start_server
from tests.e2e.test_discord_knowledge import long_document

ROOT = Path(__file__).resolve().parents[2]
ISS_QUESTION = "When does Russia plan to leave the ISS?"
HARBOUR_QUESTION = "Which tug moved barge 21 to the grain terminal?"


def wait_until(condition, timeout: float = 120.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError
        time.sleep(0.02)


@pytest.fixture
def seeded(tmp_path: Path) -> Pipeline:
    pipeline = Pipeline(Settings(_env_file=None, qabot_data_dir=tmp_path / "data"))
    pipeline.ingest([PACKAGED_SEEDS])
    return pipeline


@pytest.mark.slow
def test_questions_are_answered_from_the_collection_as_it_was_during_an_ingest(
    seeded: Pipeline, tmp_path: Path
) -> None:
    doc = tmp_path / "harbour.md"
    doc.write_text(long_document(40), encoding="utf-8")
    assert "2028" in seeded.ask(ISS_QUESTION).text  # the corpus is read
    second = tmp_path / "pelicans.md"
    second.write_text("# Pelicans\n\nBrown pelicans dive from twenty metres.\n", "utf-8")
    order: list[str] = []
    ingest_model = Embedder(1)  # a handle of its own, as the bot's ingests have
    # The first ingest waits at its progress reports until three answers are in, so that
    # they are asked while it runs however fast the machine embeds.
    answered = threading.Event()

    def run(path: Path, hold: bool) -> None:
        seeded.ingest(
            [path], (lambda *_: answered.wait(120)) if hold else None, embedder=ingest_model
        )
        order.append(path.name)

    first = threading.Thread(target=run, args=(doc, True))
    first.start()
    wait_until(lambda: seeded.ingesting)
    queued = threading.Thread(target=run, args=(second, False))  # the same collection: it queues
    queued.start()
    snapshot = seeded.corpus()  # the corpus read before the ingest
    answers = []
    try:
        while len(answers) < 3:
            answer, harbour = seeded.ask(ISS_QUESTION), seeded.ask(HARBOUR_QUESTION)
            assert first.is_alive() and seeded.corpus() is snapshot  # still the old corpus
            answers.append(answer)
            assert not any("harbour" in c.source for c in harbour.citations)  # not half of it
    finally:
        answered.set()
    first.join(300)
    queued.join(300)
    assert all("2028" in a.text for a in answers)
    assert order == ["harbour.md", "pelicans.md"]
    after = seeded.ask(HARBOUR_QUESTION)
    assert any(c.source.endswith("harbour.md") for c in after.citations)


@pytest.mark.slow
@pytest.mark.skipif(not CHROMA.exists(), reason="chromadb's `chroma` CLI not found")
def test_an_ingest_in_another_process_does_not_hold_up_an_ask(tmp_path: Path) -> None:
    # Several processes share a collection through a Chroma server (the embedded store is
    # for one process at a time); on one host they share the data directory too.
    port = free_port()
    server = start_server(tmp_path / "chroma-server", port)
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    try:
        seeded = Pipeline(Settings(_env_file=None, qabot_data_dir=data, qabot_chroma_url=url))
        seeded.ingest([PACKAGED_SEEDS])
        doc = tmp_path / "harbour.md"
        doc.write_text(long_document(40), encoding="utf-8")
        assert "2028" in seeded.ask(ISS_QUESTION).text
        env = {
            **os.environ,
            "QABOT_DATA_DIR": str(data),
            "QABOT_CHROMA_URL": url,
            "PYTHONPATH": str(ROOT),
        }
        # The other process ingests as `qabot ingest` does, and waits at its progress reports
        # until this one has its three answers (a file says so), so that they are asked while
        # it holds the ingest lock however fast the machine embeds.
        go_on = tmp_path / "answered"
        script = (
            "import sys, time; from pathlib import Path; from answering.pipeline import Pipeline; "
            "from qabot.settings import Settings; go_on = Path(sys.argv[2]); "
            "hold = lambda *_: [time.sleep(0.02) for _ in iter(lambda: go_on.exists(), True)]; "
            "Pipeline(Settings()).ingest([Path(sys.argv[1])], hold)"
        )
        proc = subprocess.Popen(
            [sys.executable, "-c", script, str(doc), str(go_on)],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            lock = IngestLock(data, seeded.collection)
            wait_until(lambda: lock.running() or proc.poll() is not None)
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            answers = []
            while len(answers) < 3:
                answers.append(seeded.ask(ISS_QUESTION))
                assert lock.running()  # answered while the other process ingests
            assert all("2028" in a.text for a in answers)
        finally:
            go_on.touch()
            assert proc.wait(300) == 0, proc.stderr.read() if proc.stderr else ""
        after = seeded.ask(HARBOUR_QUESTION)  # the marker changed: the corpus is read again
        assert any(c.source.endswith("harbour.md") for c in after.citations)
    finally:
        server.kill()
        server.wait()


def test_copy_collection_gives_a_server_the_old_documents(
    seeded: Pipeline, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QABOT_DATA_DIR", str(seeded.settings.data_dir))
    runner = CliRunner()
    result = runner.invoke(app, ["copy-collection", "default", "guild-1234"])
    assert result.exit_code == 0, result.output
    assert "Copied" in result.output
    copy = Pipeline(seeded.settings, collection="guild-1234")
    assert copy.sources() == seeded.sources()
    assert "2028" in copy.ask(ISS_QUESTION).text
    again = runner.invoke(app, ["copy-collection", "default", "guild-1234"])
    assert again.exit_code == 1 and "is not empty" in again.output
    assert len(again.output.strip().splitlines()) == 1
    bad = runner.invoke(app, ["copy-collection", "default", "no/slash"])
    assert bad.exit_code == 1 and "Invalid collection name" in bad.output
