"""The pipeline's parts are constructor arguments, and every answerer's draft is verified."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from answering.answerer import Answerer, AnswerRequest, Draft, Streaming, Unavailable
from answering.pipeline import Pipeline
from qabot.types import Citation, Turn

QUESTION = "When does Russia plan to leave the ISS?"


class ScriptedAnswerer:
    """An answerer that cites what it is told to: the first sentence it was given, or a lie."""

    name = "scripted"
    streams = True

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests: list[AnswerRequest] = []

    def standalone(self, question: str, history: Sequence[Turn]) -> str | None:
        return None

    def answer(self, request: AnswerRequest) -> Draft:
        self.requests.append(request)
        if self.mode == "down":
            raise Unavailable("switched off")
        chunk = request.hits[0].chunk
        text = chunk.text[:40]
        if self.mode == "lie":
            text = "Russia will leave in 1850, said nobody."
        return Draft(
            f"{text} [1]", [Citation(1, chunk.source, chunk.start, chunk.start + 40, text)]
        )

    def stream(self, request: AnswerRequest) -> Streaming[Draft]:
        draft = self.answer(request)
        return Streaming.of(draft, *draft.text.split(" "))


def test_streaming_yields_deltas_then_its_result():
    stream = Streaming.of(42, "a", "b")
    assert list(stream) == ["a", "b"] and stream.result() == 42
    assert list(stream) == []  # read once
    assert Streaming.of("done", "x").result() == "done"  # result() reads the rest itself


def test_a_given_answerer_is_used_and_its_citation_verified(seeds_pipeline: Pipeline):
    scripted = ScriptedAnswerer("honest")
    assert isinstance(scripted, Answerer)
    pipeline = Pipeline(seeds_pipeline.settings, store=seeds_pipeline.store, answerer=scripted)
    answer = pipeline.ask(QUESTION)
    assert answer.backend == "scripted" and answer.notice is None
    [c] = answer.citations
    assert pipeline.corpus().text(c.source, c.start, c.end) == c.excerpt
    assert scripted.requests[0].hits == answer.retrieved


@pytest.mark.parametrize(
    ("mode", "notice"),
    [
        ("lie", "The answer of scripted had no verifiable citation: offline answer shown."),
        ("down", "The model scripted was unavailable (switched off): offline answer shown."),
    ],
)
def test_an_answer_that_does_not_verify_falls_back_to_the_extractive_one(
    seeds_pipeline: Pipeline, mode: str, notice: str
):
    pipeline = Pipeline(
        seeds_pipeline.settings, store=seeds_pipeline.store, answerer=ScriptedAnswerer(mode)
    )
    stream = pipeline.ask_stream(QUESTION)
    deltas = list(stream)
    answer = stream.result()
    offline = seeds_pipeline.ask(QUESTION)
    assert answer.backend == "offline" and answer.notice == notice
    assert answer.text == offline.text and answer.citations == offline.citations
    assert "1850" not in answer.text
    assert (len(deltas) > 1) == (mode == "lie")  # streamed text is provisional


def test_history_reaches_the_answerer_as_turns(seeds_pipeline: Pipeline):
    scripted = ScriptedAnswerer("honest")
    pipeline = Pipeline(seeds_pipeline.settings, store=seeds_pipeline.store, answerer=scripted)
    pipeline.ask("When should it be operational?", history=["What will Russia build?"])
    assert list(scripted.requests[-1].history) == [Turn("What will Russia build?")]


def test_a_marker_whose_citation_fails_goes_with_it(seeds_pipeline: Pipeline):
    from answering.pipeline import verified_draft

    good = Pipeline(
        seeds_pipeline.settings, store=seeds_pipeline.store, answerer=ScriptedAnswerer("honest")
    )
    answer = good.ask(QUESTION)
    [real] = answer.citations
    fake = Citation(2, real.source, real.start, real.end, "words the document never had")
    retrieval = good.corpus()
    request = AnswerRequest(QUESTION, _retrieval(answer), retrieval)
    draft, dropped = verified_draft(Draft("2028 [1] [2]", [real, fake]), request)
    assert draft is not None and dropped == 1
    assert draft.text == "2028 [1]" and draft.citations == [real]


def _retrieval(answer):
    from retrieval.search import Retrieval

    return Retrieval(answer.retrieved, None)
