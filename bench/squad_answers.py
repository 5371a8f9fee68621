"""Benchmark 2: offline answers on the SQuAD slice, asked exactly as the bot asks them.

Answerable questions: the share whose answer contains a gold answer text and cites the
paragraph that holds it, SQuAD's token F1 of the answer text and its length. Unanswerable ones
(SQuAD's ``is_impossible``): abstention precision and recall. Every figure is also given for
two halves of the articles (alternate articles), so that a rule that helps only on one half
shows. Writes bench/out/squad_answers.{md,json}; ``--limit N`` for a quick run.
"""

from __future__ import annotations

import argparse
import json
import time

from _common import SQUAD, md_table, rss_mb, save, squad_pipeline

from evaluation.metrics import summarise
from evaluation.report import write_html
from evaluation.runner import evaluate

ROWS = (
    ("answerable: contains a gold answer and cites its paragraph", "correct_cited"),
    ("answerable: contains a gold answer", "pass_answerable"),
    ("answerable: answered (not abstained) and cites its paragraph", "cite_gold"),
    ("unanswerable: abstained", "pass_unanswerable"),
    ("abstention precision", "abstain_precision"),
    ("abstention recall", "abstain_recall"),
    ("answerable: the answer text alone contains a gold answer", "answer_contains"),
    ("answerable: token F1 of the answer text (abstention = 0)", "token_f1"),
    ("mean words an answer (markers left out)", "answer_words"),
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
    # Half A: the 1st, 3rd, 5th... article; half B: the others (an article is one topic, so a
    # rule tuned to one topic's wording shows as a gain on one half only).
    article = _articles()
    titles = list(dict.fromkeys(article[i.id] for i in items))
    halves = [
        summarise([r for r in run.results if titles.index(article[r.item.id]) % 2 == h])
        for h in (0, 1)
    ]
    rows = []
    for label, key in ROWS:
        if key:
            rows.append([label, s[key], *(h[key] for h in halves)])
    rows.append(
        [
            "retrieval hit@1 / hit@5 (chunk-level)",
            *(f"{_f(x['hit@1'], 3)} / {_f(x['hit@5'], 3)}" for x in (s, *halves)),
        ]
    )
    rows.append(
        [
            "answer latency p50 / p95 ms",
            *(f"{_f(x['latency_p50_ms'], 0)} / {_f(x['latency_p95_ms'], 0)}" for x in (s, *halves)),
        ]
    )
    table = md_table(
        [
            f"SQuAD slice, offline answers ({s['answerable']} answerable, "
            f"{s['unanswerable']} unanswerable, {args.retriever})",
            "all",
            f"half A ({halves[0]['questions']} q.)",
            f"half B ({halves[1]['questions']} q.)",
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


def _f(value: float | None, digits: int) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _articles() -> dict[str, str]:
    """Question id -> the title of its article (unanswerable questions have no gold source)."""
    data = json.loads(SQUAD.read_text(encoding="utf-8"))
    return {
        qa["id"]: article["title"]
        for article in data["data"]
        for paragraph in article["paragraphs"]
        for qa in paragraph["qas"]
    }


if __name__ == "__main__":
    main()
