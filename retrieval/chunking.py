"""Token-aware chunking with overlap that prefers paragraph, line and sentence boundaries."""

from __future__ import annotations

import hashlib

from langchain_text_splitters import RecursiveCharacterTextSplitter

from qabot.types import Chunk, Document
from retrieval.tokens import count_tokens

# Coarsest boundary first: paragraphs, lines, sentence ends, clauses, words, characters.
_SEPARATORS = ["\n\n", "\n", r"(?<=[.!?。！？])\s+", r"(?<=[;:,])\s+", r"\s+", ""]


def document_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunk_id(source: str, doc_hash: str, start: int, end: int) -> str:
    """Ids come from content: the same document always yields the same ids."""
    return hashlib.sha1(f"{source}\0{doc_hash}\0{start}\0{end}".encode()).hexdigest()


def make_splitter(chunk_tokens: int, overlap_tokens: int) -> RecursiveCharacterTextSplitter:
    return RecursiveCharacterTextSplitter(
        separators=_SEPARATORS,
        is_separator_regex=True,
        keep_separator="end",
        chunk_size=chunk_tokens,
        chunk_overlap=min(overlap_tokens, chunk_tokens // 2),
        length_function=count_tokens,
        strip_whitespace=False,  # chunks tile the text exactly, so any span can be rebuilt
    )


def chunk_document(
    document: Document, chunk_tokens: int = 180, overlap_tokens: int = 30, doc_hash: str | None = None
) -> list[Chunk]:
    """Split a document into chunks that keep exact character offsets into its text."""
    text = document.text
    doc_hash = doc_hash or document_hash(text)
    pieces = make_splitter(chunk_tokens, overlap_tokens).split_text(text)
    chunks: list[Chunk] = []
    cursor = 0
    for piece in pieces:
        start = text.find(piece, cursor)
        if start < 0:  # cannot happen for splitter output, but never store a wrong offset
            start = text.find(piece)
            if start < 0:
                continue
        end = start + len(piece)
        chunks.append(Chunk(chunk_id(document.source, doc_hash, start, end), document.source, start, end, piece))
        cursor = start + 1
    return chunks
