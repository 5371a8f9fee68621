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
    words = quote.split()
    # A model that quotes the middle of a sentence often makes it one: a capital first letter
    # ("The US wants ..." for "... but the US wants ...") and a full stop after the last word.
    # Neither changes what the words say; the excerpt shown is the text as stored.
    if len(words) > 1 and words[-1][-1] in ".!?" and len(words[-1]) > 1:
        words[-1] = words[-1][:-1]
    for i, word in enumerate(words):
        escaped = re.escape(word)
        escaped = re.sub(r"['’‘]", "['’‘]", escaped)
        escaped = re.sub(r"[\"“”]", '["“”]', escaped)
        if i == 0 and word[0].isalpha():
            escaped = f"[{word[0].upper()}{word[0].lower()}]{escaped[1:]}"
        parts.append(escaped)
    return re.compile(r"\s+".join(parts))


def locate(quote: str, text: str) -> tuple[int, int] | None:
    """Where ``quote`` occurs in ``text``: exactly, else up to whitespace, quote marks, the
    case of its first letter and a full stop after it."""
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
