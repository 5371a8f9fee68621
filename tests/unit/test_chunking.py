"""Chunks and sentences keep exact offsets into their document's text."""

from __future__ import annotations

import pytest

from qabot.types import Document
from retrieval.chunking import chunk_document
from retrieval.loaders import load_path
from retrieval.sentences import sentence_spans
from retrieval.tokens import count_tokens
from tests.paths import SEEDS

SEED_FILES = sorted(SEEDS.glob("*.txt"))


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.name)
@pytest.mark.parametrize("size,overlap", [(180, 30), (60, 10), (400, 0)])
def test_chunk_offsets_round_trip_and_tile(path, size, overlap):
    doc = load_path(path)
    chunks = chunk_document(doc, size, overlap)
    assert len(chunks) >= 1
    covered = 0
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        assert chunk.source == doc.source
        assert count_tokens(chunk.text) <= size
        assert chunk.start <= covered  # no gap: any span can be rebuilt from chunks
        covered = max(covered, chunk.end)
    assert covered == len(doc.text)
    assert len({c.id for c in chunks}) == len(chunks)


def test_chunks_overlap_and_prefer_sentence_ends():
    doc = load_path(SEED_FILES[0])
    chunks = chunk_document(doc, 60, 15)
    assert any(b.start < a.end for a, b in zip(chunks, chunks[1:], strict=False))
    ends = [c.text.rstrip()[-1] for c in chunks[:-1]]
    assert sum(e in ".!?\"”'" for e in ends) >= len(ends) // 2


def test_chunk_ids_depend_on_content():
    a = chunk_document(Document("a.txt", "One sentence here. Another one there."))
    b = chunk_document(Document("a.txt", "One sentence here. Another one there."))
    c = chunk_document(Document("a.txt", "One sentence here. A changed one there."))
    assert [x.id for x in a] == [x.id for x in b]
    assert {x.id for x in a}.isdisjoint({x.id for x in c})


def test_sentence_spans_handle_abbreviations_and_lines():
    text = "Dr. Smith met U.S. officials on Jan. 5. They agreed.\nA Headline Without A Stop\nEnd!"
    spans = sentence_spans(text)
    sentences = [text[s:e] for s, e in spans]
    assert sentences == [
        "Dr. Smith met U.S. officials on Jan. 5.",
        "They agreed.",
        "A Headline Without A Stop",
        "End!",
    ]


def test_a_hard_wrapped_sentence_is_one_sentence():
    # A line that goes on in lowercase continues the sentence; a headline, a list item and a
    # new sentence start otherwise.
    text = "Notes\nThe act was passed after a debate about the cost of\nthe breakwater.\n- one item"
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "Notes",
        "The act was passed after a debate about the cost of\nthe breakwater.",
        "- one item",
    ]


@pytest.mark.parametrize("path", SEED_FILES, ids=lambda p: p.name)
def test_sentence_offsets_round_trip(path):
    doc = load_path(path)
    for s, e in sentence_spans(doc.text):
        piece = doc.text[s:e]
        assert piece == piece.strip() and piece
