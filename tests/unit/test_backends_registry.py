"""The backend registry: built-ins, entry-point plugins, start-up checks, ``qabot backends``."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import httpx
import pytest
import typer
from typer.testing import CliRunner

from answering.answerer import AnswerRequest
from answering.backends import base
from answering.backends.base import BackendSpec, Message, parse, resolve, specs
from answering.extractive import ExtractiveAnswerer
from answering.llm.answerer import ModelAnswerer
from answering.llm.retry import MalformedReply, RetryPolicy, is_transient
from bot.cli import backends as backends_command
from qabot.errors import BackendError
from qabot.settings import Settings
from qabot.types import Chunk, Hit
from retrieval.search import Corpus, Retrieval


def settings(**kw) -> Settings:
    return Settings(_env_file=None, **kw)


def test_parse():
    assert parse("openai:gpt-4o-mini") == ("openai", "gpt-4o-mini")
    assert parse("OFFLINE") == ("offline", "")
    assert parse("llamacpp:/m/a:b.gguf") == ("llamacpp", "/m/a:b.gguf")


def test_builtins_declare_what_they_need():
    found = specs()
    assert list(found)[:5] == ["offline", "openai", "anthropic", "ollama", "llamacpp"]
    assert found["openai"].packages == ("langchain-openai",) and found["openai"].extra == "llm"
    assert "ANTHROPIC_API_KEY" in found["anthropic"].env
    assert found["llamacpp"].extra == "local"
    assert found["offline"].available() == (True, "")


def test_offline_is_a_backend_like_the_others():
    spec, model = resolve(settings())
    assert spec.prefix == "offline"
    answerer = base.create(settings())
    assert isinstance(answerer, ExtractiveAnswerer) and isinstance(answerer, base.Answerer)
    assert answerer.name == "offline" and not answerer.streams


@pytest.mark.parametrize(
    ("llm", "message"),
    [
        ("gpt4", "Unknown QABOT_LLM backend 'gpt4'"),
        ("openai", "needs a model name"),
        ("openai:gpt-4o-mini", "needs OPENAI_API_KEY"),
        ("anthropic:claude", "needs ANTHROPIC_API_KEY"),
        ("ollama", "needs a model name"),
        ("llamacpp:/nowhere/model.gguf", "llamacpp"),
    ],
)
def test_misconfiguration_is_one_clear_line(llm: str, message: str):
    with pytest.raises(BackendError, match=message) as error:
        resolve(settings(qabot_llm=llm))
    assert "\n" not in str(error.value)


def test_openai_compatible_server_needs_no_key():
    spec, model = resolve(settings(qabot_llm="openai:local", openai_base_url="http://x/v1"))
    backend = spec.build(model, settings(qabot_llm="openai:local", openai_base_url="http://x/v1"))
    assert backend is not None and backend.name == "openai:local"


class EchoBackend:
    """A plugin backend: quotes the first chunk's first line."""

    name = "echo"
    streams = False

    def complete(self, messages: Sequence[Message]) -> str:
        line = messages[-1][1].split("\n")[3]
        return f'{line} [1]\n\nQuotes:\n[1] "{line}"'

    def stream(self, messages: Sequence[Message]) -> Iterator[str]:
        yield self.complete(messages)

    def is_transient(self, error: BaseException) -> bool:
        return False


ECHO = BackendSpec(
    prefix="echo",
    summary="Echoes the context.",
    example="echo",
    build=lambda model, s: EchoBackend(),
)


class FakeEntryPoint:
    def __init__(self, obj: object) -> None:
        self.obj = obj

    def load(self) -> object:
        if isinstance(self.obj, Exception):
            raise self.obj
        return self.obj


def test_entry_point_plugin_registers_a_backend(monkeypatch: pytest.MonkeyPatch):
    points = [FakeEntryPoint(ECHO), FakeEntryPoint(ImportError("broken plugin"))]
    monkeypatch.setattr(
        base, "entry_points", lambda group: points if group == "qabot.backends" else []
    )
    assert "echo" in specs()
    s = settings(qabot_llm="echo")
    answerer = base.create(s)
    assert isinstance(answerer, ModelAnswerer) and answerer.name == "echo"
    text = "Line one of the document.\nLine two."
    chunk = Chunk("c", "doc.txt", 0, len(text), text)
    hits = [Hit(chunk, 1.0, 1)]
    # The stored text differs: even a correct-looking quote is not shown unverified.
    other = Corpus([Chunk("c", "doc.txt", 0, len(text), "Line six of another document.")])
    draft = answerer.answer(AnswerRequest("?", Retrieval(hits, None), other))
    assert draft.citations == [] and draft.dropped == 1
    draft = answerer.answer(AnswerRequest("?", Retrieval(hits, None), Corpus([chunk])))
    assert [c.excerpt for c in draft.citations] == ["Line one of the document."]


def test_backends_command_lists_every_backend():
    app = typer.Typer()
    backends_command.register(app)

    @app.command()
    def other() -> None:  # a second command keeps "backends" a named sub-command
        pass

    result = CliRunner().invoke(app, ["backends"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for name in ("offline", "openai:", "anthropic:", "ollama:", "llamacpp:"):
        assert name in result.output
    assert "ANTHROPIC_API_KEY" in result.output and "'.[local]'" in result.output


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (httpx.ReadTimeout("slow"), True),
        (httpx.ConnectError("refused"), True),
        (ConnectionRefusedError(), True),
        (MalformedReply("empty"), True),
        (ValueError("bad"), False),
    ],
)
def test_transient_errors(error: BaseException, transient: bool):
    assert is_transient(error) is transient


def test_status_codes_decide_retries():
    class StatusError(Exception):
        def __init__(self, status: int) -> None:
            self.status_code = status

    assert [is_transient(StatusError(s)) for s in (429, 500, 503, 400, 401, 404)] == [
        True,
        True,
        True,
        False,
        False,
        False,
    ]
    wrapped = RuntimeError("wrapped")
    wrapped.__cause__ = StatusError(502)
    assert is_transient(wrapped)


def test_retry_policy_backs_off_exponentially():
    sleeps: list[float] = []
    calls = iter([httpx.ReadTimeout("1"), httpx.ReadTimeout("2"), "ok"])

    def flaky() -> str:
        item = next(calls)
        if isinstance(item, Exception):
            raise item
        return item

    policy = RetryPolicy(retries=3, backoff=0.5, sleep=sleeps.append)
    assert policy.call(flaky, is_transient) == "ok"
    assert sleeps == [0.5, 1.0]
