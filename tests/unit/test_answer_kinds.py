"""What a question asks for, the short answer inside a sentence, and the eval's token F1."""

from __future__ import annotations

import pytest

from answering.asked import Kind, asked_kind, has_kind, spans
from answering.extractive import Candidate, question_terms
from answering.short import restates, short_answer
from evaluation.metrics import squad_tokens, token_f1, without_markers
from retrieval.sentences import leans_on_previous


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Why did Russia decide to leave the ISS?", Kind.REASON),
        ("Who said it was business as usual?", Kind.PERSON),
        ("When should ROSS be operational?", Kind.DATE),
        ("In what year was the lighthouse automated?", Kind.DATE),
        ("How many cars will it carry?", Kind.NUMBER),
        ("How much did the repairs cost?", Kind.MONEY),
        ("What was the price of a ticket?", Kind.MONEY),
        ("How much water does the town use?", Kind.NUMBER),
        # The copula and article may stand between the wh-word and the kind's noun.
        ("What was the percentage of voters in favour?", Kind.NUMBER),
        ("What was the year the pier opened?", Kind.DATE),
        # ... but not before a noun that also names other things.
        ("What is the time complexity of the search?", Kind.OTHER),
        ("What is the man in the painting holding?", Kind.OTHER),
        ("Where is the Island Spirit being built?", Kind.PLACE),
        ("What station does Russia plan to build?", Kind.OTHER),
        # A leading "when" is a conjunction when the question comes after the comma.
        ("When time is short, this represents what kind of bound?", Kind.OTHER),
    ],
)
def test_the_asked_kind_is_read_from_the_wh_words(question: str, kind: Kind) -> None:
    assert asked_kind(question) is kind


def test_spans_of_each_kind_are_found_by_their_form() -> None:
    text = (
        "It was designed by the engineer Margit Holm and first lit on 14 October 1891. "
        "The repairs cost 4.2 million kroner because storms had cracked the stairwell."
    )
    got = {kind: [text[s:e] for s, e in spans(text, kind)] for kind in Kind}
    assert "14 October 1891" in got[Kind.DATE]
    assert "4.2 million" in got[Kind.NUMBER] and "14" not in got[Kind.NUMBER]
    assert "Margit Holm" in got[Kind.PERSON]
    assert got[Kind.REASON] == ["because storms had cracked the stairwell"]
    assert not has_kind("The statement was vague about it.", Kind.REASON)
    assert got[Kind.MONEY] == ["4.2 million kroner"]


@pytest.mark.parametrize(
    ("text", "amounts"),
    [
        (
            "The catch brought in A$46 million, and lobster $13.7 million.",
            ["A$46 million", "$13.7 million"],
        ),
        ("Tickets cost €20 or 150 kronor; a pass costs US$ 5.", ["€20", "150 kronor", "US$ 5"]),
        # A count is no price: a cost is said in money.
        ("It will carry 60 cars and 300 passengers.", []),
    ],
)
def test_an_amount_of_money_is_a_number_with_its_currency(text: str, amounts: list[str]) -> None:
    assert [text[s:e] for s, e in spans(text, Kind.MONEY)] == amounts


def answer_of(sentence: str, question: str) -> str | None:
    span = short_answer(sentence, question_terms(question), asked_kind(question), question)
    return None if span is None else sentence[span[0] : span[1]]


#: Which span answers: (sentence, question, answer), one rule each.
SPAN_RULES = [
    # "What" says nothing of the answer's form: the name next to the question's words is the
    # short answer, not the whole sentence.
    pytest.param(
        "The largest stadium in Australia is the Melbourne Cricket Ground, which also hosts "
        "the football finals.",
        "What is the largest stadium in Australia?",
        "Melbourne Cricket Ground",
        id="what-name-beside-its-words",
    ),
    # "Yuri Borisov" is nearer the question's words, but "appointed by" says who did it.
    pytest.param(
        "Yuri Borisov was appointed by the country's president Vladimir Putin last month.",
        "Who appointed Borisov?",
        "Vladimir Putin",
        id="who-did-it-after-verb-by",
    ),
    # "Oban" is a name and nearer the island, but its clause says nothing of an export.
    pytest.param(
        "Visitors arrive by ferry from Oban, and the island's main export is smoked salmon.",
        "What is the island's main export?",
        "smoked salmon",
        id="clause-that-restates-the-question",
    ),
    # "Which fault": the name that ends in "Fault", not the nearest new words.
    pytest.param(
        "Many faults are able to produce a magnitude 6.7+ earthquake, such as the San Andreas "
        "Fault, which can produce a magnitude 8.0 event.",
        "Which fault can produce a magnitude 8.0 event?",
        "San Andreas Fault",
        id="which-x-names-an-x",
    ),
    # "cultivated" is the verb that ties the crop to the farms, not part of the crop.
    pytest.param(
        "Most of the valley's farms grew barley, but the eastern farms cultivated sugar beet "
        "for the refinery.",
        "What crop did the eastern farms grow for the refinery?",
        "sugar beet",
        id="what-answer-without-its-clause-verb",
    ),
    # "an" does not set "electric turbine" apart from "installed": it is the object, and nearer
    # the question's words than "wheel powered grinding stones" once articles and prepositions
    # are not counted.
    pytest.param(
        "The old mill's wheel powered grinding stones, and the mill's owners later installed "
        "an electric turbine.",
        "What did the mill's owners install later?",
        "electric turbine",
        id="nearness-in-content-words",
    ),
    # "the red lantern" follows "brewery" with only "the" between: it is what the brewery was
    # called; "stout" follows "brewed", which the question does not ask about.
    pytest.param(
        "Its founders brewed stout beside the canal and called the brewery the red lantern.",
        "What did the founders call the brewery?",
        "red lantern",
        id="new-after-given-across-function-words",
    ),
    # "three" is as near the question's words ("hall for over"), but "14" stands before the
    # "touring companies" the question counts.
    pytest.param(
        "The orchestra has shared its hall for over three decades with a choir and 14 touring "
        "companies.",
        "How many touring companies share the orchestra's hall?",
        "14",
        id="how-many-number-before-what-it-counts",
    ),
]


@pytest.mark.parametrize(("sentence", "question", "expected"), SPAN_RULES)
def test_the_span_follows_its_rule(sentence: str, question: str, expected: str) -> None:
    assert answer_of(sentence, question) == expected


@pytest.mark.parametrize(
    ("sentence", "question", "expected"),
    [
        (
            "It intended to continue participating in the ISS until its own ROSS station was "
            "operational in 2028.",
            "When should ROSS be operational?",
            "2028",
        ),
        (
            "The repairs cost 4.2 million kroner and took three years.",
            "How much did the repairs cost?",
            "4.2 million kroner",
        ),
        (
            "NASA space operations chief Kathy Lueders said that Russian space officials agreed.",
            "Who is NASA's space operations chief?",
            "Kathy Lueders",
        ),
        (
            "Because the replacement ship could carry only half as many cars, islanders had to "
            "book weeks in advance.",
            "Why did islanders have to book weeks in advance?",
            "Because the replacement ship could carry only half as many cars",
        ),
        (
            'She described the relationship between NASA and Roscosmos as "business as usual."',
            "How did Kathy Lueders describe the relationship?",
            "business as usual",
        ),
    ],
)
def test_the_short_answer_is_a_span_of_the_asked_kind(
    sentence: str, question: str, expected: str
) -> None:
    assert answer_of(sentence, question) == expected


def test_the_question_own_words_are_never_the_short_answer() -> None:
    # The only name is the one the question gives: there is no short answer, the sentence shows.
    assert answer_of("Kathy Lueders spoke on Tuesday.", "Who is Kathy Lueders?") is None


def test_a_word_derived_from_the_question_s_is_not_the_short_answer_either() -> None:
    # The stemmer keeps "Russian" and "Russia" apart; the question said it all the same.
    sentence = "Russia stopped selling rocket engines in 2022."
    assert answer_of(sentence, "Who can no longer buy Russian rocket engines?") is None
    sentence = "Americans buy rocket engines from America and from Russia."
    assert answer_of(sentence, "Where do the Americans buy their rocket engines?") == "Russia"


def test_who_is_answered_by_a_group_a_people_s_adjective_names() -> None:
    # "Who" asks for people, and English names a group by its people's adjective before a
    # plural noun; "Russian-built" is an adjective too, not the first name of a person.
    sentence = (
        "Russian rocket engines are no longer sold to American businesses, and the spaceport "
        "no longer launches Russian-built Soyuz rockets."
    )
    assert answer_of(sentence, "Who can no longer buy Russian rocket engines?") == (
        "American businesses"
    )
    assert answer_of("The Russian-built Soyuz flew.", "Who flew?") is None


def test_an_answer_restates_the_question_only_with_its_own_words_or_words_derived_from_them() -> (
    None
):
    question = "Who can no longer buy Russian rocket engines?"
    assert restates("Russia", question)
    assert restates("Russian rocket engines", question)
    assert not restates("American businesses", question)
    assert not restates("2028", question)
    # Alternatives offered by the question are answered with its own words.
    assert not restates("Russia", "Who sells the engines, Russia or the US?")
    # Words that merely share a short prefix are not derived from each other.
    assert not restates("planets", "Which plan was chosen?")


def test_sentences_that_point_back_are_recognised() -> None:
    assert leans_on_previous('She described it as "business as usual."')
    assert leans_on_previous("This came after Yuri Borisov shocked NASA.")
    assert leans_on_previous("However, the move was criticised.")
    assert not leans_on_previous("However, it appears that officials spoke with NASA.")
    assert not leans_on_previous("Kathy Lueders spoke with officials.")
    # A fronted adverbial sets the time or manner; the pronoun after it still points back.
    assert leans_on_previous("Several times, his predecessor threatened to leave.")
    assert leans_on_previous("In 2019, it was closed to visitors.")
    assert not leans_on_previous("Kathy Lueders, head of NASA, said so.")
    assert not leans_on_previous("In the end, however, it appears the deal held.")


def test_token_f1_is_squad_s() -> None:
    assert squad_tokens("The Normans, in France!") == ["normans", "in", "france"]
    assert token_f1("2028", ["2028"]) == 1.0
    assert token_f1("in 2028 [1]", ["2028"]) == 0.5  # the marker is a token: strip it first
    assert token_f1(without_markers("in 2028 [1]"), ["2028", "in 2028"]) == 1.0
    assert token_f1("Paris", ["London"]) == 0.0
    assert without_markers("2028 [1] [2]") == "2028"


def test_a_sentence_with_more_evidence_wins_whatever_its_passage_rank() -> None:
    # The search ranked passages on the same evidence; a lower-ranked passage's sentence that
    # covers more of the question is the better answer.
    def candidate(rank: int, coverage: float) -> Candidate:
        return Candidate("doc.txt", 0, 10, "A sentence.", 0.9, coverage, 0.5, rank)

    assert candidate(3, 0.62).score(0.8) > candidate(1, 0.60).score(0.8)


def test_a_year_followed_by_a_comma_is_a_date_and_a_percentage_keeps_its_sign() -> None:
    text = "In 2010, the state had 489 Catholic schools."
    assert [text[s:e] for s, e in spans(text, Kind.NUMBER)] == ["489"]
    sentence = "Victoria produces 90% of Australia's pears."
    assert answer_of(sentence, "How much of Australia's pears does Victoria produce?") == "90%"
