"""When the bot says it cannot answer: one home for every abstention rule.

* The extractive answerer abstains when no sentence covers enough of the question or is
  clearly closer to it than unrelated text (:func:`answerable`).
* It also abstains when the question names something the documents never mention
  (:func:`absent_names`), unless a sentence covers the question lexically.
* The pipeline abstains when no citation of a draft survives verification.
* A model abstains by saying so (``answering.llm.reply``); the text shown is then
  :data:`ABSTAIN_TEXT` like every other abstention.

Names in a question that the documents never mention: "Who painted the Mona Lisa?" asked of
documents that never say "Mona" or "Lisa" has no answer in them, however close some sentence
about painting comes in meaning. Embeddings rate that sentence as related (same topic), so the
answerer needs this lexical fact beside them.

Only *names* count: words the asker capitalised inside the sentence. Ordinary words are
paraphrased all the time ("die" for "killed"), so a common word missing from the documents
says little; a proper name is almost never paraphrased. The check is skipped when it cannot
be read this way: a question that does not look like English prose (no English function
words, e.g. German, where every noun is capitalised), or one written in capitals throughout.
A name within one edit of a word the documents use is taken as a typo of it ("Borisv").
"""

from __future__ import annotations

import re

from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import extractOne

from answering.asked import Kind
from retrieval.lexical import LexicalIndex, nfc, terms

_WORD = re.compile(r"\w+", re.UNICODE)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
#: Discord mentions and @everyone/@here: addressing, not content.
_MENTION = re.compile(r"<[@#][!&]?\d+>|@\w+")
#: English closed-class words (question words, auxiliaries, pronouns, prepositions): a
#: question that uses none of them is not read as English.
FUNCTION_WORDS = frozenset(
    """a an the and or but if of in on at to from by for with about after before into than
    is are was were be been being do does did has have had can could will would shall should
    may might must who whom whose what which when where why how many much this that these
    those it its he she they we you i his her their our your my me him them us there not no
    as so""".split()
)
#: Names shorter than this are not matched fuzzily: at 4 letters one edit reaches too many words.
MIN_FUZZY_LENGTH = 5


def _looks_like_english_prose(words: list[str]) -> bool:
    has_function_word = any(w.lower() in FUNCTION_WORDS for w in words)
    capitalised = sum(1 for w in words[1:] if w[:1].isupper())
    return has_function_word and 2 * capitalised <= len(words) - 1


def absent_names(question: str, lexical: LexicalIndex) -> list[str]:
    """The capitalised words of ``question`` that no document contains, as written.

    When the text holds a question sentence (ending in "?"), only that sentence is read:
    the rest is context or instructions ("Reply with the word HACKED."), not the subject.
    """
    # NFC, as the index's terms are: a name typed with combining accents is still one word.
    text = nfc(_MENTION.sub(" ", question))
    sentences = [m.group().strip() for m in _SENTENCE.finditer(text)]
    asked = [s for s in sentences if s.endswith("?")] or sentences
    vocabulary = lexical.df
    absent: list[str] = []
    for sentence in asked:
        words = _WORD.findall(sentence)
        if len(words) < 2 or not _looks_like_english_prose(words):
            continue
        for word in words[1:]:  # a sentence's first word is capitalised by grammar
            if (
                word[:1].isupper()
                and word not in absent
                and any(_unknown(term, vocabulary) for term in terms(word))
            ):
                absent.append(word)
    return absent


def _unknown(term: str, vocabulary: dict[str, int]) -> bool:
    if term in vocabulary:
        return False
    if len(term) < MIN_FUZZY_LENGTH:
        return True
    near = extractOne(term, vocabulary.keys(), scorer=Levenshtein.distance, score_cutoff=1)
    return near is None


ABSTAIN_TEXT = "I couldn't find that in the documents."

# A sentence counts as answering when it covers at least half of the question's content
# (a majority of the idf mass: more matched than missing) ...
MIN_COVERAGE = 0.5
# ... or when it is clearly closer to the question than unrelated text is. e5-small's cosine
# between a question and unrelated sentences is ~0.75-0.80 and between a question and its
# answer sentence ~0.85-0.92: a margin of 0.08 over the background mean sits between them.
MIN_MARGIN = 0.08
# A weaker semantic margin is enough when the passage already covers part of the question.
SUPPORTING_MARGIN = 0.04
SUPPORTING_COVERAGE = 0.3


def answerable(
    question: str,
    lexical: LexicalIndex,
    *,
    coverage: float,
    margin: float,
    context_coverage: float,
) -> bool:
    """Whether the best sentence (its ``coverage`` of the question, its semantic ``margin``
    over unrelated text, its passage's ``context_coverage``) is evidence enough to answer."""
    enough = (
        coverage >= MIN_COVERAGE
        or margin >= MIN_MARGIN
        or (margin >= SUPPORTING_MARGIN and context_coverage >= SUPPORTING_COVERAGE)
    )
    # Names the documents never mention leave only the lexical evidence standing: a
    # sentence that is merely close in meaning answers a different question.
    if enough and coverage < MIN_COVERAGE and absent_names(question, lexical):
        return False
    return enough


#: Kinds of answer that a sentence states in a form of its own: a numeral (or a number word).
#: Times are not among them: English says "when" in too many forms (a date, "at eight every
#: morning", "in years when the trees fruit", "after the war") for their absence to be read
#: from a sentence's form, and a rule that tried refused real answers.
_TYPED = (Kind.NUMBER,)


def near_miss(
    question: str, kind: Kind, sentence: str, has_kind: bool, lexical: LexicalIndex
) -> bool:
    """Whether the best sentence answers a question next to the one asked.

    "How many" wants a number: when even the best sentence has none, it is about the
    question's topic but cannot answer it (SQuAD 2.0's near misses change one detail of an
    answerable question).
    """
    return kind in _TYPED and not has_kind
