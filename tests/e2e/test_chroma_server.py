"""Server mode: ingest and ask through a real ``chroma run`` on 127.0.0.1, and its failures."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from answering.pipeline import Pipeline
from bot.cli import app
from qabot.errors import StoreError
from qabot.settings import Settings
from tests.paths import SEEDS

CHROMA = Path(sys.executable).with_name("chroma")
pytestmark = pytest.mark.skipif(not CHROMA.exists(), reason="chromadb's `chroma` CLI not found")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(path: Path, port: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [str(CHROMA), "run", "--path", str(path), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).is_success:
                return proc
        except httpx.HTTPError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("chroma run did not start")


@pytest.fixture
def server(tmp_path):
    port = free_port()
    proc = start_server(tmp_path / "chroma-server", port)
    yield f"http://127.0.0.1:{port}", proc, tmp_path / "chroma-server", port
    proc.kill()
    proc.wait()


def pipeline_for(url: str, data: Path) -> Pipeline:
    return Pipeline(Settings(qabot_data_dir=data, qabot_chroma_url=url, _env_file=None))


def test_ingest_and_ask_through_a_chroma_server(server, tmp_path):
    url, proc, path, port = server
    docs = tmp_path / "docs"
    shutil.copytree(SEEDS, docs)
    first = pipeline_for(url, tmp_path / "a")
    assert len(first.ingest([docs]).added) == 2
    # A second process-like pipeline with its own local data dir shares the server's corpus.
    second = pipeline_for(url, tmp_path / "b")
    answer = second.ask("When does Russia plan to leave the ISS?")
    assert "2028" in answer.text and answer.citations
    assert first.ingest([docs]).unchanged and len(second.sources()) == 2

    # The server stops: asking gives one clear line, in the library and on the command line.
    before = second.sources(), set(second.store.chunks.get()["ids"])
    proc.kill()
    proc.wait()
    with pytest.raises(StoreError, match="vector store") as down:
        second.ask("Who is the NASA Administrator?")
    assert url in str(down.value) and len(str(down.value).splitlines()) == 1
    env = {"QABOT_CHROMA_URL": url, "QABOT_DATA_DIR": str(tmp_path / "c")}
    for args in (["ask", "Who is the NASA Administrator?"], ["ingest", str(docs)]):
        result = CliRunner().invoke(app, args, env=env)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit)
        assert "Cannot reach the Chroma server" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.stderr + result.stdout

    # It restarts on the same path and port: the same Pipeline (qabot was not restarted)
    # answers again, from the data it had.
    restarted = start_server(path, port)
    try:
        assert "Nelson" in second.ask("Who is the NASA Administrator?").text
        assert (second.sources(), set(second.store.chunks.get()["ids"])) == before
    finally:
        restarted.kill()
        restarted.wait()


def test_unreachable_server_is_a_clear_error(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(StoreError, match="Cannot reach the Chroma server"):
        pipeline_for(url, tmp_path / "d").ask("anything?")


def test_bad_url_is_a_clear_error(tmp_path):
    with pytest.raises(StoreError, match="QABOT_CHROMA_URL"):
        pipeline_for("localhost:8000", tmp_path / "d").sources()
