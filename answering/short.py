"""The short answer inside a chosen sentence: the verbatim span that answers the question.

A reader wants "2028", not the 30 words around it; the sentence stays the citation. The span
is found the way a person scans a sentence for an answer: of the asked kind (a date for
"when", ``answering.asked``), not made of the question's own words (the question already says
those), and next to the words of the sentence that match the question (the answer sits
beside what the question restates; nearness is counted in content words). For a question of
no known kind the candidates are the runs of words the question does not use, cut at clause
punctuation, each without a past tense or participle it starts with (the verb of the clause;
the answer is the phrase after it). When nothing fits, there is no short answer and the
sentence itself is shown.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from answering.asked import ADJECTIVE, GROUP, Kind, Span, agents, names, spans
from retrieval.lexical import stop_words, terms

_WORD = re.compile(r"\w[\w'’.,-]*\w|\w")
#: Where a phrase ends: punctuation that closes a clause, or a quotation mark.
_BREAK = re.compile(r"[,;:()\[\]\"“”—–]|\s-\s|\.(?:\s|$)")
#: Where a clause ends (a quotation is part of the clause that quotes it).
_CLAUSE = re.compile(r"[,;:()\[\]—–]|\s-\s|\.(?:\s|$)")
#: Where a clause ends for what a bracket holds: the bracket is an aside in its clause
#: ("the Russian Orbital Station (ROSS)").
_OUTER = re.compile(r"[,;:—–]|\s-\s|\.(?:\s|$)")
#: Words a short answer neither starts nor ends with ("in 1998" answers with "1998").
_EDGE = frozenset(
    """a an the of in on at to by for from with and or but as is are was were be been being
    has have had do does did that which who whom whose this these those its it their his her
    also not than then there when where while after before since until into over under about
    would will can could should may might must said says say he she they we you i me him them
    us our your my""".split()
)
#: Conjunctions that, after clause punctuation, start a new clause.
_CONJUNCTIONS = frozenset(("and", "or", "but"))
QUOTE_BONUS = 1.5
#: What a name gains over a run of leftover words: as much as two words nearer the question's.
NAME_BONUS = 2.0
#: What a span gains when it stands where the question's "what X" noun stands: a span that
#: names an X ("the San Andreas Fault" for "which fault") outweighs every other cue.
HEAD_BONUS = 3.0
#: "What X" / "which kind of X": X is the noun that says what the answer is.
_HEAD = re.compile(
    r"\b(?:what|which)\s+(?:(?:type|kind|sort|form|part)s?\s+of\s+)?(\w+)", re.IGNORECASE
)
#: What the doer of the question's own verb gains ("appointed by ... Vladimir Putin"): more
#: than any distance within a clause, as the grammar says who it is.
AGENT_BONUS = 3.0
#: What a span gains when its clause holds the whole question (in proportion to the share):
#: as much as two words nearer the question's.
CLAUSE_WEIGHT = 2.0
#: Short answers longer than this are not short: the sentence is shown instead.
MAX_WORDS = 12
#: "how much", "how long"... want the unit too ("4.2 million kroner", "40 minutes").
_WITH_UNIT = re.compile(r"\bhow (much|long|far|old|big|large|high|tall|wide|deep|fast)\b", re.I)

#: "How many X" counts the X the question names.
_COUNT = re.compile(r"\bhow many\b", re.IGNORECASE)


_QUOTED = re.compile(r"[\"“]([^\"“”]{3,120}?)[,.]?[\"”]")
_ASKS_YEAR = re.compile(r"\byears?\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(?:1[0-9]{3}|20[0-9]{2})")


#: A word and a word derived from it by a short suffix ("Russia" and "Russian", "America" and
#: "Americans") share this many letters at least: below it, unrelated words share prefixes
#: too ("plan" and "planet" would, at four).
DERIVED_STEM = 5
#: The longest suffix that derives one word from another ("-n", "-an", "-ese", "-ish").
DERIVED_SUFFIX = 3
#: A question that offers alternatives ("Russia or the US?") is answered with its own words.
_ALTERNATIVES = re.compile(r"\bor\b", re.IGNORECASE)


def from_question(term: str, question_terms: set[str]) -> bool:
    """Whether ``term`` (a stemmed word) is one of ``question_terms`` or derived from one by a
    short suffix: the stemmer keeps "russian" and "russia" apart, yet "Russia" says nothing
    that "Russian rocket engines" had not said."""
    if term in question_terms:
        return True
    for other in question_terms:
        short, long = sorted((term, other), key=len)
        if (
            len(short) >= DERIVED_STEM
            and len(long) - len(short) <= DERIVED_SUFFIX
            and long.startswith(short)
        ):
            return True
    return False


def restates(answer: str, question: str) -> bool:
    """Whether every content word of ``answer`` is one of the question's words (or derived
    from one): such an answer repeats the question instead of answering it. A question that
    offers alternatives is answered by one of them, so it never counts."""
    said = terms(answer)
    if not said or _ALTERNATIVES.search(question):
        return False
    asked = set(terms(question))
    return all(from_question(term, asked) for term in said)


def _words(text: str) -> list[tuple[int, int, str]]:
    return [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]


def _stem(word: str) -> str | None:
    found = terms(word)
    return found[0] if found else None


def short_answer(
    sentence: str,
    question_terms: set[str],
    kind: Kind,
    question: str,
    weights: Mapping[str, float] | None = None,
) -> Span | None:
    """The span of ``sentence`` that answers, or ``None`` when no short one does.
    ``weights`` (term -> idf) say how much each of the question's terms tells."""
    words = _words(sentence)
    if not words:
        return None
    stems = [_stem(w) for _, _, w in words]
    in_question = [stem in question_terms for stem in stems]
    restated = [stem is not None and from_question(stem, question_terms) for stem in stems]
    weights = weights or dict.fromkeys(question_terms, 1.0)
    total = sum(weights.values()) or 1.0
    anchors = [i for i, hit in enumerate(in_question) if hit]
    # How far apart two words are is counted in content words: "the port of Los Angeles" is
    # as near "port" as "Los Angeles port" ("of the", "in a" set nothing apart). A new
    # clause (", and", "; but") counts as a word: the answer sits in the clause that restates
    # the question. A bare comma or a bracket does not: it often opens an apposition, which
    # names what stands before it ("his predecessor, Dmitry Rogozin", "Station (ROSS)").
    content_before = [0]
    breaks_before = [0]
    for n, (start, _, word) in enumerate(words):
        gap = sentence[words[n - 1][1] : start] if n else ""
        content_before.append(content_before[-1] + (word.lower() not in _EDGE))
        new_clause = _CLAUSE.search(gap) and word.lower() in _CONJUNCTIONS
        breaks_before.append(breaks_before[-1] + bool(new_clause))

    def apart(i: int, j: int) -> int:
        lo, hi = min(i, j), max(i, j)
        if hi == lo:
            return 0
        words_between = content_before[hi] - content_before[lo + 1]
        return 1 + words_between + breaks_before[hi + 1] - breaks_before[lo + 1]

    bonus: dict[Span, float] = {}
    head_match = _HEAD.search(question)
    head = _stem(head_match.group(1)) if head_match else None
    if kind is Kind.OTHER:
        # "What"/"which" say nothing of the answer's form: the candidates are the runs of
        # words the question does not use, one clause at most, and the quotations.
        found = _other_candidates(sentence, words, in_question)
        for m in _QUOTED.finditer(sentence):
            bonus[(m.start(1), m.end(1))] = QUOTE_BONUS
        # A name is a unit a reader takes as an answer ("Melbourne Cricket Ground") and the
        # commonest form of answer to "what"/"which"; a run of leftover words is a guess.
        for span in names(sentence):
            bonus.setdefault(span, NAME_BONUS)
        found = list(dict.fromkeys([*found, *bonus]))
    else:
        trimmed = (_trim(sentence, sp) for sp in spans(sentence, kind))
        found = [sp for sp in trimmed if sp is not None]
        if kind is Kind.NUMBER and _WITH_UNIT.search(question):
            found = [_with_unit(sentence, sp) for sp in found]
        if kind is Kind.DATE and _ASKS_YEAR.search(question):
            found = [sp for sp in found if _YEAR.search(sentence[sp[0] : sp[1]])]
        if kind is Kind.PERSON:
            found = [
                sp
                for sp in found
                if not ADJECTIVE.match(sentence, sp[0]) or GROUP.fullmatch(sentence, *sp)
            ]
            # "Who appointed him?": the name after "appointed by" did it.
            for span in agents(sentence, question_terms):
                bonus[span] = AGENT_BONUS
    best: tuple[float, Span] | None = None
    for span in found:
        inside = [i for i, (s, e, _) in enumerate(words) if s >= span[0] and e <= span[1]]
        content = [
            i
            for i in inside
            if words[i][2].lower() not in stop_words() and words[i][2].lower() not in _EDGE
        ]
        if not content or all(restated[i] for i in content):
            continue  # the question's own words are not its answer
        if len(inside) > MAX_WORDS:
            continue
        outside = [j for j in anchors if j not in inside]
        distance = min((min(apart(i, j) for i in inside) for j in outside), default=len(words))
        # Near the question's words first; among equals, the shorter (less to read) wins.
        score = -float(distance) - 0.05 * len(inside) + bonus.get(span, 0.0)
        if kind is Kind.OTHER:
            # A phrase with content says more than one stray word ("contrast", "believes").
            score += 0.5 * min(len(content), 3)
            # English puts the new after the given: "named ROSS", "called the Island Spirit"
            # (a question's word right before it, but for function words).
            score += 0.5 * any(j < inside[0] and apart(j, inside[0]) == 1 for j in anchors)
            # English names an X right before the noun ("the San Andreas Fault", "major
            # business districts") or right after it ("the port of Los Angeles").
            if head is not None and any(
                0 <= j < len(words) and _stem(words[j][2]) == head
                for j in (inside[0] - 1, inside[-1], inside[-1] + 1)
            ):
                score += HEAD_BONUS
        if kind is Kind.NUMBER and _COUNT.search(question):
            # "How many European countries": the count stands right before what it counts
            # ("11 European countries"), which the question names.
            score += 0.5 * (inside[-1] + 1 < len(words) and in_question[inside[-1] + 1])
        if kind is Kind.PERSON and len(content) >= 2:
            # A person is named by first and last name; a lone capitalised word is as often
            # an organisation or a place ("Roscosmos", "Moscow").
            score += 2.0
        if kind is Kind.REASON or bonus.get(span) in (QUOTE_BONUS, AGENT_BONUS):
            # The connective (the quotation marks, the "by" of a passive) already delimit
            # it: distance matters little.
            score = -0.1 * distance + bonus.get(span, 0.0)
        if kind is Kind.OTHER:
            # The answer sits in the clause that restates the question: the share of the
            # question (by idf) that the span's own clause holds.
            score += CLAUSE_WEIGHT * _clause_share(sentence, words, stems, span, weights, total)
        if best is None or score > best[0]:
            best = (score, span)
    return best[1] if best else None


#: Kinds whose answer a sentence states in a form of its own, which no reading of the
#: question's words is needed to find: a date, a number, an amount of money.
_SELF_EVIDENT = (Kind.DATE, Kind.NUMBER, Kind.MONEY)


def only_span(sentence: str, kind: Kind, question: str = "") -> Span | None:
    """The one span of ``kind`` in ``sentence``, for a question whose words cannot be matched
    to the sentence's (one in another language): a sentence chosen for a "when" question that
    states one date answers with it; with several, which one is meant is read from the words
    around them, which such a question does not share, so there is none.

    For "who", the one person the sentence names in full (first and last name: a lone
    capitalised word is as often a place or an agency), leaving out anyone the question names
    itself: names are written alike in every language ("Borisovs" is Borisov)."""
    if kind is Kind.PERSON:
        asked = set(terms(question))
        found = {
            sp
            for sp in spans(sentence, kind)
            if len(_words(sentence[sp[0] : sp[1]])) >= 2
            and not ADJECTIVE.match(sentence, sp[0])  # a group ("American businesses") too
            and not any(from_question(t, asked) for t in terms(sentence[sp[0] : sp[1]]))
        }
        return found.pop() if len(found) == 1 else None
    if kind not in _SELF_EVIDENT:
        return None
    found = {t for t in (_trim(sentence, sp) for sp in spans(sentence, kind)) if t is not None}
    return found.pop() if len(found) == 1 else None


def _clause_share(
    sentence: str,
    words: list[tuple[int, int, str]],
    stems: list[str | None],
    span: Span,
    weights: Mapping[str, float],
    total: float,
) -> float:
    """The idf-weighted share of the question's terms in the clause around ``span``."""
    start = max((m.end() for m in _OUTER.finditer(sentence, 0, span[0])), default=0)
    after = _OUTER.search(sentence, span[1])
    end = after.start() if after else len(sentence)
    found = {stems[i] for i, (s, e, _) in enumerate(words) if s >= start and e <= end}
    return sum(w for t, w in weights.items() if t in found) / total


def _trim(text: str, span: Span) -> Span | None:
    """``span`` without edge words and punctuation ("in the 1990s," -> "1990s")."""
    s, e = span
    inner = [(a, b, w) for a, b, w in _words(text) if a >= s and b <= e]
    while inner and inner[0][2].lower() in _EDGE:
        inner = inner[1:]
    while inner and inner[-1][2].lower() in _EDGE:
        inner = inner[:-1]
    if not inner:
        return None
    s, e = inner[0][0], inner[-1][1]
    while e > s and text[e - 1] in ".,;:":
        e -= 1
    if e < span[1] and text[e] == "%":
        e += 1  # "90%": the sign is part of the number, not punctuation
    return (s, e) if e > s else None


def _with_unit(text: str, span: Span) -> Span:
    """``span`` with the word after it when that word is its unit ("40" + "minutes")."""
    m = re.match(r"\s+([A-Za-z]+)", text[span[1] :])
    if m and m.group(1).lower() not in _EDGE and m.group(1).lower() not in stop_words():
        return span[0], span[1] + m.end()
    return span


#: A past tense or participle ("used", "elected", "based"): the verb that starts a clause's
#: predicate, not its answer. Lower case only (a name is a name); "-eed" words are mostly
#: nouns ("speed", "seed") and "hundred" is a numeral.
_PAST = re.compile(r"(?!hundred)[a-z]{2,}(?<!e)ed")


def _verb(words: list[tuple[int, int, str]], i: int) -> bool:
    """Whether ``words[i]`` is a past tense or participle used as a verb: followed by a
    function word ("installed an engine", "based on") or following its subject ("the farms
    cultivated beet"), not after an article or "is" as an adjective ("is smoked salmon")."""
    if not _PAST.fullmatch(words[i][2]):
        return False
    after = words[i + 1][2].lower() if i + 1 < len(words) else None
    before = words[i - 1][2].lower() if i else None
    return after is None or after in _EDGE or (before is not None and before not in _EDGE)


def _other_candidates(
    sentence: str, words: list[tuple[int, int, str]], in_question: list[bool]
) -> list[Span]:
    """Runs of words the question does not use, each within one clause of the sentence."""
    out: list[Span] = []
    run: list[int] = []

    def close() -> None:
        # A noun phrase does not start with the verb of its clause: "used the big O notation"
        # answers with "big O notation".
        while run and (words[run[0]][2].lower() in _EDGE or _verb(words, run[0])):
            run.pop(0)
        if run:
            trimmed = _trim(sentence, (words[run[0]][0], words[run[-1]][1]))
            if trimmed:
                out.append(trimmed)
        run.clear()

    for i, (s, _e, _w) in enumerate(words):
        gap = sentence[words[i - 1][1] : s] if i else ""
        if in_question[i] or _BREAK.search(gap):
            close()
        if not in_question[i]:
            run.append(i)
    close()
    return out
