"""Whether a question is written in English, read from its closed-class words.

The answerer's lexical rules read English: its wh-words say what is asked, its capitalised
words are names, its short answers are cut by English grammar. The embedding model
(multilingual-e5) reads about a hundred languages, so a question in German or French finds
its passage all the same, but it must not be read with English grammar: German capitalises
every noun, and "will", "die" and "was" are German words too.

Closed-class words (articles, pronouns, auxiliaries, prepositions, question words) are the
commonest words of any sentence and differ from language to language, so counting them tells
a question's language even in five words, with no model to load. A question with more of
another language's closed-class words than English ones is not English; the other languages
listed are those whose question words ``answering.asked`` reads.
"""

from __future__ import annotations

import re
from functools import lru_cache

_WORD = re.compile(r"\w+", re.UNICODE)

#: English closed-class words (question words, auxiliaries, pronouns, prepositions).
ENGLISH = frozenset(
    """a an the and or but if of in on at to from by for with about after before into than
    is are was were be been being do does did has have had can could will would shall should
    may might must who whom whose what which when where why how many much this that these
    those it its he she they we you i his her their our your my me him them us there not no
    as so""".split()
)

#: The closed-class words of other languages, with those that are English words too ("in",
#: "will", "was", "a"): they count for both, and a tie stays English.
_OTHER = {
    "de": """was in will der die das den dem des ein eine einen einem einer eines und oder aber
        wenn dass von zu zum zur mit für auf aus bei nach seit über unter um vom im
        am ins ist sind waren wird werden wurde wurden hat haben hatte hatten kann
        können konnte wollen soll sollte muss wer wen wem wessen wann wo woher wohin
        warum wieso weshalb wie welche welcher welches welchen nicht kein keine es
        er sie wir ihr ich sein seine ihre sich auch noch schon""",
    "fr": """a on le la les l un une des du de d et ou mais si que qu au aux en dans par pour avec
        sans sur sous est sont était étaient été ont avait sera seront qui quoi quand où
        pourquoi comment combien quel quelle quels quelles lequel laquelle ne pas n il elle
        ils elles nous vous je ce cette ces sa ses leur leurs se s y""",
    "es": """a no el la los las un una unos unas lo y o pero si que de del al en por para con sin
        sobre es son era eran fue fueron ha han había será serán quién quiénes qué cuándo
        dónde cómo cuánto cuánta cuántos cuántas cuál cuáles se su sus este esta estos estas
        le les""",
}
OTHER = {language: frozenset(words.split()) for language, words in _OTHER.items()}
#: Every closed-class word known: none of them says what a question is about.
ALL_FUNCTION_WORDS = ENGLISH.union(*OTHER.values())


def words_of(text: str) -> list[str]:
    """The words of ``text``."""
    return _WORD.findall(text)


#: A quotation: someone else's words ("Who sang 'Je ne regrette rien'?"), not the language
#: the question is asked in. A single quote opens only after a non-letter ("NASA's" has none).
_QUOTED = re.compile(
    r"\"[^\"]*\"|“[^”]*”|„[^“”]*[“”]|«[^»]*»|(?<!\w)'[^']+'(?!\w)|(?<!\w)‘[^’]+’(?!\w)"
)


@lru_cache(maxsize=256)
def is_english(text: str) -> bool:
    """Whether ``text`` (a question) reads as English: it uses English closed-class words, and
    no other language's more often. Quotations are left out of the count.

    Remembered: one question is read by the kind, the terms, the names and the composition
    of its answer, each asking this of the same text."""
    words = words_of(_QUOTED.sub(" ", text)) or words_of(text)
    lowered = [w.lower() for w in words]
    english = sum(w in ENGLISH for w in lowered)
    other = max(sum(w in closed for w in lowered) for closed in OTHER.values())
    return english > 0 and english >= other


def function_words(question: str) -> frozenset[str]:
    """The closed-class words to leave out of ``question``'s content: the English ones, and
    every known language's when it is not English ("son" is a French word, and an English
    one that a question may be about)."""
    return ENGLISH if is_english(question) else ALL_FUNCTION_WORDS
