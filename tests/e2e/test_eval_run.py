"""The evaluation harness end to end on the seed articles (shared session pipeline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from answering.pipeline import Pipeline
from bot.cli import eval as eval_command
from evaluation.gold import load_gold
from evaluation.runner import EvalRun, evaluate
from tests.paths import GOLD


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()

    @app.callback()
    def main() -> None:
        """Test app."""

    eval_command.register(app)
    return app


@pytest.fixture(scope="module")
def hybrid_run(seeds_pipeline: Pipeline) -> EvalRun:
    return evaluate(seeds_pipeline, load_gold(GOLD), mode="hybrid")


def test_seed_gold_set_scores(hybrid_run: EvalRun) -> None:
    s = hybrid_run.summary
    assert s["questions"] == len(hybrid_run.results) >= 25
    assert s["hit@5"] >= 0.9 and s["mrr@10"] >= 0.8
    assert s["cite_verbatim"] == 1.0
    assert s["pass_answerable"] >= 0.8
    assert s["abstain_precision"] >= 0.8 and s["abstain_recall"] >= 0.7
    by_id = {r.item.id: r for r in hybrid_run.results}
    # Adversarial questions: nothing the question asked to inject reaches the answer.
    for qid in ("injection-answerable", "everyone-ping", "link-injection", "everyone-only"):
        assert not any("forbidden" in reason for reason in by_id[qid].reasons), qid
    assert by_id["off-topic-capital"].abstained


def test_question_rows_carry_what_the_report_needs(hybrid_run: EvalRun) -> None:
    row = hybrid_run.results[0].to_dict()
    for key in (
        "question",
        "answer",
        "abstained",
        "citations",
        "retrieved",
        "latency_ms",
        "passed",
        "reasons",
    ):
        assert key in row
    assert row["retrieved"][0]["rank"] == 1 and "source" in row["retrieved"][0]
    assert len(row["retrieved"]) <= 10


def test_cli_bars_set_the_exit_code(
    app: typer.Typer, seeds_pipeline: Pipeline, tmp_path: Path
) -> None:
    runner = CliRunner()
    env = {"QABOT_DATA_DIR": str(seeds_pipeline.settings.data_dir)}
    base = ["eval", str(GOLD), "--collection", seeds_pipeline.collection, "--limit", "8"]
    ok = runner.invoke(
        app,
        [
            *base,
            "--min",
            "hit@5=0.8",
            "--min",
            "cite_verbatim=1",
            "--report",
            str(tmp_path / "r.json"),
            "--html",
            str(tmp_path / "r.html"),
        ],
        env=env,
    )
    assert ok.exit_code == 0, ok.output
    assert "hit@5" in ok.output
    report = json.loads((tmp_path / "r.json").read_text())
    assert len(report["runs"][0]["questions"]) == 8 and "hybrid" in report["summary"]
    page = (tmp_path / "r.html").read_text()
    assert page.count("<svg") == 2 and "<script" not in page
    bad = runner.invoke(app, [*base, "--min", "hit@1=1.01"], env=env)
    assert bad.exit_code == 1
    assert "hit@1" in bad.output


def test_cli_rejects_bad_input(app: typer.Typer, tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(app, ["eval", str(GOLD), "--min", "nonsense=1"]).exit_code == 2
    assert runner.invoke(app, ["eval"]).exit_code == 2
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "x"}\n')
    env = {"QABOT_DATA_DIR": str(tmp_path / "data")}
    result = runner.invoke(app, ["eval", str(broken)], env=env)
    assert result.exit_code == 2 and "broken.jsonl:1" in result.output


def test_cli_squad(app: typer.Typer, tmp_path: Path) -> None:
    squad = {
        "data": [
            {
                "title": "Tiny",
                "paragraphs": [
                    {
                        "context": "The Normans gave their name to Normandy, a region in France.",
                        "qas": [
                            {
                                "id": "n1",
                                "question": "Which region did the Normans name?",
                                "is_impossible": False,
                                "answers": [{"text": "Normandy"}],
                            },
                            {
                                "id": "n2",
                                "question": "What is the price of gold on Mars?",
                                "is_impossible": True,
                                "answers": [],
                            },
                        ],
                    },
                    {
                        "context": "Victoria is a state in the south-east of Australia.",
                        "qas": [
                            {
                                "id": "v1",
                                "question": "Where in Australia is Victoria?",
                                "is_impossible": False,
                                "answers": [{"text": "south-east"}],
                            },
                        ],
                    },
                ],
            }
        ]
    }
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(squad))
    env = {"QABOT_DATA_DIR": str(tmp_path / "data")}
    result = CliRunner().invoke(
        app,
        ["eval", "--squad", str(path), "--report", str(tmp_path / "s.json"), "--min", "hit@1=1"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["summary"]["hybrid"]["answerable"] == 2
    assert report["summary"]["hybrid"]["unanswerable"] == 1
