"""Evaluation reports: a JSON file and one self-contained HTML page (inline SVG, no scripts)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from html import escape
from pathlib import Path

from evaluation import svg
from evaluation.metrics import LATENCY, METRICS, SIZE
from evaluation.runner import EvalRun

LABELS = {
    "hit@1": "retrieval hit@1",
    "hit@5": "retrieval hit@5",
    "mrr@10": "retrieval MRR@10",
    "pass_rate": "pass rate (all)",
    "pass_answerable": "pass rate, answerable",
    "pass_unanswerable": "pass rate, unanswerable",
    "abstain_precision": "abstention precision",
    "abstain_recall": "abstention recall",
    "cite_verbatim": "citations verbatim",
    "cite_gold": "answers citing a gold source",
    "correct_cited": "answerable: passed and cites gold",
    "model_answered": "answers written by the model (verified)",
    "answer_contains": "answer text alone holds the gold",
    "token_f1": "answer token F1 (SQuAD)",
    "answer_words": "answer length (words, mean)",
    "latency_p50_ms": "latency p50 (ms)",
    "latency_p95_ms": "latency p95 (ms)",
    "latency_max_ms": "latency max (ms)",
}
CHART_METRICS = (
    "hit@1",
    "hit@5",
    "mrr@10",
    "pass_answerable",
    "pass_unanswerable",
    "abstain_precision",
    "abstain_recall",
    "cite_gold",
    "token_f1",
)


def fmt(value: object, name: str = "") -> str:
    """A metric as shown in tables: shares with 3 decimals, milliseconds with 1, None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.1f}" if name.endswith("_ms") or name in SIZE else f"{value:.3f}"
    return str(value)


def report_dict(runs: Sequence[EvalRun], meta: dict) -> dict:
    return {
        "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        **meta,
        "summary": {run.name: run.summary for run in runs},
        "runs": [run.to_dict() for run in runs],
    }


def write_json(runs: Sequence[EvalRun], meta: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report_dict(runs, meta), indent=2, ensure_ascii=False) + "\n")


_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px}
th{background:#f4f4f4;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}
.fail{color:#b00}.pass{color:#070}details{margin:1em 0}small{color:#666}
"""


def _summary_table(runs: Sequence[EvalRun]) -> str:
    head = "".join(f"<th>{escape(r.name)}</th>" for r in runs)
    rows = [f"<tr><th>metric</th>{head}</tr>"]
    for name in ("questions", "answerable", "unanswerable", *METRICS, *SIZE, *LATENCY):
        cells = "".join(f'<td class="num">{fmt(r.summary.get(name), name)}</td>' for r in runs)
        rows.append(f"<tr><td>{escape(LABELS.get(name, name))}</td>{cells}</tr>")
    return "<table>" + "".join(rows) + "</table>"


def _question_rows(run: EvalRun, only_failures: bool) -> str:
    rows = [
        "<tr><th>id</th><th>question</th><th>answer</th><th>first gold rank</th>"
        "<th>ms</th><th>result</th></tr>"
    ]
    for r in run.results:
        if only_failures and r.passed is not False:
            continue
        verdict = (
            "n/a"
            if r.passed is None
            else '<span class="pass">pass</span>'
            if r.passed
            else '<span class="fail">' + escape("; ".join(r.reasons)) + "</span>"
        )
        cited = ", ".join(sorted({Path(c["source"]).name for c in r.citations}))
        rows.append(
            f"<tr><td>{escape(r.item.id)}</td><td>{escape(r.item.question)}</td>"
            f"<td>{escape(r.answer)}<br><small>{escape(cited)}</small></td>"
            f'<td class="num">{r.first_hit or "-"}</td>'
            f'<td class="num">{r.latency_ms:.0f}</td><td>{verdict}</td></tr>'
        )
    return "<table>" + "".join(rows) + "</table>"


def render_html(runs: Sequence[EvalRun], meta: dict) -> str:
    """The whole report page."""
    title = f"qabot evaluation: {meta.get('gold', '')}"
    info = ", ".join(f"{escape(str(k))}: {escape(str(v))}" for k, v in meta.items())
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1><p><small>{info}</small></p>",
        "<h2>Summary</h2>",
        _summary_table(runs),
        svg.bar_chart(
            [LABELS[m].replace("retrieval ", "") for m in CHART_METRICS],
            {r.name: [r.summary.get(m) for m in CHART_METRICS] for r in runs},
            "Metrics per retriever",
            width=980,
        ),
        svg.histogram(
            {r.name: [q.latency_ms for q in r.results] for r in runs},
            "Latency per question",
            x_label="milliseconds",
        ),
    ]
    for run in runs:
        failures = sum(1 for r in run.results if r.passed is False)
        parts.append(f"<h2>{escape(run.name)}: {failures} failing question(s)</h2>")
        if failures:
            parts.append(_question_rows(run, only_failures=True))
        parts.append(f"<details><summary>All {len(run.results)} questions</summary>")
        parts.append(_question_rows(run, only_failures=False) + "</details>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_html(runs: Sequence[EvalRun], meta: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(runs, meta), encoding="utf-8")
