"""Corpus snapshots across processes: the process that ingests builds the revision's
snapshot once; another process answering from the same collection opens it without reading
the store, keeps its old corpus meanwhile, and sees the new text after the ingest (issue 15)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from answering.pipeline import Pipeline
from qabot.settings import Settings
from retrieval.store import Store
from tests.e2e.test_chroma_server import CHROMA, free_port, start_server

ROOT = Path(__file__).resolve().parents[2]
TEA = (
    "# Tea\n\nThe harbour office logged 140 crates of tea in March. The clerk, Ada Moss, "
    "counted them twice.\n\nShe sent the tally to the guild on Friday.\n"
)
QUESTION = "How many crates of tea did the harbour office log?"


def cli_ingest(path: Path, data: Path, url: str, cwd: Path) -> None:
    env = {**os.environ, "QABOT_DATA_DIR": str(data), "QABOT_CHROMA_URL": url}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-m", "bot", "ingest", str(path)],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.slow
@pytest.mark.skipif(not CHROMA.exists(), reason="chromadb's `chroma` CLI not found")
def test_a_snapshot_built_by_an_ingest_in_another_process_is_opened_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    server = start_server(tmp_path / "chroma-server", port)
    url = f"http://127.0.0.1:{port}"
    data = tmp_path / "data"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text(TEA, encoding="utf-8")
    try:
        cli_ingest(docs, data, url, tmp_path)

        def refuse(*args, **kwargs):
            raise AssertionError("the store was read in full: the snapshot was not used")

        monkeypatch.setattr(Store, "page", refuse)
        monkeypatch.setattr(Store, "all_chunks", refuse)
        monkeypatch.setattr(Store, "all_sentences", refuse)
        reader = Pipeline(Settings(_env_file=None, qabot_data_dir=data, qabot_chroma_url=url))
        assert "140" in reader.ask(QUESTION).text
        old = reader.corpus()

        (docs / "tea.md").write_text(TEA.replace("140", "260"), encoding="utf-8")
        cli_ingest(docs, data, url, tmp_path)
        assert "260" in reader.ask(QUESTION).text  # the new revision's snapshot, opened
        assert reader.corpus() is not old
        [chunk] = [c for c in old.chunks if "140" in c.text]
        assert old.text(chunk.source, chunk.start, chunk.end) == chunk.text  # still readable
    finally:
        server.kill()
        server.wait()


@pytest.mark.slow
@pytest.mark.skipif(not CHROMA.exists(), reason="chromadb's `chroma` CLI not found")
def test_a_restarted_process_does_not_trust_a_snapshot_the_server_outdated(
    tmp_path: Path,
) -> None:
    """Processes with their own data directory share only the server: an edit that keeps
    the passage count does not change their revision, so their snapshot is checked against
    the store's chunk ids when it is opened (a restart then reads the new text, as before)."""
    port = free_port()
    server = start_server(tmp_path / "chroma-server", port)
    url = f"http://127.0.0.1:{port}"
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "tea.md").write_text(TEA, encoding="utf-8")
    try:
        settings_a = Settings(_env_file=None, qabot_data_dir=tmp_path / "a", qabot_chroma_url=url)
        writer = Pipeline(settings_a)
        writer.ingest([docs])
        settings_b = Settings(_env_file=None, qabot_data_dir=tmp_path / "b", qabot_chroma_url=url)
        assert "140" in Pipeline(settings_b).ask(QUESTION).text  # b's snapshot is built
        count = writer.store.count()
        (docs / "tea.md").write_text(TEA.replace("140", "260"), encoding="utf-8")
        writer.ingest([docs])
        assert writer.store.count() == count  # b's revision is unchanged
        assert "260" in Pipeline(settings_b).ask(QUESTION).text  # b restarted
    finally:
        server.kill()
        server.wait()
