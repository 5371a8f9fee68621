"""The model's server dies in the middle of a reply: the user still gets a verified answer.

The real LangChain clients talk to the fake servers in ``tests/llm_servers``, which send the
start of a reply and then hang up (a cut chunked stream, or half of a ``Content-Length``
body), or end a stream cleanly on the wire but without the protocol's end marker.
Whatever happens, ``Pipeline.ask`` / ``ask_stream`` end with a verified :class:`Answer`:
the model's, if a retry succeeded, else the offline answer with a notice. Never the cut-off
text, never an exception.
"""

from __future__ import annotations

import pytest

from answering.pipeline import Pipeline
from qabot.types import Answer
from tests.llm_servers import Drop, FakeLLM, cite_first_sentence, settings_for
from tests.llm_servers.server import PIECE

QUESTION = "When does Russia plan to leave the ISS?"


pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("fresh")]  # fresh: tests/conftest.py


@pytest.fixture
def pipeline(seeds_pipeline: Pipeline, server: FakeLLM, provider: str) -> Pipeline:
    """A pipeline answering with ``provider``'s fake model, over the seed pipeline's store."""
    settings = settings_for(provider, server.url, qabot_data_dir=seeds_pipeline.settings.data_dir)
    return Pipeline(settings, store=seeds_pipeline.store)


@pytest.fixture(scope="module")
def offline(seeds_pipeline: Pipeline) -> Answer:
    return seeds_pipeline.ask(QUESTION)


def streamed(pipeline: Pipeline) -> tuple[str, Answer]:
    """Everything ``ask_stream`` yields: the deltas joined, and the final Answer (asserted)."""
    stream = pipeline.ask_stream(QUESTION)
    deltas = list(stream)
    final = stream.result()
    assert all(isinstance(d, str) for d in deltas)
    assert isinstance(final, Answer)
    return "".join(deltas), final


def assert_offline_with_notice(answer: Answer, offline: Answer, reason: str) -> None:
    assert answer.backend == "offline"
    assert answer.text == offline.text and answer.citations == offline.citations
    assert answer.notice is not None and f"unavailable ({reason})" in answer.notice
    assert answer.notice.endswith("offline answer shown.")


def assert_model_answer(answer: Answer, pipeline: Pipeline) -> None:
    assert answer.backend == pipeline.settings.qabot_llm and answer.notice is None
    assert answer.citations and not answer.abstained
    corpus = pipeline.corpus()
    for c in answer.citations:
        assert corpus.text(c.source, c.start, c.end) == c.excerpt


def test_stream_cut_mid_answer_ends_in_the_offline_answer(pipeline, server, offline):
    server.queue(Drop(after=2))
    shown, final = streamed(pipeline)
    # The cut-off model text was shown provisionally; the final answer replaces it.
    assert shown.startswith(server.responder(server.requests[0]["messages"])[: 2 * PIECE])
    assert_offline_with_notice(final, offline, "connection lost")
    assert len(server.requests) == 1  # text was already shown: no second attempt


def test_stream_cut_before_any_text_is_retried(pipeline, server):
    server.queue(Drop(after=0))
    shown, final = streamed(pipeline)
    assert_model_answer(final, pipeline)
    assert len(server.requests) == 2
    assert shown.startswith(final.text.split(" [")[0][:20])


def test_stream_ended_without_its_end_marker_is_not_taken_as_complete(pipeline, server, offline):
    # All but the last piece arrives and the stream then ends cleanly on the wire. What came
    # would verify (the cut is in a closing remark), but it is a cut-off reply, not an answer.
    server.responder = lambda m: cite_first_sentence(m) + "\n\nThat is all the documents say."
    server.queue(Drop(after=-1, clean=True))
    _, final = streamed(pipeline)
    assert_offline_with_notice(final, offline, "reply cut off")


def test_whole_reply_cut_mid_body_is_retried(pipeline, server):
    server.queue(Drop())
    answer = pipeline.ask(QUESTION)
    assert_model_answer(answer, pipeline)
    assert len(server.requests) == 2


@pytest.mark.parametrize("provider", ["openai"])  # the per-provider part is above
def test_whole_reply_cut_every_time_ends_in_the_offline_answer(pipeline, server, offline):
    server.queue(Drop(), Drop(), Drop())
    answer = pipeline.ask(QUESTION)
    assert_offline_with_notice(answer, offline, "connection lost")
    assert len(server.requests) == 3


@pytest.mark.parametrize("provider", ["openai"])  # the per-provider part is above
def test_every_stream_cut_before_text_ends_in_the_offline_answer(pipeline, server, offline):
    server.queue(Drop(after=0), Drop(after=0), Drop(after=0))
    _, final = streamed(pipeline)
    assert_offline_with_notice(final, offline, "connection lost")
    assert len(server.requests) == 3


@pytest.mark.parametrize("provider", ["openai"])  # the per-provider part is above
def test_condense_cut_every_time_still_answers(pipeline, server):
    # The follow-up cannot be rewritten; it is answered as asked, searched with the history.
    server.queue(Drop(), Drop(), Drop())
    answer = pipeline.ask("and when will it leave?", history=["Will Russia leave the ISS?"])
    assert_model_answer(answer, pipeline)
    assert len(server.requests) == 4
