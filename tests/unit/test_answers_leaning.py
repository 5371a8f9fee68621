"""A sentence that leans on the one before it answers together with it (issue 12).

The article is written for these tests (nothing of SQuAD or the seeds): its answers sit in a
sentence that says "It ..." after the sentence that carries the question's words.
"""

from __future__ import annotations

import pytest

from answering.pipeline import Pipeline
from qabot.settings import Settings

ARTICLE = """The Harbour of Kelvik

Kelvik is a fishing town on the northern coast, with about four thousand inhabitants.
The Harbour Act of 1902 was passed by the town council after a long debate about the cost of
the breakwater. It was approved by nearly 80% of the voters in a referendum the following
spring. The breakwater was finished in 1911 and has protected the fishing fleet ever since.
The new ferry terminal was designed by the architect Ingrid Dahl. It opened in May 1998 and
serves three crossings a day to the islands. A museum beside the terminal tells the story of
the herring fishery, which employed most of the town until the 1950s.
The Kelvik light is a cast-iron tower, 32 metres tall, painted red and white. It has 112 steps
and a lamp of 3,000 candles.
"""


@pytest.fixture(scope="module")
def kelvik(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    docs = tmp_path_factory.mktemp("docs")
    (docs / "kelvik.txt").write_text(ARTICLE, encoding="utf-8")
    data = tmp_path_factory.mktemp("data")
    pipeline = Pipeline(Settings(qabot_data_dir=data, _env_file=None))
    pipeline.ingest([docs])
    return pipeline


def test_the_answer_in_the_sentence_that_leans_on_the_question_s_sentence(kelvik):
    # "The Harbour Act of 1902 ..." holds the question's words but no percentage; "It was
    # approved by nearly 80% ..." holds the percentage but none of its words.
    answer = kelvik.ask("What was the percentage of voters that approved the Harbour Act of 1902?")
    assert not answer.abstained
    assert answer.text.startswith("80%") or answer.text.startswith("nearly 80%"), answer.text
    excerpts = [c.excerpt for c in answer.citations]
    assert excerpts[0].startswith("The Harbour Act of 1902"), excerpts  # what "It" is
    assert excerpts[1].startswith("It was approved by nearly 80%"), excerpts


def test_of_a_pair_the_short_answer_comes_from_the_sentence_that_answers(kelvik):
    # The question's words are split over the pair: "Kelvik light" and "tall" in the first
    # sentence, "112 steps" in the one that leans on it. Both have a number; the height is in
    # the sentence that is alone the likelier answer, not in the one quoted last.
    answer = kelvik.ask("How tall is the Kelvik light with its 112 steps?")
    assert answer.text.startswith("32 metres"), answer.text
    assert [c.excerpt[:20] for c in answer.citations] == [
        "The Kelvik light is ",
        "It has 112 steps\nand",
    ]


def test_a_number_the_question_gives_may_be_in_the_sentence_leaned_on(kelvik):
    # "1998" is only in "It opened in May 1998 ...", which leans on the sentence that names
    # the architect: the pair answers, and the question's number is not a near miss.
    answer = kelvik.ask("Who designed the ferry terminal that opened in May 1998?")
    assert answer.text.startswith("Ingrid Dahl"), answer.text


def test_a_price_question_is_refused_where_the_text_gives_only_counts(kelvik):
    # The terminal sentence pair has numbers ("three crossings a day"), but no amount of money.
    assert kelvik.ask("How much did the new ferry terminal cost?").abstained
