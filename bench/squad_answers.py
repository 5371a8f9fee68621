"""Benchmark 2: offline answers on the SQuAD slice, asked exactly as the bot asks them.

Answerable questions: the share whose answer contains a gold answer text and cites the
paragraph that holds it. Unanswerable ones (SQuAD's ``is_impossible``): abstention precision
and recall. Writes bench/out/squad_answers.{md,json}; ``--limit N`` for a quick run.
"""

from __future__ import annotations

import argparse
import json
import time

from _common import md_table, rss_mb, save, squad_pipeline

from evaluation.report import write_html
from evaluation.runner import evaluate

ROWS = (
    ("answerable: contains a gold answer and cites its paragraph", "correct_cited"),
    ("answerable: contains a gold answer", "pass_answerable"),
    ("answerable: answered (not abstained) and cites its paragraph", "cite_gold"),
    ("unanswerable: abstained", "pass_unanswerable"),
    ("abstention precision", "abstain_precision"),
    ("abstention recall", "abstain_recall"),
    ("citations verbatim", "cite_verbatim"),
    ("retrieval hit@1 / hit@5 (chunk-level)", None),
    ("answer latency p50 / p95 ms", None),
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--retriever", default="hybrid")
    args = parser.parse_args()
    pipeline, data = squad_pipeline()
    items = data.items[: args.limit] if args.limit else data.items
    t0 = time.perf_counter()
    run = evaluate(pipeline, items, mode=args.retriever)
    s = run.summary
    print(f"{len(items)} questions in {time.perf_counter() - t0:.0f} s, RSS {rss_mb():.0f} MB")
    rows = []
    for label, key in ROWS:
        if key:
            rows.append([label, s[key]])
    rows.append(["retrieval hit@1 / hit@5 (chunk-level)", f"{s['hit@1']:.3f} / {s['hit@5']:.3f}"])
    rows.append(
        ["answer latency p50 / p95 ms", f"{s['latency_p50_ms']:.0f} / {s['latency_p95_ms']:.0f}"]
    )
    table = md_table(
        [
            f"SQuAD slice, offline answers ({s['answerable']} answerable, "
            f"{s['unanswerable']} unanswerable, {args.retriever})",
            "value",
        ],
        rows,
    )
    print(table)
    save("squad_answers.md", table + "\n")
    save("squad_answers.json", json.dumps(run.to_dict(), indent=1, ensure_ascii=False))
    from _common import OUT

    write_html(
        [run],
        {"gold": "SQuAD slice", "collection": pipeline.collection},
        OUT / "squad_answers.html",
    )


if __name__ == "__main__":
    main()
