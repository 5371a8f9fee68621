"""Split text into sentences, as character spans into the original text.

Rule-based on purpose: spans must map back to the text exactly (citations are verbatim),
and it must work on any language that ends sentences with . ! ? or line breaks.

Also: whether a sentence leans on the one before it ("His predecessor, ..."), and so what it
states, which is what its vector is made of.
"""

from __future__ import annotations

import re

# A sentence ends at . ! ? (or their CJK forms), possibly followed by closing quotes or
# brackets, when whitespace follows; a line break ends one too (headlines, list items) unless
# the next line goes on in lowercase (hard-wrapped text).
_BOUNDARY = re.compile(r"""([.!?。！？]+["'”’)\]]*)(\s+)|(\n+)""")
_ABBREVIATIONS = frozenset(
    "mr mrs ms dr prof sr jr st mt vs etc e.g i.e cf no fig inc ltd co corp jan feb mar apr "
    "jun jul aug sep sept oct nov dec gen col lt sgt rev approx u.s u.k a.m p.m ca al op vol "
    "pp ed".split()
)
_LAST_WORD = re.compile(r"(\S+)$")


def _ends_with_abbreviation(text: str, end: int) -> bool:
    """True when the period before ``end`` belongs to an abbreviation or an initial."""
    match = _LAST_WORD.search(text, max(0, end - 20), end)
    if not match:
        return False
    word = match.group(1).rstrip(".").lstrip("(\"'“‘").lower()
    if word in _ABBREVIATIONS:
        return True
    return len(word) == 1 and word.isalpha()  # an initial: "J. R. R. Tolkien"


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans ``(s, e)`` within ``text[start:end]``, whitespace trimmed, none empty."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    cursor = start
    for match in _BOUNDARY.finditer(text, start, end):
        if match.group(3) is None:  # punctuation + whitespace
            stop = match.end(1)
            nxt = text[match.end() : match.end() + 1]
            if text[match.start(1)] == "." and (
                _ends_with_abbreviation(text, match.start(1) + 1) or (nxt and nxt.islower())
            ):
                continue
        else:
            if match.group(3) == "\n" and text[match.end() : match.end() + 1].islower():
                # A hard-wrapped line ("the cost of\nthe breakwater"): a new sentence, a
                # headline or a list item does not start with a lowercase letter.
                continue
            stop = match.start(3)
        _append_trimmed(text, cursor, stop, spans)
        cursor = match.end()
    _append_trimmed(text, cursor, end, spans)
    return spans


def _blank(char: str) -> bool:
    """Whitespace, or a byte-order mark (U+FEFF: kept in the text so offsets match the file)."""
    return char.isspace() or char == "\ufeff"


def _append_trimmed(text: str, s: int, e: int, spans: list[tuple[int, int]]) -> None:
    while s < e and _blank(text[s]):
        s += 1
    while e > s and _blank(text[e - 1]):
        e -= 1
    if e > s:
        spans.append((s, e))


#: Words that point back to the sentence before: "She described ...", "This came after ...",
#: also after a fronted adverbial of a few words ("Several times, his predecessor ...", "In
#: 2019, it was ..."): the phrase sets the time or manner, not whom the pronoun means.
_LEANS = re.compile(
    r"^(?:(?:but|and|however|so|yet|still|then|also),?\s+)?(?:[\w'’-]+(?:\s+[\w'’-]+){0,3},\s+)?"
    r"(?!it (?:appears|seems|is (?:said|clear"
    r"|likely|possible|unclear)))(?:he|she|they|it|this|that|these|those"
    r"|his|her|their|its|such|the (?:move|decision|announcement|statement|plan|deal|agency"
    r"|company|group|country|report))\b",
    re.IGNORECASE,
)


def leans_on_previous(text: str) -> bool:
    """Whether ``text`` opens with a word that refers to the sentence before it."""
    return bool(_LEANS.match(text.strip().lstrip("\"'“‘(")))


def stated_span(spans: list[tuple[int, int]], i: int, text: str) -> tuple[int, int] | None:
    """What sentence ``i`` of ``text`` states when it leans on the sentence before ("His
    predecessor, Dmitry Rogozin, ..."): the span of the two together, as a reader takes
    them; None for a sentence that stands alone.

    "His predecessor" alone says nothing about whose predecessor: a question about Borisov's
    predecessor is close to the sentence only when the sentence it leans on is read with it.
    """
    s, e = spans[i]
    if i > 0 and leans_on_previous(text[s:e]):
        return spans[i - 1][0], e
    return None
