"""``qabot ask`` / ``qabot chat`` print a model's answer as it streams, then the verified
answer and its sources; ``--json`` and the offline backend print exactly what they did.

The model is the fake OpenAI-compatible server in ``tests/llm_servers`` (``QABOT_LLM=openai:...``
with ``OPENAI_BASE_URL``); the command runs in-process with Typer's CliRunner, and once in a
subprocess to see the text arrive on stdout while the model is still writing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from answering.pipeline import Pipeline
from bot.cli import app
from bot.cli.core import print_answer
from qabot.settings import Settings
from tests.llm_servers import FakeLLM, cite_first_sentence
from tests.paths import SEEDS

runner = CliRunner()
QUESTION = "When does Russia plan to leave the ISS?"
FOLLOW_UP = "and when was it launched?"
SOURCE = "seeds/003_293c8d6e3f4fbd2b.txt chars 0-194"
UNSUPPORTED = (
    "Russia will leave the International Space Station in 2031 [1].\n\n"
    'Quotes:\n[1] "Russia will leave the station in 2031"'
)
RULE = "verified answer"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with seeds/ in it, ingested (relative paths, as a user would have)."""
    root = tmp_path_factory.mktemp("cli-stream")
    shutil.copytree(SEEDS, root / "seeds")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("QABOT_DATA_DIR", str(root / "data"))
        mp.delenv("QABOT_LLM", raising=False)
        result = runner.invoke(app, ["ingest", "seeds"])
        assert result.exit_code == 0, result.output
    return root


@pytest.fixture(scope="module")
def llm() -> Iterator[FakeLLM]:
    with FakeLLM() as server:
        yield server


@pytest.fixture
def offline_env(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("QABOT_DATA_DIR", str(workdir / "data"))
    monkeypatch.delenv("QABOT_LLM", raising=False)
    return workdir


def model_env_vars(llm: FakeLLM, workdir: Path) -> dict[str, str]:
    return {
        "QABOT_DATA_DIR": str(workdir / "data"),
        "QABOT_LLM": "openai:fake-gpt",
        "OPENAI_BASE_URL": f"{llm.url}/v1",
        "QABOT_LLM_TIMEOUT": "30",  # a loaded machine must not turn into a fallback
        # These tests script free-text replies; structured ones: test_backends_structured.py
        "QABOT_LLM_STRUCTURED": "off",
    }


@pytest.fixture
def model_env(
    offline_env: Path, llm: FakeLLM, monkeypatch: pytest.MonkeyPatch
) -> Iterator[FakeLLM]:
    for name, value in model_env_vars(llm, offline_env).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    llm.script.clear()
    llm.requests.clear()
    llm.responder = cite_first_sentence
    llm.piece_delay = 0.0
    yield llm


def printed(show: Callable[[], object]) -> str:
    """What ``show()`` (a call of ``print_answer``) writes to stdout."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        show()
    return out.getvalue()


def offline_pipeline(workdir: Path) -> Pipeline:
    return Pipeline(Settings(_env_file=None, qabot_data_dir=workdir / "data"))


# ---- the offline backend: output unchanged -------------------------------------------------
def test_offline_ask_prints_what_it_did(offline_env: Path) -> None:
    result = runner.invoke(app, ["ask", QUESTION])
    assert result.exit_code == 0, result.output
    pipeline = offline_pipeline(offline_env)
    assert not pipeline.streams()
    expected = printed(lambda: print_answer(pipeline.ask(QUESTION)))
    assert result.stdout == expected
    assert SOURCE in expected and RULE not in expected


def test_offline_chat_prints_what_it_did(offline_env: Path) -> None:
    result = runner.invoke(app, ["chat"], input=f"{QUESTION}\n{FOLLOW_UP}\n\n")
    assert result.exit_code == 0, result.output
    pipeline = offline_pipeline(offline_env)
    first = printed(lambda: print_answer(pipeline.ask(QUESTION)))
    second = printed(lambda: print_answer(pipeline.ask(FOLLOW_UP, history=[QUESTION])))
    intro = "Ask a question (empty line or Ctrl-D to quit).\n"
    assert result.stdout == f"{intro}? {first}? {second}? "


# ---- a model that streams ------------------------------------------------------------------
def test_model_answer_is_streamed_then_its_sources(model_env: FakeLLM) -> None:
    result = runner.invoke(app, ["ask", QUESTION])
    assert result.exit_code == 0, result.output
    (request,) = model_env.requests
    assert request["body"].get("stream") is True  # the CLI asked for a stream
    text = cite_first_sentence(request["messages"]).split("\n\nQuotes:")[0]
    # the streamed text was the verified text: shown once, then the sources as before
    assert result.stdout.startswith(f"{text}\n\n[1] {SOURCE}\n    “After initially")
    assert result.stdout.count("Roscosmos has informed NASA") == 2  # answer and excerpt
    assert RULE not in result.stdout and not result.stderr


def test_rejected_model_answer_is_replaced_by_the_verified_one(
    model_env: FakeLLM, offline_env: Path
) -> None:
    model_env.responder = lambda messages: UNSUPPORTED
    result = runner.invoke(app, ["ask", QUESTION])
    assert result.exit_code == 0, result.output
    offline = offline_pipeline(offline_env).ask(QUESTION)
    out = result.stdout
    # the model's text as it came, then under a rule the answer that passed the checks
    assert out.startswith("Russia will leave the International Space Station in 2031 [1].\n")
    assert out.index("2031") < out.index(RULE) < out.index("After initially stating")
    verified = out.split(RULE, 1)[1].split("\n", 1)[1]  # what follows the rule's line
    # the offline answer (its short answer) and its excerpt follow the rule, 2031 does not
    assert verified.startswith(offline.text) and f"[1] {SOURCE}" in verified
    assert "After initially stating" in verified and "2031" not in verified
    assert "had no verifiable citation: offline answer shown." in result.stderr


def test_json_is_one_object_and_not_streamed(model_env: FakeLLM) -> None:
    result = runner.invoke(app, ["ask", QUESTION, "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)  # the whole of stdout: one object
    assert data["backend"] == "openai:fake-gpt" and data["citations"]
    assert result.stdout.count("\n") == 1
    (request,) = model_env.requests
    assert not request["body"].get("stream")


def test_chat_streams_every_answer(model_env: FakeLLM) -> None:
    result = runner.invoke(app, ["chat"], input=f"{QUESTION}\n{FOLLOW_UP}\n\n")
    assert result.exit_code == 0, result.output
    streamed = [r for r in model_env.requests if r["body"].get("stream")]
    assert len(streamed) == 2  # each answer; the follow-up's rewrite is not streamed
    intro, *turns = result.stdout.split("\n? ")
    assert intro.startswith("Ask a question") and len(turns) == 3 and turns[-1] == ""
    for turn, request in zip(turns[:2], streamed, strict=True):
        text = cite_first_sentence(request["messages"]).split("\n\nQuotes:")[0]
        assert text in turn and "\n\n[1] seeds/" in turn.split(text)[1]
        assert RULE not in turn


# ---- in a real process: the text appears while the model writes it ------------------------
def test_ask_prints_the_text_while_the_model_is_writing(
    workdir: Path, llm: FakeLLM, tmp_path: Path
) -> None:
    llm.script.clear()
    llm.responder = cite_first_sentence
    llm.piece_delay = 0.07  # the ~200-character answer takes ~1.2 s, its quote as long again
    env = {**os.environ, **model_env_vars(llm, workdir), "no_proxy": "*"}
    env.pop("OPENAI_API_KEY", None)
    env.pop("PYTHONUNBUFFERED", None)  # the command must flush its partial lines itself
    errors = tmp_path / "stderr.txt"
    with errors.open("wb") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bot", "ask", QUESTION],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
        )
    chunks: list[tuple[float, bytes]] = []

    def read() -> None:
        assert proc.stdout is not None
        while data := os.read(proc.stdout.fileno(), 65536):
            chunks.append((time.monotonic(), data))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        proc.wait(timeout=120)
    finally:
        llm.piece_delay = 0.0
    reader.join(10)
    assert proc.returncode == 0, errors.read_text()

    def seen(text: str) -> float:
        """When ``text`` had first appeared on stdout."""
        so_far = b""
        for at, data in chunks:
            so_far += data
            if text.encode() in so_far:
                return at
        raise AssertionError(f"{text!r} never appeared in {so_far.decode()!r}")

    output = b"".join(data for _, data in chunks).decode()
    assert output.startswith("After initially stating") and f"[1] {SOURCE}" in output
    start, middle, end = seen("After"), seen("2028"), seen("according to Reuters. [1]")
    sources = seen(f"[1] {SOURCE}")
    # the answer appeared a piece at a time ("2028" ~0.9 s after the start), long before its
    # sources (which wait for the end of the quotes, ~2.4 s)
    assert middle - start >= 0.5 and end - middle >= 0.1
    assert sources - start >= 1.0
