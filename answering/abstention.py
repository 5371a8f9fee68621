"""When the bot says it cannot answer: one home for every abstention rule.

* The extractive answerer abstains when no sentence covers enough of the question or is
  clearly closer to it than unrelated text (:func:`answerable`).
* It also abstains when the question names something the documents never mention
  (:func:`absent_names`), unless a sentence covers the question lexically.
* And when the best sentence answers a question next to the one asked (:func:`near_miss`):
  the question gives a number the sentence lacks, denies what the sentence states, or names
  something rare that the sentence's passage never mentions.
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
be read this way: a question that is not English (``answering.languages``: German capitalises
every noun, and any language names things its own way, "Russland"), or one written in
capitals throughout.
A name within one edit of a word the documents use is taken as a typo of it ("Borisv").
"""

from __future__ import annotations

import re
import unicodedata

from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import extractOne

from answering.asked import Kind
from answering.languages import ENGLISH, is_english, words_of
from retrieval.lexical import LexicalIndex, nfc, terms

_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")
#: Discord mentions and @everyone/@here: addressing, not content.
_MENTION = re.compile(r"<[@#][!&]?\d+>|@\w+")
#: Names shorter than this are not matched fuzzily: at 4 letters one edit reaches too many words.
MIN_FUZZY_LENGTH = 5


def _looks_like_english_prose(sentence: str, words: list[str]) -> bool:
    capitalised = sum(1 for w in words[1:] if w[:1].isupper())
    return is_english(sentence) and 2 * capitalised <= len(words) - 1


def question_names(question: str) -> list[str]:
    """The words ``question`` capitalises inside its sentences: the names it uses.

    When the text holds a question sentence (ending in "?"), only that sentence is read:
    the rest is context or instructions ("Reply with the word HACKED."), not the subject.
    """
    # NFC, as the index's terms are: a name typed with combining accents is still one word.
    text = nfc(_MENTION.sub(" ", question))
    sentences = [m.group().strip() for m in _SENTENCE.finditer(text)]
    asked = [s for s in sentences if s.endswith("?")] or sentences
    found: list[str] = []
    for sentence in asked:
        words = words_of(sentence)
        if len(words) < 2 or not _looks_like_english_prose(sentence, words):
            continue
        for word in words[1:]:  # a sentence's first word is capitalised by grammar
            if word[:1].isupper() and word.lower() not in ENGLISH and word not in found:
                found.append(word)
    return found


def absent_names(question: str, lexical: LexicalIndex) -> list[str]:
    """The capitalised words of ``question`` that no document contains, as written."""
    vocabulary = lexical.df
    return [
        word
        for word in question_names(question)
        if any(_unknown(term, vocabulary) for term in terms(word))
    ]


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


#: Kinds of answer that a sentence states in a form of its own: a numeral (or a number word),
#: an amount of money (a numeral with its currency).
#: Times are not among them: English says "when" in too many forms (a date, "at eight every
#: morning", "in years when the trees fruit", "after the war") for their absence to be read
#: from a sentence's form, and a rule that tried refused real answers.
_TYPED = (Kind.NUMBER, Kind.MONEY)
#: A number the question gives ("17,786,914", "35° 48′"): numbers are never paraphrased.
_NUMERAL = re.compile(r"\d(?:[\d,.]*\d)?")
#: Words that deny what they go with. "Whether or not" and "may or may not" deny nothing.
_NEGATION = re.compile(
    r"\b(?:not|never|no|cannot|without|neither|nor|none|except|exception)\b|n['’]t\b",
    re.IGNORECASE,
)
_EITHER_WAY = re.compile(r"\bor (?:\w+ )?not\b", re.IGNORECASE)
#: A negation inside a reason ("because it was not part of ...") or an infinitive ("the only
#: district to not have ...") describes what is asked about; it does not deny what is asked.
_SUBORDINATE = re.compile(
    r"\b(?:because|since|although|though|as)\b[^,?]*|\bto (?:not|never)\b", re.IGNORECASE
)
#: A name that at most this share of the passages use is a detail of the passages that do (a
#: name used everywhere is the collection's topic, "Victoria" in an article about Victoria,
#: which a passage leaves implicit).
RARE_NAME_SHARE = 0.05
#: A name this close to a word of the passage (edits) is taken as a misspelling of it.
NAME_TYPO_EDITS = 2


def near_miss(
    question: str,
    kind: Kind,
    sentence: str,
    has_kind: bool,
    lexical: LexicalIndex,
    passage: str = "",
) -> bool:
    """Whether the best sentence (with its ``passage``) answers a question next to the one
    asked. SQuAD 2.0's near misses change one detail of an answerable question; a detail that
    cannot be paraphrased (a number, a negation, a rare name) shows the change:

    * "how many" wants a number: the best sentence has none;
    * the question gives a number the sentence does not (:func:`missing_numbers`);
    * the question denies what the sentence states (:func:`denies`);
    * the question names something rare that the passage never mentions
      (:func:`missing_names`).
    """
    return (
        (kind in _TYPED and not has_kind)
        or bool(missing_numbers(question, sentence))
        or denies(question, sentence)
        or bool(missing_names(question, f"{passage} {sentence}", lexical))
    )


def missing_numbers(question: str, sentence: str) -> list[str]:
    """The numbers of ``question`` that ``sentence`` does not contain (digits compared, so
    "1,000" is "1000")."""
    said = sentence.replace(",", "")
    return [n for n in _NUMERAL.findall(question) if n.replace(",", "") not in said]


def denies(question: str, sentence: str) -> bool:
    """Whether ``question`` is negated ("What is not strictly contained in EXPTIME?") and
    ``sentence`` is not: the sentence says the opposite of what is asked."""
    asked = _SUBORDINATE.sub(" ", _EITHER_WAY.sub(" ", question))
    return bool(_NEGATION.search(asked)) and not _NEGATION.search(sentence)


def missing_names(question: str, passage: str, lexical: LexicalIndex) -> list[str]:
    """The rare names of ``question`` that ``passage`` does not mention.

    A name counts as mentioned when the passage has a word within :data:`NAME_TYPO_EDITS`
    of it (a misspelt "Primier League"), spells it without its accents ("Hervé" for
    "Herve"), joins it to another word ("SkyDrive" for "Sky Drive"), or mentions another
    word of the same name (a person is cited by surname: "Turing" for "Alan Turing").
    """
    said = {_fold(t) for t in terms(passage)}
    joined = _fold(passage.lower())
    missing: list[str] = []
    for name in _name_runs(question_names(question), question):
        if any(_mentioned(word, said, joined) for word in name):
            continue
        if any(_rare(word, lexical) for word in name):
            missing.extend(name)
    return missing


def _mentioned(word: str, said: set[str], joined: str) -> bool:
    """Whether the passage (``said``: its folded terms; ``joined``: its folded lower-case
    text) mentions ``word`` in one of the forms :func:`missing_names` allows."""
    if _fold(word.lower()) in joined:
        return True
    for term in terms(word):
        if _fold(term) in said:
            return True
        if len(word) >= MIN_FUZZY_LENGTH and extractOne(
            _fold(term), said, scorer=Levenshtein.distance, score_cutoff=NAME_TYPO_EDITS
        ):
            return True
    return False


def _rare(word: str, lexical: LexicalIndex) -> bool:
    """Whether at most :data:`RARE_NAME_SHARE` of the passages use ``word``."""
    return any(lexical.df.get(t, 0) <= RARE_NAME_SHARE * lexical.size for t in terms(word))


def _name_runs(names: list[str], question: str) -> list[list[str]]:
    """``names`` grouped into the runs the question writes next to each other."""
    runs: list[list[str]] = []
    position = 0
    previous_end = -1
    for word in names:
        found = re.search(rf"\b{re.escape(word)}\b", question[position:])
        if found is None:
            runs.append([word])
            continue
        start, end = position + found.start(), position + found.end()
        if runs and re.fullmatch(r"\s+", question[previous_end:start] or "x"):
            runs[-1].append(word)
        else:
            runs.append([word])
        position = previous_end = end
    return runs


def _fold(text: str) -> str:
    """``text`` without accents: people type "Herve" for "Hervé"."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
