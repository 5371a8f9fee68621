"""Fast unit tests of the evaluation harness: gold parsing, metrics, SQuAD conversion, SVG."""

from __future__ import annotations

import json

import pytest

from evaluation.gold import GoldItem, load_gold, parse_lines
from evaluation.metrics import (
    QuestionResult,
    first_relevant_rank,
    judge,
    missing_expect,
    summarise,
)
from evaluation.runner import check_bars
from evaluation.squad import convert
from evaluation.svg import bar_chart, histogram, line_chart
from qabot.errors import InputError
from qabot.stats import percentile
from tests.paths import GOLD, SEEDS


def line(**kw: object) -> str:
    base = {"id": "q", "question": "Q?", "expect": ["x"], "sources": ["a.txt"]}
    return json.dumps(base | kw)


def test_seed_gold_set_is_valid_and_covers_the_adversarial_cases() -> None:
    items = load_gold(GOLD)
    assert len(items) >= 25
    assert sum(not i.answerable for i in items) >= 5
    ids = " ".join(i.id for i in items)
    for kind in ("typo", "injection", "everyone", "other-article", "es-", "missing-article"):
        assert kind in ids
    names = {p.name for p in SEEDS.iterdir()}
    assert {s for i in items for s in i.sources} <= names


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "invalid JSON"),
        ('["a list"]', "JSON object"),
        (line(question=""), "question"),
        (line(answerable="yes"), "answerable"),
        (line(expect="x"), "expect"),
        (line(forbid=["("]), "forbid"),
        (line(sources=[]), "source"),
        (line(colour="red"), "unknown field"),
    ],
)
def test_invalid_lines_are_rejected_with_their_line_number(bad: str, message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        parse_lines(["", bad], "g.jsonl")
    assert "g.jsonl:2" in str(err.value)


def test_duplicate_ids_and_empty_sets_are_rejected() -> None:
    with pytest.raises(InputError, match="duplicate"):
        parse_lines([line(), line()])
    with pytest.raises(InputError, match="no questions"):
        parse_lines(["# only a comment", ""])


def test_expect_alternatives_case_and_whitespace() -> None:
    item = GoldItem("q", "Q?", ["ROSS|Russian Orbital", "2028"], ["a.txt"])
    assert missing_expect(item, "The russian  orbital\nstation, by 2028 [1]") == []
    assert missing_expect(item, "ROSS, soon") == ["2028"]


def test_judge_reasons() -> None:
    ans = GoldItem("q", "Q?", ["2028"], ["a.txt"], forbid=[r"@(everyone|here)"])
    assert judge(ans, "until 2028 [1]", abstained=False) == []
    reasons = judge(ans, "@Everyone 2024", abstained=False)
    assert any("missing" in r for r in reasons) and any("forbidden" in r for r in reasons)
    assert "abstained on an answerable question" in judge(ans, "no", abstained=True)
    unans = GoldItem("u", "Q?", answerable=False)
    assert judge(unans, "I couldn't find that.", abstained=True) == []
    assert judge(unans, "Something [1]", abstained=False) == ["answered an unanswerable question"]


def test_first_relevant_rank_matches_file_names() -> None:
    ranked = ["seeds/b.txt", "/tmp/x/seeds/a.txt", "a.txt"]
    assert first_relevant_rank(ranked, ["a.txt"]) == 2
    assert first_relevant_rank(ranked, ["ba.txt"]) is None  # no partial-name match


def _result(item: GoldItem, rank: int | None, abstained: bool, cited: str | None) -> QuestionResult:
    answer = "I couldn't find that." if abstained else "x [1]"
    cits = [{"source": cited, "verbatim": True}] if cited else []
    return QuestionResult(
        item,
        "hybrid",
        answer,
        abstained,
        cits,
        first_hit=rank,
        latency_ms=10.0 * (rank or 1),
        reasons=judge(item, answer, abstained),
    )


def test_summary_metrics() -> None:
    a = GoldItem("a", "Q?", ["x"], ["a.txt"])
    u = GoldItem("u", "Q?", answerable=False)
    results = [
        _result(a, 1, False, "d/a.txt"),
        _result(a, 3, False, "d/b.txt"),
        _result(a, None, True, None),
        _result(u, None, True, None),
        _result(u, None, False, "d/b.txt"),
    ]
    s = summarise(results)
    assert s["hit@1"] == pytest.approx(1 / 3)
    assert s["hit@5"] == pytest.approx(2 / 3)
    assert s["mrr@10"] == pytest.approx((1 + 1 / 3) / 3)
    assert s["pass_answerable"] == pytest.approx(2 / 3)
    assert s["pass_unanswerable"] == pytest.approx(1 / 2)
    assert s["abstain_precision"] == pytest.approx(1 / 2)
    assert s["abstain_recall"] == pytest.approx(1 / 2)
    assert s["cite_gold"] == pytest.approx(1 / 2)
    assert s["correct_cited"] == pytest.approx(1 / 3)
    assert s["cite_verbatim"] == 1.0
    assert s["latency_max_ms"] == 30.0
    assert s["model_answered"] is None  # every answer came from the offline backend


def test_model_answered_counts_answers_the_model_wrote() -> None:
    a = GoldItem("a", "Q?", ["x"], ["a.txt"])
    wrote, fell_back = _result(a, 1, False, "d/a.txt"), _result(a, 1, False, "d/a.txt")
    wrote.backend, wrote.dropped_citations = "openai:m", 1
    fell_back.backend, fell_back.notice = "offline", "The model openai:m was unavailable"
    fell_back.dropped_citations = 2
    s = summarise([wrote, fell_back])
    assert s["model_answered"] == 0.5 and s["dropped_citations"] == 3
    assert wrote.to_dict()["backend"] == "openai:m"


def test_percentile_and_bars() -> None:
    assert percentile([], 50) is None
    assert percentile([1, 2, 3, 4], 50) == 2.5
    assert percentile(list(range(101)), 95) == 95
    summary = {"hit@5": 0.9, "latency_p95_ms": 80.0, "cite_gold": None}
    assert check_bars(summary, {"hit@5": 0.9}, {"latency_p95_ms": 100}) == []
    assert len(check_bars(summary, {"hit@5": 0.95, "cite_gold": 0.5}, {"latency_p95_ms": 50})) == 3


def test_squad_conversion() -> None:
    data = {
        "data": [
            {
                "title": "Sky (United Kingdom)",
                "paragraphs": [
                    {
                        "context": "Sky is a broadcaster.",
                        "qas": [
                            {
                                "id": "1",
                                "question": "What is Sky?",
                                "is_impossible": False,
                                "answers": [
                                    {"text": "a broadcaster"},
                                    {"text": "broadcaster"},
                                    {"text": "A  broadcaster"},
                                ],
                            },
                            {
                                "id": "2",
                                "question": "Who owns Mars?",
                                "is_impossible": True,
                                "answers": [],
                                "plausible_answers": [{"text": "Sky"}],
                            },
                        ],
                    }
                ],
            }
        ]
    }
    documents, items = convert(data)
    assert documents == {"sky-united-kingdom_000.txt": "Sky is a broadcaster."}
    assert items[0].expect == ["a broadcaster|broadcaster"]
    assert items[0].sources == ["sky-united-kingdom_000.txt"] and items[0].answerable
    assert not items[1].answerable and items[1].sources == [] and items[1].expect == []
    with pytest.raises(InputError):
        convert({"data": [{"paragraphs": [{}]}]})


def test_svg_charts_are_well_formed() -> None:
    import xml.etree.ElementTree as ET

    for doc in (
        bar_chart(["hit@1", "hit@5"], {"hybrid": [0.9, 1.0], "dense": [None, 0.5]}, "m <&>"),
        histogram({"hybrid": [1.0, 2.0, 50.0], "dense": []}, "latency"),
        histogram({}, "empty"),
        line_chart([1e3, 1e4, 1e5], {"p95": [1.0, None, 3.0]}, "lat", log_x=True),
    ):
        ET.fromstring(doc)
