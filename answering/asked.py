"""What a question asks for, and where a sentence holds a span of that kind.

The wh-word of an English question fixes the kind of its answer: "when" wants a date, "how
many" a number, "who" a name, "where" a place, "why" a reason. That is grammar, not a
statistic of any data set, so it holds on unseen text: a sentence without a date cannot say
when something happened, however many of the question's words it repeats. The spans are
found by surface form (numerals, month names, capitalised words, reason connectives), which
is what English prose uses for them; a question of no known kind is ``OTHER``.
"""

from __future__ import annotations

import re
from enum import Enum

from answering.languages import is_english
from retrieval.lexical import terms


class Kind(Enum):
    REASON = "reason"
    PERSON = "person"
    DATE = "date"
    NUMBER = "number"
    MONEY = "money"
    PLACE = "place"
    OTHER = "other"


Span = tuple[int, int]

#: "what year" and "what was the year" ask the same: the copula and article may stand between
#: the wh-word and the noun that names the kind. Only for nouns that name nothing but the kind
#: ("What is the time complexity?" is no date, "What is the man doing?" no person).
_THE = r"(?:(?:is|was|are|were) the )?"

# First match wins: the longer, more specific phrases come before the bare wh-words.
_KIND_PATTERNS: tuple[tuple[Kind, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        (
            Kind.REASON,
            r"\bwhy\b|\bfor what reason\b|\bwhat (was|is|were|are) the (main )?(reason|cause)",
        ),
        (Kind.REASON, r"\bhow come\b|\bwhat (caused|led to|prompted)\b"),
        (
            Kind.DATE,
            r"\bwhen\b|\b(what|which|in what|in which) "
            r"(year|years|date|day|month|century|decade|era|period|time)\b"
            rf"|\b(what|which|in what|in which) {_THE}(year|date|day|month|century|decade)\b",
        ),
        # A price is said in money: "how much did it cost" wants "4.2 million kroner".
        (
            Kind.MONEY,
            r"\bhow much\b[^?,;]*\b(cost|costs|costing|pay|pays|paid|spend|spends|spent|worth"
            r"|charge|charges|charged|earn|earns|earned|raise|raised|invest|invested|owe|owed)\b"
            r"|\bhow much money\b",
        ),
        (Kind.MONEY, rf"\b(what|which) {_THE}(cost|price|fee|fare|salary|wage)\b"),
        (Kind.NUMBER, r"\bhow (many|much|long|far|old|big|large|high|tall|wide|deep|often|fast)\b"),
        (
            Kind.NUMBER,
            rf"\b(what|which) {_THE}(percentage|percent|number|proportion|amount|population)\b",
        ),
        (Kind.PERSON, r"\bwho(m|se)?\b|\b(what|which) (person|man|woman|people)\b"),
        (
            Kind.PLACE,
            r"\bwhere\b|\b(what|which|in what|in which) "
            r"(country|city|town|place|region|state|continent|island|area|location)\b",
        ),
    )
)


#: The question words of the other languages ``answering.languages`` tells apart (German,
#: French, Spanish): a question in them is read by these, never by the English ones ("was"
#: is German for "what", "who" nowhere). Spanish marks its question words with an accent
#: ("cuándo"; "cuando" is "when" as a conjunction), French "où" ("ou" is "or"); "qui" asks
#: "who" only at the start ("le pays qui ..." is a relative clause).
_OTHER_KIND_PATTERNS: tuple[tuple[Kind, re.Pattern[str]], ...] = tuple(
    (kind, re.compile(pattern))
    for kind, pattern in (
        (
            Kind.REASON,
            r"\b(warum|wieso|weshalb|weswegen|pourquoi)\b|\bpor qué\b"
            r"|\baus welchem grund\b|\bpour quelle raison\b",
        ),
        (
            Kind.DATE,
            r"\b(wann|quand|cuándo)\b|\bin welchem jahr\b|\ben quelle année\b|\ben qué año\b",
        ),
        (
            Kind.MONEY,
            r"\b(?:wie ?viel\w*|was) (kostet|kosten|kostete|kosteten)\b"
            r"|\bcombien (coûte|coûtent|coute|coutent|a coûté|ont coûté)\b"
            r"|\bcuánto (cuesta|cuestan|costó|costaron)\b",
        ),
        (
            Kind.NUMBER,
            r"\bwie (viele?|lange|alt|hoch|groß|gross|weit|oft|schnell|tief|breit)\b|\bwieviele?\b"
            r"|\bcombien\b|\bcuánt[oa]s?\b",
        ),
        (Kind.PERSON, r"\b(wer|wen|wem|wessen|quién|quiénes)\b|^\W*(?:(?:à|de|avec|pour) )?qui\b"),
        (Kind.PLACE, r"\b(wo|wohin|woher|dónde|adónde)\b|(?<!\w)où\b"),
    )
)


def asked_kind(question: str) -> Kind:
    """The kind of answer ``question`` asks for (``OTHER`` when its words do not say)."""
    text = question.lower()
    if not is_english(text):
        return next((k for k, p in _OTHER_KIND_PATTERNS if p.search(text)), Kind.OTHER)
    # "When extensive time is required, this represents what?": the clause after the comma
    # holds the question; the leading "when" was a conjunction.
    head, comma, tail = text.rpartition(",")
    if comma and re.search(r"\b(what|which|who|whom|whose|where|when|why|how)\b", tail):
        text = tail
    for kind, pattern in _KIND_PATTERNS:
        if pattern.search(text):
            return kind
    return Kind.OTHER


_MONTH = (
    r"(?:January|February|March|April|May|June|July|August|September|October|November|December"
    r"|Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\.?"
)
_DAY = r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)"
_YEAR = r"(?:1[0-9]{3}|20[0-9]{2})(?:s|\u2019s|'s)?"
_DATE = re.compile(
    rf"\b(?:(?:early |mid-?|late )?(?:spring|summer|autumn|fall|winter) (?:of )?{_YEAR}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)? {_MONTH},? {_YEAR}"
    rf"|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?,? {_YEAR}"
    rf"|{_MONTH} {_YEAR}|{_MONTH} \d{{1,2}}(?:st|nd|rd|th)?|\d{{1,2}}(?:st|nd|rd|th)? {_MONTH}"
    rf"|{_YEAR}(?:\s*(?:–|-|to|and)\s*{_YEAR})?"
    rf"|(?:the )?\d{{1,2}}(?:st|nd|rd|th) century|{_MONTH}|{_DAY}"
    # A clock time answers "when" as well as a date does ("opens at 7 am", "at noon").
    rf"|\d{{1,2}}(?::\d{{2}})?\s?(?:am|pm|a\.m\.|p\.m\.)|\d{{1,2}}:\d{{2}}|noon|midnight)(?!\w)"
)
_NUMBER_WORDS = (
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety "
    "hundred thousand million billion trillion dozen dozens half quarter several single"
).split()
_MAGNITUDE = r"(?:\s(?:hundred|thousand|million|billion|trillion))?"
_NUMBER = re.compile(
    rf"(?<![\w.])(?:[$€£¥]\s?)?\d[\d,]*(?:\.\d+)?{_MAGNITUDE}(?:\s?(?:%|percent|per cent))?(?!\w)"
    rf"|\b(?:{'|'.join(_NUMBER_WORDS)})(?:[\s-](?:{'|'.join(_NUMBER_WORDS)}))*\b",
    re.IGNORECASE,
)
# A capitalised word (not a sentence's grammar); particles may join two of them.
_CAP = r"(?:[A-Z][\w'’.-]*[\w]|[A-Z]\.?)"
_NAME = re.compile(rf"{_CAP}(?:\s+(?:(?:de|da|van|von|der|del|la|le|of|the|bin|al)\s+)?{_CAP})*")
_NOT_NAMES = frozenset(
    """The A An In On At For And But Or If When Where Why How What Which Who This That These
    Those It Its He She They We You I His Her Their Our After Before Since Until During While
    However Although Though As By From To Of With Without There Here Some Many Most Several
    Also Then Thus Furthermore Meanwhile Meanwhle Instead Yet So Because Despite Unlike Both
    Each Every Other Such Not No Last Next First""".split()
)
_PLACE_LEAD = re.compile(r"\b(?:in|at|near|from|to|across|throughout|outside|inside|on)\s+$")
REASON_CUES = re.compile(
    r"\b(?:because(?: of)?|due to|owing to|as a result of|on account of|thanks to|in order to"
    r"|so that|so as to|for fear|amid|amidst|in response to|in protest|in light of|given that"
    r"|since|after|over)\b",
    re.IGNORECASE,
)
# Connectives that say "reason" and nothing else; "since", "after" and "over" also say time
# or place, so they count as a reason only where a "why" question asks for one.
_STRONG_REASON = re.compile(
    r"\b(?:because|due to|owing to|as a result of|on account of|thanks to|in order to|so that"
    r"|so as to|in response to|amid|amidst)\b",
    re.IGNORECASE,
)
_CLAUSE_END = re.compile(r"[,;:()\[\]—–]|\.(?:\s|$)|\s-\s")


def _dates(text: str) -> list[Span]:
    return [m.span() for m in _DATE.finditer(text)]


def _numbers(text: str) -> list[Span]:
    out = []
    dates = _dates(text)
    for m in _NUMBER.finditer(text):
        s, e = m.span()
        if any(ds <= s and e <= de for ds, de in dates):
            continue  # the day of a date
        word = m.group().lower()
        # A comma or full stop after a numeral is the sentence's ("in 2010, ...").
        if word in ("one", "half", "quarter") or _YEAR_ONLY.fullmatch(m.group().rstrip(",.")):
            continue  # "one of the ..." is rarely a count; a bare year is a date
        out.append((s, e))
    return out


_YEAR_ONLY = re.compile(r"1[0-9]{3}|20[0-9]{2}")
_CURRENCY_BEFORE = re.compile(r"(?:\b[A-Z]{1,3})?[$€£¥]\s?$|\b(?:USD|EUR|GBP|JPY|CHF)\s?$")
_CURRENCY_AFTER = re.compile(
    r"\s?(?:dollars?|euros?|pounds?(?: sterling)?|yen|yuan|renminbi|rupees?|ro?ubles?|francs?"
    r"|marks?|kron(?:er|or|a|e)|pesos?|lir[ae]|cents?|pence|shillings?|guilders?|dinars?"
    r"|dirhams?|riyals?|rand|reais|USD|EUR|GBP|JPY|CHF)\b"
)


def money(text: str) -> list[Span]:
    """Amounts of money: a number with a currency sign before it ("$5 million", "A$46
    million") or a currency after it ("4.2 million kroner"), the currency included."""
    out = []
    for s, e in _numbers(text):
        before = _CURRENCY_BEFORE.search(text, 0, s)
        after = _CURRENCY_AFTER.match(text, e)
        if text[s] in "$€£¥" or before or after:
            out.append((before.start() if before else s, after.end() if after else e))
    return out


def names(text: str) -> list[Span]:
    """Runs of capitalised words: names of people, places, organisations and works."""
    out = []
    for m in _NAME.finditer(text):
        s, e = m.span()
        # Grammar capitalises a sentence's first word ("The", "However"): not part of a name.
        for word in re.finditer(r"\S+", m.group()):
            if re.sub(r"['’](?:s|re|ll|m|ve|d)$|[.,]$", "", word.group()) not in _NOT_NAMES:
                s = m.start() + word.start()
                break
        else:
            continue
        if text[s:e].endswith(("'s", "’s")):
            e -= 2  # "Russia's" names Russia
        if not _DATE.fullmatch(text[s:e]):
            out.append((s, e))
    return out


#: "American businesses", "Norman mercenaries": a people's adjective before a plural noun.
GROUP = re.compile(r"\b[A-Z]\w*(?:an|ian|ese|ish|ic)\s+[a-z]+s\b")


def _people(text: str) -> list[Span]:
    # An all-capitals word is an acronym (NASA): an organisation, not a person.
    named = [(s, e) for s, e in names(text) if not text[s:e].isupper() or e - s <= 1]
    groups = [m.span() for m in GROUP.finditer(text)]
    return sorted(set(named) | set(groups))


def _places(text: str) -> list[Span]:
    return [(s, e) for s, e in names(text) if _PLACE_LEAD.search(text[max(0, s - 12) : s])]


#: "Russian space", "American businesses": a capitalised adjective before a plain noun.
ADJECTIVE = re.compile(r"[A-Z]\w*(?:an|ian|ese|ish|ic)(?:\s+|-)[a-z]")
#: "<verb> by": a passive verb and, after it, who did it.
_BY = re.compile(r"\b(\w+)\s+by\s+")
#: How far after "by" the doer's name may start: room for a title ("Russian president ").
_TITLE_CHARS = 30


def agents(text: str, verbs: set[str]) -> list[Span]:
    """The people named after "<verb> by" in ``text``, for a verb among ``verbs`` (terms):
    who did it ("appointed by Russian president Vladimir Putin" -> "Vladimir Putin")."""
    out = []
    for m in _BY.finditer(text):
        if not verbs.intersection(terms(m.group(1))):
            continue
        for s, e in _people(text):
            if m.end() <= s <= m.end() + _TITLE_CHARS and not ADJECTIVE.match(text, s):
                out.append((s, e))
                break
    return out


def reasons(text: str, strong_only: bool = False) -> list[Span]:
    """From a reason connective ("because", "due to", "amid") to the end of its clause."""
    pattern = _STRONG_REASON if strong_only else REASON_CUES
    out = []
    for m in pattern.finditer(text):
        end = _CLAUSE_END.search(text, m.end() + 1)
        stop = end.start() if end else len(text)
        if stop - m.end() > 3:
            out.append((m.start(), stop))
    return out


def spans(text: str, kind: Kind) -> list[Span]:
    """Where ``text`` holds an answer of ``kind`` (empty for ``OTHER``)."""
    if kind is Kind.DATE:
        return _dates(text)
    if kind is Kind.NUMBER:
        return _numbers(text)
    if kind is Kind.MONEY:
        return money(text)
    if kind is Kind.PERSON:
        return _people(text)
    if kind is Kind.PLACE:
        return _places(text) or names(text)
    if kind is Kind.REASON:
        return reasons(text, strong_only=True)
    return []


def has_kind(text: str, kind: Kind) -> bool:
    """Whether ``text`` states something of ``kind`` (a "why" wants a reason connective)."""
    if kind is Kind.REASON:
        return bool(reasons(text, strong_only=True))
    return bool(spans(text, kind))
