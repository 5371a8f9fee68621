"""Reading and checking structured replies (answering/llm/structured.py), without a server."""

from __future__ import annotations

import json

import jsonschema
import pytest

from answering.llm.prompt import PackedChunk
from answering.llm.retry import MalformedReply
from answering.llm.structured import (
    Claim,
    check_claims,
    parse_claims,
    partial_answer,
    quote_choices,
    reply_schema,
)
from qabot.types import Chunk

A = "Roscosmos plans to build its own station by 2028. It will orbit over the poles."
B = "The first ISS module was launched in 1998. Crews rotate every six months."
DOC = {"a.txt": "Intro line. " + A, "b.txt": B}
PACKED = [
    PackedChunk(1, Chunk("a#0", "a.txt", 12, 12 + len(A), A)),
    PackedChunk(2, Chunk("b#0", "b.txt", 0, len(B), B)),
]


def lookup(source: str, start: int, end: int) -> str | None:
    return DOC[source][start:end]


def test_schema_is_strict_mode_compatible_and_limits_only_when_asked():
    schema = reply_schema()
    item = schema["properties"]["claims"]["items"]
    for obj in (schema, item):  # OpenAI strict mode: all properties required, no others
        assert set(obj["required"]) == set(obj["properties"]) and not obj["additionalProperties"]
    assert "maxItems" not in schema["properties"]["claims"]
    limited = reply_schema(limits=True)
    assert limited["properties"]["claims"]["maxItems"] >= 1
    jsonschema.validate({"claims": [{"chunk": 1, "quote": "x" * 20, "text": "t"}]}, limited)
    with pytest.raises(jsonschema.ValidationError):  # too short to pass the check anyway
        jsonschema.validate({"claims": [{"chunk": 1, "quote": "short", "text": "t"}]}, limited)


def test_quote_choices_are_the_chunks_sentences():
    choices = quote_choices(PACKED)
    assert choices[0] == "Roscosmos plans to build its own station by 2028."
    assert len(choices) == 4 and all(any(q in p.chunk.text for p in PACKED) for q in choices)
    schema = reply_schema(True, choices)
    jsonschema.validate({"claims": [{"chunk": 2, "quote": choices[2], "text": "t"}]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        made_up = {"claims": [{"chunk": 2, "quote": "made up words", "text": "t"}]}
        jsonschema.validate(made_up, schema)


@pytest.mark.parametrize(
    "raw",
    ['{"claims": [{"chunk": 1, "quo', "not json", '{"answer": "x"}', '{"claims": "x"}', "[1]"],
)
def test_malformed_replies_raise(raw):
    with pytest.raises(MalformedReply):
        parse_claims(raw)


def test_parse_is_lenient_where_nothing_unchecked_gets_through():
    claims = parse_claims(
        json.dumps({"claims": [{"chunk": "2", "quote": " q q q q ", "text": "In 1998 [2]."}]})
    )
    assert claims == [Claim(2, "q q q q", "In 1998.")]
    [claim] = parse_claims('{"claims": [{"chunk": null, "quote": "some words here"}]}')
    assert claim.chunk == 0 and claim.text == "some words here"


def test_wrong_chunk_is_reattributed_and_offsets_are_the_documents():
    quote = "launched in 1998"
    checked = check_claims([Claim(1, quote, "In 1998.")], PACKED, lookup)
    [c] = checked.citations
    assert c.source == "b.txt" and DOC["b.txt"][c.start : c.end] == quote
    assert checked.text == "In 1998 [1]." and checked.dropped == 0


def test_invented_quote_drops_its_claim_only():
    checked = check_claims(
        [Claim(1, "by 2028", "By 2028."), Claim(1, "built by aliens on Mars", "Aliens.")],
        PACKED,
        lookup,
    )
    assert checked.citations == [] and checked.dropped == 2  # "by 2028" is under 8 characters
    checked = check_claims(
        [Claim(1, "its own station by 2028", "By 2028."), Claim(2, "aliens built it", "No.")],
        PACKED,
        lookup,
    )
    assert checked.text == "By 2028 [1]." and checked.dropped == 1
    assert DOC["a.txt"][checked.citations[0].start : checked.citations[0].end] == (
        "its own station by 2028"
    )


def test_a_quote_that_fails_the_document_check_is_dropped():
    def stale(source: str, start: int, end: int) -> str | None:
        return "something else"

    checked = check_claims([Claim(1, "its own station by 2028", "x")], PACKED, stale)
    assert checked.citations == [] and checked.dropped == 1 and not checked.abstained


def test_same_quote_twice_is_one_citation():
    quote = "Crews rotate every six months."
    claims = [Claim(2, quote, "Every six months."), Claim(2, quote, "")]
    checked = check_claims(claims, PACKED, lookup)
    assert len(checked.citations) == 1
    assert checked.text == f"Every six months [1]. {quote[:-1]} [1]."


def test_given_quotes_keep_only_claims_whose_text_is_in_their_quote():
    sentence = "Roscosmos plans to build its own station by 2028."
    kept = check_claims([Claim(1, sentence, "by 2028")], PACKED, lookup, quotes_given=True)
    assert kept.text == "by 2028 [1]" and kept.dropped == 0
    # The grammar made the quote verbatim; the claim is what the model says, and its quote
    # does not say it: neither is shown, and with nothing left the extractive answer is.
    rambling = check_claims(
        [Claim(1, sentence, "Roscosmos has cooperated for 20 years.")],
        PACKED,
        lookup,
        quotes_given=True,
    )
    assert rambling.citations == [] and rambling.text == ""
    assert rambling.dropped == 1 and not rambling.abstained


def test_given_quotes_a_wrong_sentence_of_the_named_chunk_gives_way_to_the_one_holding_the_text():
    # Chunk 1 was named and only its first sentence holds "by 2028": that sentence is cited.
    wrong = "It will orbit over the poles."
    moved = check_claims([Claim(1, wrong, "by 2028")], PACKED, lookup, quotes_given=True)
    assert moved.text == "by 2028 [1]" and moved.dropped == 0
    assert moved.citations[0].excerpt == "Roscosmos plans to build its own station by 2028."
    assert lookup("a.txt", moved.citations[0].start, moved.citations[0].end) == (
        moved.citations[0].excerpt
    )
    # Held only by a sentence of another chunk than the one named: not moved, dropped.
    other = check_claims([Claim(1, wrong, "in 1998")], PACKED, lookup, quotes_given=True)
    assert other.citations == [] and other.dropped == 1


def test_given_quotes_are_asked_for_after_the_answer():
    # A grammar decodes in property order: the answer is written before a sentence is chosen.
    schema = reply_schema(True, quote_choices(PACKED))
    assert list(schema["properties"]["claims"]["items"]["properties"]) == ["text", "chunk", "quote"]
    assert list(reply_schema()["properties"]["claims"]["items"]["properties"])[-1] == "text"


def test_no_claims_is_an_abstention():
    assert check_claims([], PACKED, lookup).abstained
    assert check_claims([Claim(0, "I don't know.", "I don't know.")], PACKED, lookup).abstained
    assert not check_claims([Claim(1, "aliens did it all", "Aliens.")], PACKED, lookup).abstained


def test_partial_answer_grows_with_the_reply():
    raw = json.dumps(
        {
            "claims": [
                {"chunk": 1, "quote": "its own station by 2028", "text": "By 2028."},
                {"chunk": 2, "quote": "launched in 1998", "text": "First module 1998."},
            ]
        }
    )
    shown = ""
    for end in range(1, len(raw) + 1):
        now = partial_answer(raw[:end])
        assert now.startswith(shown)  # it only ever grows
        shown = now
    assert shown == "By 2028 [1]. First module 1998"
    assert partial_answer('{"claims": [{"chunk": 1, "quote": "abc') == ""
    assert partial_answer("") == "" and partial_answer("{{{") == ""
