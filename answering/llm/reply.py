"""Reading a model's reply: its [n] markers and quotes, checked against the chunks it was given.

The reply format is set by ``prompts/answer.system.md``: the answer with ``[n]`` markers, then
a ``Quotes:`` section of ``[n] "exact words"`` lines (inline ``"words" [n]`` is accepted too).
A quote counts only if it occurs in chunk ``n`` (exactly, or differing only in whitespace and
straight/curly quote marks); it then becomes a :class:`Citation` at
``chunk.start + index``, and ``keep_verified`` checks it against the stored document.

Only the parts of the answer that end in a supported marker are kept: a claim whose markers all
failed is removed with them, so nothing unsupported is shown.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from answering.citations import TextLookup, keep_verified, locate
from answering.llm.prompt import PackedChunk
from qabot.types import Citation

_HEADING = re.compile(
    r"^[ \t]*[#*_]*[ \t]*(quotes?|sources?|citations?)[ \t]*[*_]*:?[*_]*[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_QUOTE_LINE = re.compile(r"^[\s\-*•]*\[(\d+)\]\s*[:\-–—]?\s*(.+?)\s*$", re.MULTILINE)
_INLINE = re.compile(
    r"[\"“]([^\"“”\n]{3,}?)[\"”]\s*\[(\d+)\]"  # "quote" [n]
    r"|\[(\d+)\s*:\s*[\"“]([^\"”\n]+)[\"”]\]"  # [n: "quote"]
)
_MARKERS = re.compile(r"(?:\s*\[\d+(?:\s*,\s*\d+)*\])+")
_NUMBER = re.compile(r"\d+")
_ABSTAIN = re.compile(r"^\W*(i\s+(don'?t|do\s+not)\s+know|i\s+cannot\s+find)", re.IGNORECASE)
_LEAD = re.compile(r"^\s*[.,;:!?]+")
_OPEN_CLOSE = "\"'“”‘’«»"


@dataclass(slots=True)
class Reply:
    """A reply split into its answer text and its (chunk number, quote) pairs."""

    body: str
    quotes: list[tuple[int, str]] = field(default_factory=list)

    @property
    def abstains(self) -> bool:
        return bool(_ABSTAIN.match(self.body))


@dataclass(slots=True)
class Checked:
    """The verified answer: text renumbered to match ``citations``; ``dropped`` failed."""

    text: str
    citations: list[Citation]
    dropped: int
    abstained: bool


def without_markers(text: str) -> str:
    """``text`` as read, without its ``[n]`` citation markers (spaces collapsed)."""
    return " ".join(_MARKERS.sub(" ", text).split())


def visible(text: str) -> str:
    """The part of a (partial) reply a user should see while it streams: before ``Quotes:``."""
    match = _HEADING.search(text)
    return text[: match.start()] if match else text


def parse(text: str) -> Reply:
    match = _HEADING.search(text)
    body = text[: match.start()] if match else text
    quotes: list[tuple[int, str]] = []
    if match:
        for m in _QUOTE_LINE.finditer(text[match.end() :]):
            quotes.append((int(m.group(1)), _strip_quote(m.group(2))))
    for m in _INLINE.finditer(body):
        n, quote = (m.group(2), m.group(1)) if m.group(2) else (m.group(3), m.group(4))
        quotes.append((int(n), _strip_quote(quote)))
    body = _INLINE.sub(lambda m: f"[{m.group(3)}]" if m.group(3) else m.group(0), body)
    return Reply(body.strip(), quotes)


def _strip_quote(quote: str) -> str:
    quote = quote.strip()
    if len(quote) >= 2 and quote[0] in _OPEN_CLOSE and quote[-1] in _OPEN_CLOSE:
        quote = quote[1:-1]
    return quote.strip().strip("…").removesuffix("...").removeprefix("...").strip()


def check(reply: Reply, packed: Sequence[PackedChunk], lookup: TextLookup) -> Checked:
    """Verify every quote and marker of ``reply`` against the chunks the model was given."""
    given = {p.n: p.chunk for p in packed}
    candidates: list[tuple[int, Citation]] = []
    failed = 0
    seen: set[tuple[str, int, int]] = set()
    quoted = {n for n, _ in reply.quotes}
    # A claim cited with [n] but given no quote is its own quote: it counts if it is verbatim.
    self_quoted = [(n, claim) for n, claim in _claims(reply.body) if n not in quoted]
    for n, quote in [*reply.quotes, *self_quoted]:
        chunk = given.get(n)
        span = locate(quote, chunk.text) if chunk else None
        if chunk is None or span is None:
            failed += 1
            continue
        start, end = chunk.start + span[0], chunk.start + span[1]
        if (chunk.source, start, end) in seen:
            continue
        seen.add((chunk.source, start, end))
        excerpt = chunk.text[span[0] : span[1]]
        candidates.append((n, Citation(0, chunk.source, start, end, excerpt)))
    kept, unverified = keep_verified([c for _, c in candidates], lookup)
    kept_ids = {id(c) for c in kept}
    by_chunk: dict[int, list[Citation]] = {}
    for n, c in candidates:
        if id(c) in kept_ids:
            by_chunk.setdefault(n, []).append(c)
    marked = {int(x) for m in _MARKERS.finditer(reply.body) for x in _NUMBER.findall(m.group())}
    failed += unverified

    if not marked and by_chunk:  # quotes given but no markers: the whole answer cites them
        body = reply.body.rstrip()
        end = len(body.rstrip(".!?"))
        reply = Reply(body[:end] + " " + "".join(f"[{n}]" for n in by_chunk) + body[end:])
    text, citations = _rebuild(reply.body, by_chunk)
    abstained = not citations and reply.abstains
    return Checked(text if citations else "", citations, failed, abstained)


def _claims(body: str) -> list[tuple[int, str]]:
    """(n, the text of the claim that ``[n]`` closes) for every marker in ``body``."""
    out: list[tuple[int, str]] = []
    pos = 0
    for m in _MARKERS.finditer(body):
        claim = _LEAD.sub("", body[pos : m.start()]).strip().rstrip(".,;:!?").strip()
        pos = m.end()
        out += [(int(n), claim) for n in _NUMBER.findall(m.group())]
    return out


def _rebuild(body: str, by_chunk: dict[int, list[Citation]]) -> tuple[str, list[Citation]]:
    """Keep the parts of ``body`` that end in a supported marker; renumber from 1."""
    numbers: dict[int, int] = {}  # id(citation) -> new number
    out: list[Citation] = []
    pieces: list[str] = []
    kept_last = False
    pos = 0
    for m in [*_MARKERS.finditer(body), None]:
        claim = body[pos : m.start()] if m else body[pos:]
        lead = _LEAD.match(claim)
        if lead:  # punctuation that closes the previous claim belongs to it
            if kept_last:
                pieces[-1] += lead.group().strip()
            claim = claim[lead.end() :]
        if m is None:
            break
        pos = m.end()
        cited = [c for n in map(int, _NUMBER.findall(m.group())) for c in by_chunk.get(n, [])]
        kept_last = bool(cited)
        if not cited:
            continue
        refs: list[int] = []
        for c in cited:
            if id(c) not in numbers:
                numbers[id(c)] = len(out) + 1
                out.append(Citation(len(out) + 1, c.source, c.start, c.end, c.excerpt))
            if numbers[id(c)] not in refs:
                refs.append(numbers[id(c)])
        sep = " " if pieces else ""
        pieces.append(sep + claim.strip() + " " + "".join(f"[{r}]" for r in refs))
    return "".join(pieces).strip(), out
