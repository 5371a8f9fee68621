"""``Pipeline.ask`` / ``ask_stream`` through a generative backend, over the seed articles."""

from __future__ import annotations

import pytest

from answering.pipeline import Pipeline
from qabot.errors import BackendError
from qabot.settings import Settings
from qabot.types import Answer
from tests.llm_servers import Fail, FakeLLM, Reply, settings_for

QUESTION = "When does Russia plan to leave the ISS?"
pytestmark = pytest.mark.usefixtures("fresh")  # tests/conftest.py


def llm_pipeline(seeds: Pipeline, settings: Settings) -> Pipeline:
    """A pipeline with ``settings`` sharing the seed pipeline's store."""
    settings = settings.model_copy(update={"qabot_data_dir": seeds.settings.data_dir})
    return Pipeline(settings, store=seeds.store)


@pytest.fixture
def openai_pipeline(seeds_pipeline: Pipeline, server: FakeLLM) -> Pipeline:
    return llm_pipeline(seeds_pipeline, settings_for("openai", server.url))


def assert_verified(answer: Answer, pipeline: Pipeline) -> None:
    corpus = pipeline.corpus()
    for c in answer.citations:
        assert corpus.text(c.source, c.start, c.end) == c.excerpt
        assert f"[{c.n}]" in answer.text


def test_offline_stays_the_default(seeds_pipeline: Pipeline):
    assert seeds_pipeline.settings.qabot_llm == "offline"
    answer = seeds_pipeline.ask(QUESTION)
    assert answer.backend == "offline" and answer.notice is None
    stream = seeds_pipeline.ask_stream(QUESTION)
    assert list(stream) == [answer.text]
    final = stream.result()
    assert final.text == answer.text
    assert final.citations == answer.citations


def test_ask_uses_the_selected_backend(openai_pipeline: Pipeline, server: FakeLLM):
    answer = openai_pipeline.ask(QUESTION)
    assert answer.backend == "openai:fake-gpt" and answer.notice is None
    assert answer.citations and not answer.abstained
    assert_verified(answer, openai_pipeline)
    data = answer.to_dict()
    assert data["dropped_citations"] == 0 and data["backend"] == "openai:fake-gpt"
    [request] = server.requests
    assert '<chunk n="1"' in request["messages"][-1]["content"]


def test_ask_stream_yields_deltas_then_the_verified_answer(openai_pipeline: Pipeline):
    stream = openai_pipeline.ask_stream(QUESTION)
    deltas = list(stream)
    final = stream.result()
    assert len(deltas) > 1 and all(isinstance(d, str) for d in deltas)
    assert final.citations
    assert_verified(final, openai_pipeline)


def test_unavailable_model_gives_offline_answer_with_notice(
    openai_pipeline: Pipeline, seeds_pipeline: Pipeline, server: FakeLLM
):
    server.queue(Fail(500), Fail(500), Fail(500))
    answer = openai_pipeline.ask(QUESTION)
    offline = seeds_pipeline.ask(QUESTION)
    assert answer.backend == "offline"
    assert answer.notice and "unavailable (HTTP 500)" in answer.notice
    assert answer.text == offline.text and answer.citations == offline.citations


def test_unsupported_answer_is_never_shown(openai_pipeline: Pipeline, server: FakeLLM):
    server.queue(Reply('Russia leaves in 2031 [1] [2].\n\nQuotes:\n[1] "in 2031"\n[2] "never"'))
    answer = openai_pipeline.ask(QUESTION)
    assert "2031" not in answer.text
    assert answer.backend == "offline" and answer.dropped_citations >= 2
    assert "no verifiable citation" in (answer.notice or "")


def test_follow_up_is_condensed_with_the_model(openai_pipeline: Pipeline, server: FakeLLM):
    server.queue(Reply("When will Russia build its own space station?"))
    answer = openai_pipeline.ask("and its own station?", history=["Will Russia leave the ISS?"])
    condense, answering = server.requests
    assert "Will Russia leave the ISS?" in condense["messages"][-1]["content"]
    assert (
        "Question: When will Russia build its own space station?"
        in (answering["messages"][-1]["content"])
    )
    assert answer.citations


def test_missing_key_fails_at_start(monkeypatch: pytest.MonkeyPatch, tmp_path):
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    for llm, needed in (("openai:gpt-4o-mini", "OPENAI_API_KEY"), ("anthropic:x", "ANTHROPIC")):
        with pytest.raises(BackendError, match=needed):
            Pipeline(Settings(qabot_data_dir=tmp_path, qabot_llm=llm, _env_file=None))
