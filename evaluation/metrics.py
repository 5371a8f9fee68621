"""Per-question checks and the summary metrics of an evaluation run."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from answering.llm.reply import without_markers
from evaluation.gold import GoldItem
from qabot.stats import percentile

#: Metrics where higher is better, in the order the summary table shows them.
METRICS: tuple[str, ...] = (
    "hit@1",
    "hit@5",
    "mrr@10",
    "pass_rate",
    "pass_answerable",
    "pass_unanswerable",
    "abstain_precision",
    "abstain_recall",
    "cite_verbatim",
    "cite_gold",
    "correct_cited",
    "model_answered",
    "answer_contains",
    "token_f1",
)
#: Answer size: mean words of the answer text (neither better nor worse by itself).
SIZE: tuple[str, ...] = ("answer_words",)
#: Latency metrics (milliseconds, lower is better).
LATENCY: tuple[str, ...] = ("latency_p50_ms", "latency_p95_ms", "latency_max_ms")


def normalise(text: str) -> str:
    return " ".join(text.split()).casefold()


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = re.compile(r"[^\w\s]")


def squad_tokens(text: str) -> list[str]:
    """SQuAD's answer normalisation: lower case, no punctuation or articles, split on space."""
    return _ARTICLES.sub(" ", _PUNCTUATION.sub("", text.lower())).split()


def token_f1(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD's token F1 of ``prediction`` against the best-matching of ``golds`` (0 if none)."""
    pred = squad_tokens(prediction)
    best = 0.0
    for gold in golds:
        ref = squad_tokens(gold)
        common = sum((Counter(pred) & Counter(ref)).values())
        if not pred or not ref:
            score = float(pred == ref)
        elif common == 0:
            score = 0.0
        else:
            precision, recall = common / len(pred), common / len(ref)
            score = 2 * precision * recall / (precision + recall)
        best = max(best, score)
    return best


def missing_expect(item: GoldItem, answer: str) -> list[str]:
    """The ``expect`` items none of whose alternatives appear in ``answer``."""
    text = normalise(answer)
    return [
        "|".join(alts)
        for alts in item.alternatives()
        if alts and not any(normalise(a) in text for a in alts)
    ]


def forbid_matches(item: GoldItem, answer: str) -> list[str]:
    """The ``forbid`` patterns that ``answer`` matches (case-insensitive)."""
    return [p for p in item.forbid if re.search(p, answer, re.IGNORECASE)]


def is_gold_source(source: str, gold: Sequence[str]) -> bool:
    """A stored source path matches a gold file name when equal or when it ends with it."""
    return any(source == g or source.endswith("/" + g.lstrip("/")) for g in gold)


def first_relevant_rank(sources: Sequence[str], gold: Sequence[str]) -> int | None:
    """1-based rank of the first source from ``gold`` in a ranked list, or None."""
    for rank, source in enumerate(sources, 1):
        if is_gold_source(source, gold):
            return rank
    return None


def judge(item: GoldItem, answer: str, abstained: bool, excerpts: Sequence[str] = ()) -> list[str]:
    """Why the answer fails its gold item (empty when it passes).

    ``expect`` and ``forbid`` are read in what the user is shown: the answer text and the
    cited excerpts printed with it (a short answer "2028 [1]" shows its sentence below it).
    """
    reasons: list[str] = []
    answer = "\n".join([answer, *excerpts])
    if item.answerable and abstained:
        reasons.append("abstained on an answerable question")
    if not item.answerable and not abstained:
        reasons.append("answered an unanswerable question")
    reasons += [f"missing expected text {e!r}" for e in missing_expect(item, answer)]
    reasons += [f"matches forbidden pattern {p!r}" for p in forbid_matches(item, answer)]
    return reasons


@dataclass(slots=True)
class QuestionResult:
    """Everything measured for one question."""

    item: GoldItem
    mode: str
    answer: str = ""
    abstained: bool = False
    citations: list[dict] = field(default_factory=list)
    retrieved: list[dict] = field(default_factory=list)
    first_hit: int | None = None
    latency_ms: float = 0.0
    timings_ms: dict[str, float] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    answered: bool = True  # False when the run measured retrieval only
    backend: str = ""  # who wrote the answer: "offline", or the model (e.g. "openai:gpt-4o")
    notice: str | None = None  # e.g. the model was unavailable and the offline answer is shown
    dropped_citations: int = 0

    @property
    def golds(self) -> list[str]:
        return [a for alts in self.item.alternatives() for a in alts]

    @property
    def f1(self) -> float | None:
        """Token F1 of the answer text (markers left out) against the gold answers; an
        abstention scores 0. None when there is nothing to score against."""
        if not self.answered or not self.item.answerable or not self.golds:
            return None
        return 0.0 if self.abstained else token_f1(without_markers(self.answer), self.golds)

    @property
    def words(self) -> int | None:
        """Words in the answer text (markers left out); None for an abstention."""
        if not self.answered or self.abstained:
            return None
        return len(without_markers(self.answer).split())

    @property
    def answer_contains(self) -> bool | None:
        """Whether the answer text alone (no excerpt) holds every ``expect`` item."""
        if not self.answered or not self.item.answerable or not self.item.expect:
            return None
        return not self.abstained and not missing_expect(self.item, self.answer)

    @property
    def passed(self) -> bool | None:
        return None if not self.answered else not self.reasons

    @property
    def cites_gold(self) -> bool:
        return any(is_gold_source(c["source"], self.item.sources) for c in self.citations)

    def to_dict(self) -> dict:
        return {
            "id": self.item.id,
            "question": self.item.question,
            "answerable": self.item.answerable,
            "expect": self.item.expect,
            "sources": self.item.sources,
            "mode": self.mode,
            "answer": self.answer,
            "abstained": self.abstained,
            "citations": self.citations,
            "retrieved": self.retrieved,
            "first_hit_rank": self.first_hit,
            "cites_gold_source": self.cites_gold,
            "latency_ms": round(self.latency_ms, 2),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "passed": self.passed,
            "token_f1": None if self.f1 is None else round(self.f1, 4),
            "answer_words": self.words,
            "reasons": self.reasons,
            "backend": self.backend,
            "notice": self.notice,
            "dropped_citations": self.dropped_citations,
        }


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


def summarise(results: Sequence[QuestionResult]) -> dict[str, float | int | None]:
    """The run's metrics; a metric with nothing to measure is None."""
    ranked = [r for r in results if r.item.answerable and r.item.sources]
    ranks = [r.first_hit for r in ranked]
    answered = [r for r in results if r.answered]
    ans = [r for r in answered if r.item.answerable]
    unans = [r for r in answered if not r.item.answerable]
    abstained = [r for r in answered if r.abstained]
    citations = [c for r in answered for c in r.citations]
    replied = [r for r in ans if not r.abstained and r.item.sources]
    latencies = [r.latency_ms for r in results]
    f1s = [r.f1 for r in results if r.f1 is not None]
    words = [r.words for r in results if r.words is not None]
    contains = [r.answer_contains for r in results if r.answer_contains is not None]
    return {
        "questions": len(results),
        "answerable": sum(r.item.answerable for r in results),
        "unanswerable": sum(not r.item.answerable for r in results),
        "hit@1": _share(sum(1 for k in ranks if k == 1), len(ranks)),
        "hit@5": _share(sum(1 for k in ranks if k is not None and k <= 5), len(ranks)),
        "mrr@10": (
            sum(1 / k for k in ranks if k is not None and k <= 10) / len(ranks) if ranks else None
        ),
        "pass_rate": _share(sum(not r.reasons for r in answered), len(answered)),
        "pass_answerable": _share(sum(not r.reasons for r in ans), len(ans)),
        "pass_unanswerable": _share(sum(not r.reasons for r in unans), len(unans)),
        "abstain_precision": _share(sum(not r.item.answerable for r in abstained), len(abstained)),
        "abstain_recall": _share(sum(r.abstained for r in unans), len(unans)),
        "cite_verbatim": _share(sum(bool(c.get("verbatim")) for c in citations), len(citations)),
        "cite_gold": _share(sum(r.cites_gold for r in replied), len(replied)),
        "correct_cited": _share(
            sum(not r.reasons and r.cites_gold for r in ans if r.item.sources), len(ans)
        ),
        "citations": len(citations),
        # With a model backend: the share of answers the model wrote and that survived the
        # citation checks (the rest fell back to the offline answer or an abstention).
        "model_answered": (
            _share(sum(r.backend not in ("", "offline") for r in answered), len(answered))
            if any(r.backend not in ("", "offline") or r.notice for r in answered)
            else None  # the offline backend: no model involved
        ),
        "dropped_citations": sum(r.dropped_citations for r in answered),
        # What the answer text itself gives (the cited excerpts aside): does it hold the gold
        # answer, and SQuAD's token F1 against the gold answers (mean over answerable
        # questions, an abstention counting 0), and how long it is.
        "answer_contains": _share(sum(contains), len(contains)),
        "token_f1": sum(f1s) / len(f1s) if f1s else None,
        "answer_words": sum(words) / len(words) if words else None,
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p95_ms": percentile(latencies, 95),
        "latency_max_ms": max(latencies) if latencies else None,
    }
