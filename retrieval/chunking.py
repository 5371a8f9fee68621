"""Token-aware chunking with overlap that prefers paragraph and sentence boundaries.

Sentences are packed into chunks of at most ``chunk_tokens`` tokens (tiktoken); a chunk ends
early at a paragraph break once it is half full, and the next chunk starts with the last
sentences of the previous one (up to ``overlap_tokens``). A sentence longer than a whole chunk
is cut with langchain's recursive splitter (clauses, then words). Chunks tile the document:
every character belongs to some chunk, so any span can be rebuilt from the stored chunks.
"""

from __future__ import annotations

import hashlib

from langchain_text_splitters import RecursiveCharacterTextSplitter

from qabot.types import Chunk, Document
from retrieval.sentences import sentence_spans
from retrieval.tokens import count_tokens

_LONG_SENTENCE_SEPARATORS = [r"(?<=[;:,])\s+", r"\s+", ""]


def document_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id(source: str, doc_hash: str, start: int, end: int) -> str:
    """Ids come from content: the same document always yields the same ids."""
    return hashlib.sha1(f"{source}\0{doc_hash}\0{start}\0{end}".encode()).hexdigest()


def _split_long(text: str, start: int, end: int, chunk_tokens: int) -> list[int]:
    """Cut points inside an over-long sentence ``text[start:end]``."""
    splitter = RecursiveCharacterTextSplitter(
        separators=_LONG_SENTENCE_SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=chunk_tokens,
        chunk_overlap=0,
        length_function=count_tokens,
        strip_whitespace=False,
    )
    cuts, cursor = [], start
    for piece in splitter.split_text(text[start:end]):
        found = text.find(piece, cursor, end)
        if found < 0:  # cannot happen for splitter output; a missed cut only makes a unit long
            continue
        if found > start:
            cuts.append(found)
        cursor = found + len(piece)
    return cuts


def units(text: str, chunk_tokens: int) -> list[tuple[int, int]]:
    """Sentence-sized spans that tile ``text``: each runs to the start of the next one."""
    starts = [s for s, _ in sentence_spans(text)] or [0]
    starts[0] = 0
    bounds = [*starts, len(text)]
    spans: list[tuple[int, int]] = []
    for s, e in zip(bounds, bounds[1:], strict=False):
        if e <= s:
            continue
        if count_tokens(text[s:e]) > chunk_tokens:
            cuts = [s, *_split_long(text, s, e, chunk_tokens), e]
            spans.extend((a, b) for a, b in zip(cuts, cuts[1:], strict=False) if b > a)
        else:
            spans.append((s, e))
    return spans


def chunk_spans(
    text: str, chunk_tokens: int = 180, overlap_tokens: int = 30
) -> list[tuple[int, int]]:
    """Character spans of the chunks of ``text``."""
    if not text:
        return []
    parts = units(text, chunk_tokens)
    tokens = [count_tokens(text[s:e]) for s, e in parts]
    overlap_tokens = min(overlap_tokens, chunk_tokens // 2)
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(parts):
        j, total = i, 0
        while j < len(parts) and (j == i or total + tokens[j] <= chunk_tokens):
            total += tokens[j]
            j += 1
            # End at a paragraph break once the chunk is half full: paragraphs are topics.
            if total >= chunk_tokens // 2 and text[parts[j - 1][0] : parts[j - 1][1]].endswith(
                "\n\n"
            ):
                break
        spans.append((parts[i][0], parts[j - 1][1]))
        if j >= len(parts):
            break
        k, back = j, 0
        while k - 1 > i and back + tokens[k - 1] <= overlap_tokens:
            k -= 1
            back += tokens[k]
        i = k
    return spans


def chunk_document(
    document: Document,
    chunk_tokens: int = 180,
    overlap_tokens: int = 30,
    doc_hash: str | None = None,
) -> list[Chunk]:
    """Split a document into chunks that keep exact character offsets into its text."""
    text = document.text
    doc_hash = doc_hash or document_hash(text)
    return [
        Chunk(chunk_id(document.source, doc_hash, s, e), document.source, s, e, text[s:e])
        for s, e in chunk_spans(text, chunk_tokens, overlap_tokens)
    ]
