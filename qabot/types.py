"""The plain data types that carry a question through the pipeline.

Their ``to_dict`` form is the ``--json`` output, the eval report's rows and what the
Discord renderer reads.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True, slots=True)
class Document:
    """A loaded document: ``source`` is the path as given by the user, ``text`` its text."""

    source: str
    text: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """A span of a document: ``document.text[start:end] == text``."""

    id: str
    source: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Hit:
    """A retrieved chunk with its fused score and 1-based rank."""

    chunk: Chunk
    score: float
    rank: int

    def to_dict(self) -> dict:
        c = self.chunk
        return {"source": c.source, "start": c.start, "end": c.end, "score": round(self.score, 4)}


@dataclass(frozen=True, slots=True)
class Citation:
    """A verified excerpt: ``document.text[start:end] == excerpt``."""

    n: int
    source: str
    start: int
    end: int
    excerpt: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier exchange of a conversation: the question and, when known, its answer."""

    question: str
    answer: str = ""


@dataclass(slots=True)
class Answer:
    """What every front end shows: the text with [n] markers and its verified citations."""

    question: str
    text: str
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    backend: str = "offline"
    retrieved: list[Hit] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    dropped_citations: int = 0
    notice: str | None = None

    def to_dict(self) -> dict:
        return {
            "question": self.question,
            "answer": self.text,
            "abstained": self.abstained,
            "citations": [c.to_dict() for c in self.citations],
            "retrieved": [h.to_dict() for h in self.retrieved],
            "backend": self.backend,
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "dropped_citations": self.dropped_citations,
            "notice": self.notice,
        }


@dataclass(slots=True)
class IngestReport:
    """What an ingest changed, per document, plus the files it had to skip."""

    added: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    chunks_written: int = 0

    def to_dict(self) -> dict:
        return asdict(self)
