"""Structured replies: the answer as claims, each with the chunk and verbatim quote behind it.

The model is asked (through its provider's own structured-output mechanism, see
``answering.llm.chat.StructuredChat``) for a JSON object of the shape of :func:`reply_schema`::

    {"claims": [{"chunk": 2, "quote": "operational in 2028", "text": "In 2028."}]}

The shape is kept flat and short for small models: one list, three fields per item, the
quote before the claim so that the model copies its evidence first and then states only what
it copied (when the quotes are held to the chunks' sentences, the claim comes first: see
:func:`reply_schema`). Nothing in the reply is trusted: every quote is located in the chunk
it names (or, failing that, in another chunk the model was given: small models often name the
neighbouring chunk's number) and then verified against the stored document by
``keep_verified``; a claim whose quote is found nowhere is dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.utils.json import parse_partial_json

from answering.citations import TextLookup, keep_verified, locate
from answering.llm.prompt import PackedChunk
from answering.llm.reply import Checked
from answering.llm.retry import MalformedReply
from qabot.types import Chunk, Citation
from retrieval.sentences import sentence_spans

#: The tool (Anthropic) / schema (OpenAI) name the reply is given under.
NAME = "answer"
DESCRIPTION = "The answer as claims, each supported by a verbatim quote from a numbered chunk."
#: Limits written into the schema for runtimes that constrain decoding with a grammar
#: (llama.cpp, Ollama): they stop a small model rambling, and a quote shorter than the
#: citation check's minimum could never pass anyway.
MAX_CLAIMS = 2
MIN_QUOTE = 12
MAX_FIELD = 240

_MARKER = re.compile(r"\s*\[\d+(?:\s*,\s*\d+)*\]")
_ABSTAIN = re.compile(r"^\W*(i\s+(don'?t|do\s+not)\s+know|i\s+cannot\s+find)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Claim:
    """One claim of a structured reply, as the model wrote it (unchecked)."""

    chunk: int
    quote: str
    text: str


def reply_schema(limits: bool = False, quotes: Sequence[str] = ()) -> dict[str, Any]:
    """The JSON schema of a reply; ``limits`` adds length limits (grammar-based runtimes).

    ``quotes``, when given, are the only quotes allowed (an ``enum``): a runtime that decodes
    with a grammar then cannot write a quote that is not verbatim in a chunk, and the model
    only has to choose its evidence. Without limits or quotes the schema stays within what
    OpenAI's strict mode accepts (every property required, no additional properties).
    """
    text: dict[str, Any] = {"type": "string"}
    quote: dict[str, Any] = {"type": "string"}
    claims: dict[str, Any] = {"type": "array"}
    if limits:
        quote |= {"minLength": MIN_QUOTE, "maxLength": MAX_FIELD}
        text |= {"maxLength": MAX_FIELD}
        claims |= {"maxItems": MAX_CLAIMS}
    properties = {"chunk": {"type": "integer"}, "quote": quote, "text": text}
    if quotes:
        # A grammar decodes the fields in this order, and a choice among the sentences is
        # made token by token with no look-ahead: asked for the quote first, a model commits
        # to the opening words of some sentence before it has said what it answers (measured
        # with a 1.5B model: the right name as text, under a wrong sentence). The answer comes
        # first; the quote is then chosen to fit it.
        properties = {
            "text": text,
            "chunk": {"type": "integer"},
            "quote": {"type": "string", "enum": list(quotes)},
        }
    item = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"claims": claims | {"items": item}},
        "required": ["claims"],
        "additionalProperties": False,
    }


def quote_choices(packed: Sequence[PackedChunk]) -> list[str]:
    """The sentences of the given chunks (long enough to count as a quote), in chunk order.

    Why sentences: a sentence is the smallest piece that usually carries a whole fact with its
    subject, and the extractive answerer shows sentences too.
    """
    out: list[str] = []
    seen: set[str] = set()
    for p in sorted(packed, key=lambda p: p.n):
        for s, e in sentence_spans(p.chunk.text):
            sentence = p.chunk.text[s:e]
            if len(sentence) >= MIN_QUOTE and sentence not in seen:
                seen.add(sentence)
                out.append(sentence)
    return out


def parse_claims(raw: str) -> list[Claim]:
    """The claims of a reply's JSON text; raises :class:`MalformedReply` if it has none.

    Lenient where leniency cannot let anything unchecked through: a missing ``text`` becomes
    the quote, a chunk number written as a string is read as a number.
    """
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, TypeError) as error:
        raise MalformedReply(f"the structured reply is not JSON: {error}") from error
    items = value.get("claims") if isinstance(value, dict) else None
    if not isinstance(items, list):
        raise MalformedReply("the structured reply has no list of claims")
    claims = []
    for item in items:
        if not isinstance(item, dict):
            raise MalformedReply("a claim of the structured reply is not an object")
        quote = item.get("quote")
        text = item.get("text") or quote
        try:
            chunk = int(item.get("chunk"))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            chunk = 0  # no usable number: the quote may still be found in a given chunk
        if isinstance(quote, str) and isinstance(text, str):
            claims.append(Claim(chunk, quote.strip(), _MARKER.sub("", text).strip()))
    return claims


def check_claims(
    claims: Sequence[Claim],
    packed: Sequence[PackedChunk],
    lookup: TextLookup,
    quotes_given: bool = False,
) -> Checked:
    """Verify each claim's quote; keep the claims whose quote holds, numbered from 1.

    A quote not in the chunk it names but verbatim in another given chunk is re-attributed to
    that chunk (the best-ranked one when several hold it): the excerpt shown is still exactly
    the stored text, so the only thing corrected is the model's bookkeeping.

    ``quotes_given``: the quotes were held to the chunks' sentences (see ``reply_schema``), so
    a quote passing says nothing about the model; the claim then holds only if its text is
    found in its quote ("2028" in "... operational in 2028."). When the quote lacks it but
    exactly one sentence of the chunk the model named holds it, that sentence is the quote:
    a grammar makes the model pick its sentence token by token, so a quote that opens like
    the right one ("Vladimir ...") can end in another. Otherwise the claim is dropped like an
    unverified quote: the text is unsupported.
    """
    given = {p.n: p.chunk for p in packed}
    order = [given[n] for n in sorted(given)]
    found: list[tuple[Claim, Citation]] = []
    failed = 0
    for claim in claims:
        named = given.get(claim.chunk)
        candidates = ([named] if named else []) + [c for c in order if c is not named]
        citation = None
        for chunk in candidates:
            span = locate(claim.quote, chunk.text)
            if span is not None:
                start, end = chunk.start + span[0], chunk.start + span[1]
                citation = Citation(0, chunk.source, start, end, chunk.text[span[0] : span[1]])
                break
        if quotes_given and citation is not None and not _grounded(claim.text, citation.excerpt):
            citation = _sentence_holding(claim.text, named) if named is not None else None
        if citation is None:
            failed += 1
        else:
            found.append((claim, citation))
    kept, unverified = keep_verified([c for _, c in found], lookup)
    kept_ids = {id(c) for c in kept}
    numbers: dict[tuple[str, int, int], int] = {}
    citations: list[Citation] = []
    pieces: list[str] = []
    for claim, c in found:
        if id(c) not in kept_ids:
            continue
        key = (c.source, c.start, c.end)
        if key not in numbers:
            numbers[key] = len(citations) + 1
            citations.append(Citation(numbers[key], c.source, c.start, c.end, c.excerpt))
        pieces.append(_with_marker(claim.text or c.excerpt, numbers[key]))
    abstained = not citations and (
        not claims or all(_ABSTAIN.match(c.text or c.quote) for c in claims)
    )
    return Checked(" ".join(pieces), citations, failed + unverified, abstained)


def _sentence_holding(text: str, chunk: Chunk) -> Citation | None:
    """The one sentence of ``chunk`` that holds ``text``; ``None`` if none or several do."""
    holding = [(s, e) for s, e in sentence_spans(chunk.text) if _grounded(text, chunk.text[s:e])]
    if len(holding) != 1:
        return None
    s, e = holding[0]
    return Citation(0, chunk.source, chunk.start + s, chunk.start + e, chunk.text[s:e])


def _grounded(text: str, excerpt: str) -> bool:
    """Whether ``text`` occurs in the quote (ignoring case, whitespace and closing
    punctuation)."""
    probe = " ".join(text.split()).rstrip(".!?;:,").lower()
    return bool(probe) and probe in " ".join(excerpt.split()).lower()


def _with_marker(text: str, n: int) -> str:
    """``text`` with ``[n]`` before its closing punctuation: ``"In 2028 [1]."``."""
    body = text.rstrip()
    end = len(body.rstrip(".!?"))
    return f"{body[:end]} [{n}]{body[end:]}"


def partial_answer(raw: str) -> str:
    """The answer text of a reply still being written (partial JSON), for streaming.

    Each finished claim is followed by its (unchecked) chunk number; the closing punctuation
    of the claim being written waits for that number, so the text only ever grows. The final,
    verified text replaces all of it.
    """
    try:
        value = parse_partial_json(raw) if raw.strip() else None
    except Exception:  # noqa: BLE001 - any partial text that does not parse shows nothing yet
        return ""
    items = value.get("claims") if isinstance(value, dict) else None
    if not isinstance(items, list):
        return ""
    parts = []
    for i, item in enumerate(items):
        text = item.get("text") if isinstance(item, dict) else None
        if not isinstance(text, str) or not text:
            continue
        text = _MARKER.sub("", text)
        if i < len(items) - 1:
            if isinstance(item.get("chunk"), int):
                text = _with_marker(text, item["chunk"])
        else:  # held back: the marker goes before it once the claim is finished
            text = text.rstrip().rstrip(".!?")
        parts.append(text)
    return " ".join(parts)
