"""Citations: finding a quoted excerpt in a text, and verifying it against the document.

An excerpt is shown only if it is verbatim in its document: :func:`verify` compares it with
the stored text at its offsets, and the pipeline drops every citation that fails.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from qabot.types import Citation

TextLookup = Callable[[str, int, int], "str | None"]

#: Shorter quotes ("the", "2028") would "verify" almost anywhere: they do not count.
MIN_QUOTE_CHARS = 8


def _pattern(quote: str) -> re.Pattern[str]:
    parts = []
    for word in quote.split():
        escaped = re.escape(word)
        escaped = re.sub(r"['’‘]", "['’‘]", escaped)
        escaped = re.sub(r"[\"“”]", '["“”]', escaped)
        parts.append(escaped)
    return re.compile(r"\s+".join(parts))


def locate(quote: str, text: str) -> tuple[int, int] | None:
    """Where ``quote`` occurs in ``text``: exactly, else up to whitespace and quote marks."""
    if len(quote) < MIN_QUOTE_CHARS:
        return None
    i = text.find(quote)
    if i >= 0:
        return i, i + len(quote)
    m = _pattern(quote).search(text)
    return (m.start(), m.end()) if m else None


def verify(citation: Citation, lookup: TextLookup) -> bool:
    """True when the stored document text at ``[start, end)`` equals the excerpt exactly."""
    if citation.start < 0 or citation.end <= citation.start or not citation.excerpt:
        return False
    return lookup(citation.source, citation.start, citation.end) == citation.excerpt


def keep_verified(citations: Iterable[Citation], lookup: TextLookup) -> tuple[list[Citation], int]:
    """The citations that pass :func:`verify`, and how many were dropped."""
    kept, dropped = [], 0
    for c in citations:
        if verify(c, lookup):
            kept.append(c)
        else:
            dropped += 1
    return kept, dropped
