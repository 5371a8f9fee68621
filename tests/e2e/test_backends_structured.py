"""Structured replies through the real OpenAI, Anthropic and Ollama LangChain clients.

Each provider's fake (tests/llm_servers) checks that the request carried the schema in that
provider's own form (OpenAI ``response_format`` json_schema, Ollama ``format``, Anthropic a
forced tool) and answers in that form. Every case runs per provider, whole and streamed.
"""

from __future__ import annotations

import pytest

from answering.answerer import AnswerRequest, Draft, Unavailable
from answering.backends import create
from answering.llm.answerer import ModelAnswerer
from answering.pipeline import verified_draft
from qabot.types import Chunk, Hit
from retrieval.search import Corpus, Retrieval
from tests.llm_servers import FakeLLM, Structured, settings_for

DOCS = {
    "iss.txt": (
        "Russia said in 2022 that it would leave the International Space Station after 2024. "
        "Roscosmos plans to build its own Russian Orbital Service Station (ROSS) by 2028. "
        "The first ISS module was launched in 1998."
    ),
    "notes.txt": "Station log. The cupola has seven windows. Crews rotate every six months.",
}
QUESTION = "When will Russia leave the ISS?"
LEAVE = "Russia said in 2022 that it would leave the International Space Station after 2024."
CORPUS = Corpus([Chunk(f"{s}#0", s, 0, len(t), t) for s, t in DOCS.items()])

pytestmark = pytest.mark.usefixtures("fresh")  # tests/conftest.py


def hit(source: str, rank: int) -> Hit:
    text = DOCS[source]
    return Hit(Chunk(f"{source}#0", source, 0, len(text), text), 1.0 / rank, rank)


HITS = [hit("iss.txt", 1)]
#: notes.txt is chunk 1, iss.txt chunk 2.
TWO = [hit("notes.txt", 1), hit("iss.txt", 2)]


@pytest.fixture(params=[False, True], ids=["whole", "stream"])
def stream(request: pytest.FixtureRequest) -> bool:
    return request.param


def model_for(provider: str, url: str, mode: str = "auto") -> ModelAnswerer:
    settings = settings_for(provider, url, qabot_llm_structured=mode)
    answerer = create(settings)
    assert isinstance(answerer, ModelAnswerer)
    return ModelAnswerer(answerer.backend, settings, sleep=lambda _s: None)


def run(
    model: ModelAnswerer, hits: list[Hit], stream: bool
) -> tuple[list[str], Draft | None, str | None, int]:
    """(deltas, the verified draft or None, why not, citations dropped), as the pipeline."""
    request = AnswerRequest(QUESTION, Retrieval(hits, None), CORPUS)
    deltas: list[str] = []
    try:
        if stream:
            reply = model.stream(request)
            deltas = list(reply)
            draft = reply.result()
        else:
            draft = model.answer(request)
    except Unavailable as error:
        return deltas, None, str(error), 0
    verified, dropped = verified_draft(draft, request)
    return deltas, verified, None if verified else "no verifiable citation", dropped


def carried_schema(provider: str, body: dict) -> dict:
    """The schema as the request carried it, in the provider's own form (or a failure)."""
    if provider == "openai":
        assert body["response_format"]["type"] == "json_schema"
        assert body["response_format"]["json_schema"]["strict"] is True
        return body["response_format"]["json_schema"]["schema"]
    if provider == "ollama":
        return body["format"]
    [tool] = body["tools"]
    assert body["tool_choice"] == {"type": "tool", "name": tool["name"]}
    return tool["input_schema"]


def claim(chunk: int, quote: str, text: str) -> dict:
    return {"chunk": chunk, "quote": quote, "text": text}


def test_good_structured_reply_is_verified(server, provider, stream):
    deltas, draft, why, dropped = run(model_for(provider, server.url), HITS, stream)
    assert why is None and dropped == 0 and draft is not None
    [citation] = draft.citations
    assert citation.source == "iss.txt" and citation.excerpt == LEAVE
    assert DOCS["iss.txt"][citation.start : citation.end] == LEAVE
    assert draft.text == LEAVE[:-1] + " [1]."
    [request] = server.requests
    schema = carried_schema(provider, request["body"])
    assert schema["required"] == ["claims"]
    # The local runtime (Ollama) is held to the chunk's own sentences; hosted APIs are not.
    allowed = schema["properties"]["claims"]["items"]["properties"]["quote"].get("enum")
    assert (allowed is not None) == (provider == "ollama")
    if allowed:
        assert LEAVE in allowed and all(q in DOCS["iss.txt"] for q in allowed)
    if stream:  # the answer field is shown as it is written, never the JSON around it
        assert len(deltas) > 1 and "".join(deltas) == LEAVE[:-1]
    else:
        assert deltas == []


def test_wrong_chunk_number_is_reattributed(server, provider, stream):
    server.queue(Structured({"claims": [claim(1, LEAVE, "After 2024.")]}))  # it is in chunk 2
    _, draft, why, dropped = run(model_for(provider, server.url), TWO, stream)
    assert why is None and dropped == 0 and draft is not None
    [citation] = draft.citations
    assert citation.source == "iss.txt" and citation.excerpt == LEAVE
    assert draft.text == "After 2024 [1]."


def test_invented_quote_is_dropped(server, provider, stream):
    server.queue(
        Structured(
            {
                "claims": [
                    claim(1, LEAVE, "After 2024."),
                    claim(1, "aliens will run the station from 2030", "Aliens run it after."),
                ]
            }
        )
    )
    _, draft, why, dropped = run(model_for(provider, server.url), HITS, stream)
    assert draft is not None and why is None and dropped == 1
    assert draft.text == "After 2024 [1]." and len(draft.citations) == 1


def test_only_invented_quotes_mean_fallback(server, provider, stream):
    server.queue(Structured({"claims": [claim(1, "Russia will leave in 2030", "In 2030.")]}))
    _, draft, why, dropped = run(model_for(provider, server.url), HITS, stream)
    assert draft is None and dropped == 1 and why == "no verifiable citation"


def test_empty_claims_are_an_abstention(server, provider, stream):
    server.queue(Structured({"claims": []}))
    _, draft, why, _ = run(model_for(provider, server.url), HITS, stream)
    assert draft is not None and draft.abstained and why is None


def test_malformed_json_is_retried(server, provider, stream):
    server.queue(Structured('{"claims": [{"chunk": 1, "quo'))
    _, draft, why, _ = run(model_for(provider, server.url), HITS, stream)
    assert why is None and draft is not None and draft.citations[0].excerpt == LEAVE
    assert len(server.requests) == 2  # the broken reply, then the retry


def test_malformed_json_every_time_falls_back(server, provider, stream):
    server.queue(*[Structured('{"claims": "not a list"}')] * 3)
    _, draft, why, _ = run(model_for(provider, server.url), HITS, stream)
    assert draft is None and why == "malformed reply"
    assert len(server.requests) == 3  # the first try and QABOT_LLM_RETRIES=2


def test_off_asks_in_free_text(server, provider, stream):
    _, draft, why, _ = run(model_for(provider, server.url, "off"), HITS, stream)
    assert draft is not None and why is None
    [request] = server.requests
    assert request["schema"] is None
    body = request["body"]
    assert "response_format" not in body and not body.get("tools")
    assert body.get("format") in (None, "")


def test_server_without_structured_output_gets_free_text(provider, stream):
    with FakeLLM(structured=False) as plain:
        model = model_for(provider, plain.url)
        _, draft, why, _ = run(model, HITS, stream)
        assert why is None and draft is not None
        assert draft.citations[0].excerpt.startswith("Russia said in 2022")
        first, second = plain.requests
        assert first["schema"] is not None and second["schema"] is None
        assert model.free_text_only  # remembered: the next question goes straight to free text
        run(model, HITS, stream)
        assert len(plain.requests) == 3 and plain.requests[2]["schema"] is None


def test_on_does_not_fall_back(provider, stream):
    with FakeLLM(structured=False) as plain:
        _, draft, why, _ = run(model_for(provider, plain.url, "on"), HITS, stream)
        assert draft is None and why == "HTTP 400"
        assert len(plain.requests) == 1  # a 400 is not retried
