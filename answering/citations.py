"""Verification of citations: an excerpt is shown only if it is verbatim in its document."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from qabot.types import Citation

TextLookup = Callable[[str, int, int], "str | None"]


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
