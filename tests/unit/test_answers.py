"""The offline answerer on questions written from the seed articles, and its abstentions."""

from __future__ import annotations

import re

import pytest

from qabot.errors import InputError
from tests.paths import ISS_DOC, ROSCOSMOS_DOC

BOTH = (ISS_DOC, ROSCOSMOS_DOC)

# (question, every alternative group that must appear in the answer, acceptable sources)
SEED_QUESTIONS = [
    ("When does Russia plan to leave the ISS?", ["2028"], BOTH),
    ("Who is the newly appointed head of the Russian space agency?", ["Borisov"], BOTH),
    ("What is the name of Russia's planned space station?", ["ROSS|Russian Orbital"], BOTH),
    ("Who is the spokesperson of the US State Department?", ["Nick Price|Price"], (ISS_DOC,)),
    ("Since when has the ISS been in orbit around Earth?", ["1998"], (ISS_DOC,)),
    ("How many space agencies are involved in the ISS?", ["five"], (ISS_DOC,)),
    ("Who is the NASA Administrator?", ["Bill Nelson"], (ROSCOSMOS_DOC,)),
    ("Who was Borisov's predecessor as chairman of Roscosmos?", ["Rogozin"], (ROSCOSMOS_DOC,)),
    ("Which rockets are no longer launched from French Guiana?", ["Soyuz"], (ROSCOSMOS_DOC,)),
    (
        "How did Kathy Lueders describe the relationship with Roscosmos?",
        ["business as usual"],
        BOTH,
    ),
    (
        "Until what year do NASA and the partners want to extend the ISS?",
        ["2030|six more years"],
        (ISS_DOC,),
    ),
    ("Who is the flight director of the Russian segment of the ISS?", ["Solovyov"], BOTH),
    (
        "What did Rogozin threaten to do unless sanctions were lifted?",
        ["pull Russia"],
        (ROSCOSMOS_DOC,),
    ),
    (
        "Which countries are partners in the space station besides the US and Russia?",
        ["Japan", "Canada"],
        (ISS_DOC,),
    ),
]

UNRELATED = [
    "What is the capital of France?",
    "How do I bake sourdough bread?",
    "Who won the 2018 football World Cup?",
    "What is the boiling point of mercury?",
    # Close in topic (space stations), but about things the articles never name:
    "What does the article about the Artemis program say about the Lunar Gateway?",
    "When will the Tiangong station be finished?",
    "Who is the CEO of SpaceX?",
]


def contains(text: str, alternatives: str) -> bool:
    return any(alt.lower() in text.lower() for alt in alternatives.split("|"))


@pytest.mark.parametrize(
    "question,expect,sources", SEED_QUESTIONS, ids=[q for q, *_ in SEED_QUESTIONS]
)
def test_seed_questions_are_answered_with_the_right_sources(
    seeds_pipeline, question, expect, sources
):
    answer = seeds_pipeline.ask(question)
    assert not answer.abstained, answer.text
    # What the user is shown: the (short) answer and, below it, the cited sentences.
    shown = "\n".join([answer.text, *(c.excerpt for c in answer.citations)])
    for group in expect:
        assert contains(shown, group), shown
    assert answer.citations
    assert answer.citations[0].source.endswith(sources), answer.citations[0].source
    for n, c in enumerate(answer.citations, 1):
        assert c.n == n and f"[{n}]" in answer.text


@pytest.mark.parametrize("question", UNRELATED)
def test_unrelated_questions_are_refused(seeds_pipeline, question):
    answer = seeds_pipeline.ask(question)
    assert answer.abstained, answer.text
    assert answer.text == "I couldn't find that in the documents."
    assert answer.citations == []


def test_citations_are_verbatim_in_the_source_files(seeds_pipeline):
    answer = seeds_pipeline.ask("When does Russia plan to leave the ISS?")
    for c in answer.citations:
        with open(c.source, encoding="utf-8") as f:
            assert f.read()[c.start : c.end] == c.excerpt


def test_non_english_question_is_answered_from_english_documents(seeds_pipeline):
    answer = seeds_pipeline.ask("¿Hasta qué año planea Rusia quedarse en la Estación Espacial?")
    assert not answer.abstained and "2028" in answer.text


def test_non_english_unrelated_question_is_refused(seeds_pipeline):
    assert seeds_pipeline.ask("Quelle est la meilleure recette de crêpes ?").abstained


def test_huge_question_is_cut_and_answered_or_refused(seeds_pipeline):
    question = "When does Russia plan to leave the ISS? " + "blah " * 20_000
    assert len(question) > 100_000
    answer = seeds_pipeline.ask(question)
    assert answer.abstained or "2028" in answer.text
    assert answer.question == question


@pytest.mark.parametrize("question", ["", "   ", "\n\t"])
def test_empty_question_is_an_input_error(seeds_pipeline, question):
    with pytest.raises(InputError, match="empty"):
        seeds_pipeline.ask(question)


def test_follow_up_uses_history(seeds_pipeline):
    answer = seeds_pipeline.ask(
        "And who is its flight director?",
        history=["What is the Russian segment of the International Space Station?"],
    )
    assert not answer.abstained and "Solovyov" in answer.text


def test_json_shape(seeds_pipeline):
    data = seeds_pipeline.ask("Who is the NASA Administrator?").to_dict()
    assert set(data) >= {
        "question",
        "answer",
        "abstained",
        "citations",
        "retrieved",
        "backend",
        "timings_ms",
    }
    assert data["backend"] == "offline"
    assert set(data["citations"][0]) == {"n", "source", "start", "end", "excerpt"}
    assert all(set(r) == {"source", "start", "end", "score"} for r in data["retrieved"])
    assert re.search(r"\[1\]", data["answer"])


def test_query_embedding_reads_one_model_window():
    from retrieval.embeddings import QUERY_WINDOW_TOKENS, get_embedder

    embedder = get_embedder()
    long_question = "Где находится станция и когда Россия её покинет? " * 80
    cut = embedder._one_window(long_question)
    assert long_question.startswith(cut) and len(cut) < len(long_question)
    assert embedder._model.token_count(cut, is_query=True) <= QUERY_WINDOW_TOKENS
    assert embedder._one_window("When does Russia leave?") == "When does Russia leave?"


def test_every_marker_has_a_verified_citation_from_its_own_document(seeds_pipeline):
    """A second sentence from the other article keeps its own source (it once got the first
    one's, failed verification and left a marker pointing at nothing)."""
    import re

    answer = seeds_pipeline.ask("When does Russia plan to leave the ISS?")
    assert answer.dropped_citations == 0
    numbers = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
    assert numbers == {c.n for c in answer.citations}
    corpus = seeds_pipeline.corpus()
    for c in answer.citations:
        assert corpus.text(c.source, c.start, c.end) == c.excerpt
