"""The command line: answers, JSON output, and one-line errors (never a traceback)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from tests.paths import SEEDS

runner = CliRunner()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    """A directory with seeds/ in it and an ingested data directory, as a user would have."""
    root = tmp_path_factory.mktemp("cli")
    shutil.copytree(SEEDS, root / "seeds")
    return root


@pytest.fixture
def env(workdir, monkeypatch):
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("QABOT_DATA_DIR", str(workdir / "data"))
    return workdir


def run(*args: str):
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_ask_auto_ingests_seeds_and_prints_json(env):
    code, out, _ = run("ask", "When does Russia plan to leave the ISS?", "--json")
    assert code == 0
    data = json.loads(out)
    assert "2028" in data["answer"] and not data["abstained"]
    for c in data["citations"]:
        assert c["source"].startswith("seeds/")  # relative stays relative
        assert (env / c["source"]).read_text(encoding="utf-8")[c["start"] : c["end"]] == c[
            "excerpt"
        ]


def test_ask_prints_answer_and_sources(env):
    code, out, _ = run("ask", "Who is the NASA Administrator?")
    assert code == 0 and "Bill Nelson" in out and "seeds/003_293c8d6e3f4fbd2b.txt" in out


def test_ingest_reports_counts_and_sources_lists_documents(env):
    code, out, _ = run("ingest", "seeds")
    assert code == 0 and "unchanged" in out
    code, out, _ = run("sources")
    assert code == 0 and "000_47f2f9f2b89161a3.txt" in out and "2 documents" in out


def test_ingest_says_when_a_collection_from_an_earlier_version_would_gain_by_a_rebuild(
    env, tmp_path
):
    (tmp_path / "tea.txt").write_text("Green tea came first. It was brewed in Anhui.", "utf-8")
    code, out, _ = run("ingest", str(tmp_path / "tea.txt"), "-c", "fresh")
    assert code == 0 and "earlier version" not in out  # a new collection: the current way
    # A collection that holds sentences and no record of its way was built before the way
    # existed: it embedded every sentence alone.
    from retrieval.collection_record import LEANING_KEY
    from retrieval.store import Store, open_client

    sentences = Store(open_client(env / "data"), "fresh").sentences
    meta = {k: v for k, v in (sentences.metadata or {}).items() if not k.startswith("hnsw:")}
    meta.pop(LEANING_KEY)
    sentences.modify(metadata=meta)
    code, out, _ = run("ingest", str(tmp_path / "tea.txt"), "-c", "fresh")
    assert code == 0 and "unchanged" in out
    assert "built by an earlier version" in out and "--rebuild" in out
    code, out, _ = run("ingest", str(tmp_path / "tea.txt"), "-c", "fresh", "--rebuild")
    assert code == 0 and "earlier version" not in out


def test_collection_option_isolates_corpora(env, tmp_path):
    (tmp_path / "tea.txt").write_text("Green tea is brewed at about 80 degrees Celsius.", "utf-8")
    assert run("ingest", str(tmp_path / "tea.txt"), "--collection", "tea")[0] == 0
    code, out, _ = run(
        "ask", "At what temperature is green tea brewed?", "--collection", "tea", "--json"
    )
    assert code == 0 and "80 degrees" in json.loads(out)["answer"]
    code, out, _ = run("ask", "When does Russia plan to leave the ISS?", "-c", "tea", "--json")
    assert json.loads(out)["abstained"]


@pytest.mark.parametrize(
    "args,message",
    [
        (["ask", "   "], "question is empty"),
        (["ingest", "does/not/exist"], "No such file or directory"),
        (["ask", "hi", "--collection", "bad name!"], "Invalid collection name"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(env, args, message):
    code, out, err = run(*args)
    assert code == 1
    assert message in err and "Traceback" not in err + out
    assert len(err.strip().splitlines()) == 1


def test_unwritable_data_dir(env, monkeypatch, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    monkeypatch.setenv("QABOT_DATA_DIR", str(blocker / "data"))
    code, out, err = run("ask", "When does Russia plan to leave the ISS?")
    assert code == 1 and "Cannot write to the data directory" in err and "Traceback" not in err


def test_binary_and_unknown_encoding_files_are_skipped_by_name(env, tmp_path):
    (tmp_path / "blob.txt").write_bytes(bytes(range(256)) * 8)
    (tmp_path / "noise.txt").write_bytes(bytes([0x81, 0x8D, 0x8F, 0x90, 0x9D] * 200))
    (tmp_path / "fine.md").write_text("Fine text about comets.", "utf-8")
    code, out, err = run("ingest", str(tmp_path), "-c", "mixed")
    assert code == 0
    assert "blob.txt" in err and "binary" in err and "noise.txt" in err and "encoding" in err


def test_console_script_runs_offline_in_a_subprocess(env):
    """The installed entry point, in a fresh process, with no network configured."""
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "ask", "Who was Borisov's predecessor?", "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=env,
        env={**os.environ, "no_proxy": "*", "HTTPS_PROXY": "http://127.0.0.1:9"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Rogozin" in json.loads(proc.stdout)["answer"]
