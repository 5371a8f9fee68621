"""Questions in German, French and Spanish over English documents.

The embedding model is multilingual, so such a question finds its passage; the answerer must
then read it by its own question words, not by English grammar ("will", "die" and "was" are
German words, and German capitalises every noun).
"""

from __future__ import annotations

import re

import pytest

from answering.asked import Kind, asked_kind
from answering.languages import function_words, is_english
from answering.short import only_span


@pytest.mark.parametrize(
    ("question", "english"),
    [
        ("When will Russia leave the ISS?", True),
        ("Die Hard was released in which year?", True),  # German-looking words, English
        ("What did Le Monde say about de Gaulle?", True),
        ("sinse wich yeer has the ISS bin in orbit arround earth", True),
        # A quotation is someone else's words, not the question's language.
        ("Who sang 'Je ne regrette rien'?", True),
        ("Who wrote “Les Misérables”?", True),
        ("Wann will Russland die ISS verlassen?", False),
        ("Was ist die ISS?", False),
        ("Quand la Russie quittera-t-elle l'ISS ?", False),
        ("¿Quién dirige la agencia espacial rusa?", False),
    ],
)
def test_a_question_s_language_is_read_from_its_closed_class_words(
    question: str, english: bool
) -> None:
    assert is_english(question) is english


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("Wann will Russland die ISS verlassen?", Kind.DATE),
        ("Wer leitet Roskosmos?", Kind.PERSON),
        ("Wie viele Raumfahrtagenturen sind an der ISS beteiligt?", Kind.NUMBER),
        ("Was kostet die Station?", Kind.MONEY),
        ("Warum verlässt Russland die ISS?", Kind.REASON),
        ("Quand la Russie quittera-t-elle l'ISS ?", Kind.DATE),
        ("Qui dirige Roscosmos ?", Kind.PERSON),
        ("Où se trouve la station ?", Kind.PLACE),
        ("Combien d'agences spatiales participent à l'ISS ?", Kind.NUMBER),
        ("¿Cuándo dejará Rusia la ISS?", Kind.DATE),
        ("¿Por qué Rusia deja la ISS?", Kind.REASON),
        ("¿Dónde está la estación?", Kind.PLACE),
        # "was" is German for "what": it asks for no person, as English "who" would.
        ("Was hat Borisov gesagt?", Kind.OTHER),
    ],
)
def test_the_asked_kind_is_read_from_the_question_s_own_language(question: str, kind: Kind) -> None:
    assert asked_kind(question) is kind


def test_another_language_s_closed_class_words_say_nothing_of_what_is_asked() -> None:
    assert {"wann", "die", "will"} <= function_words("Wann will Russland die ISS verlassen?")
    # In an English question "son" and "die" are words it may be about.
    assert not {"son", "die"} & function_words("Whose son did the king say would die?")


def cited(answer) -> str:
    return " ".join(c.excerpt for c in answer.citations)


@pytest.mark.parametrize(
    "question",
    [
        "Wann will Russland die ISS verlassen?",
        "Quand la Russie quittera-t-elle l'ISS ?",
        "¿Cuándo dejará Rusia la ISS?",
    ],
)
def test_a_when_question_in_another_language_is_answered_with_a_dated_sentence(
    seeds_pipeline, question: str
) -> None:
    answer = seeds_pipeline.ask(question)
    assert not answer.abstained, question
    assert "2024" in cited(answer) or "2028" in cited(answer), cited(answer)
    # The date alone, then the markers of the sentence and of the one it leans on, if any.
    assert re.fullmatch(r"(2024|2028)( \[\d\])+", answer.text), answer.text


def test_a_how_many_question_in_german_is_answered_with_the_count(seeds_pipeline) -> None:
    answer = seeds_pipeline.ask("Wie viele Raumfahrtagenturen sind an der ISS beteiligt?")
    assert "five space agencies" in cited(answer), cited(answer)
    # The sentence states one number: it is the short answer, though no word of the
    # question stands next to it.
    assert answer.text == "five [1]", answer.text


def test_with_several_dates_no_short_answer_is_cut_for_a_question_sharing_no_word() -> None:
    sentence = "Russia will leave after 2024 and build its own station by 2028."
    assert only_span(sentence, Kind.DATE) is None
    one = "Russia will leave after 2024."
    assert only_span(one, Kind.DATE) == (one.index("2024"), one.index("2024") + 4)
    # A lone capitalised word is as often a place or an agency as a person.
    assert only_span("Borisov spoke in Moscow.", Kind.PERSON) is None


def test_who_in_another_language_is_answered_by_the_one_person_the_sentence_names() -> None:
    sentence = "Kathy Lueders, head of NASA's program, spoke after Yuri Borisov's announcement."
    # Two people: which one is meant is read from words the question does not share.
    assert only_span(sentence, Kind.PERSON, "Wer leitet das Programm der NASA?") is None
    # The question names one of them itself: the other is the answer.
    span = only_span(sentence, Kind.PERSON, "Wer sprach nach Borisovs Ankündigung?")
    assert span is not None and sentence[span[0] : span[1]] == "Kathy Lueders"


@pytest.mark.parametrize(
    ("question", "name"),
    [
        ("Wer leitet das Programm für bemannte Raumfahrt der NASA?", "Kathy Lueders"),
        ("Qui dirige le programme de vols habités de la NASA ?", "Kathy Lueders"),
        ("¿Quién es el nuevo director general de la agencia espacial rusa?", "Yuri Borisov"),
    ],
)
def test_who_in_another_language_leads_with_the_name(seeds_pipeline, question, name) -> None:
    answer = seeds_pipeline.ask(question)
    assert answer.text.startswith(f"{name} ["), answer.text
