"""The one interface every answering backend implements, and what passes through it.

An :class:`Answerer` gets an :class:`AnswerRequest` (the question, what retrieval found, the
corpus to read it from) and proposes a :class:`Draft`: text with ``[n]`` markers and the
citations behind them. The pipeline verifies every draft against the stored documents; a
draft is never shown as it came. The extractive answerer (``answering.extractive``) and the
model answerer (``answering.llm.answerer``) both implement it, and both are registered as
backends (``answering.backends``).
"""

from __future__ import annotations

from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar, runtime_checkable

from qabot.types import Citation, Hit, Turn

if TYPE_CHECKING:
    import numpy as np

    from retrieval.corpus import Corpus
    from retrieval.search import Retrieval

T = TypeVar("T")


class SentenceVectors(Protocol):
    """Where stored sentence vectors come from (the store)."""

    def sentence_vectors(self, ids: Sequence[str]) -> np.ndarray: ...


@dataclass(slots=True)
class AnswerRequest:
    """Everything an answerer may use to answer one question.

    ``question`` is the question to answer (a follow-up already rewritten to stand alone, when
    a model did that); ``history`` holds the conversation's earlier turns, oldest first.
    """

    question: str
    retrieval: Retrieval
    corpus: Corpus
    vectors: SentenceVectors | None = None
    history: Sequence[Turn] = ()

    @property
    def hits(self) -> list[Hit]:
        return self.retrieval.hits

    def lookup(self, source: str, start: int, end: int) -> str | None:
        """The stored text of ``source`` in ``[start, end)``: what citations are checked against."""
        return self.corpus.text(source, start, end)


@dataclass(slots=True)
class Draft:
    """An answer as an answerer proposes it, before the pipeline's check.

    ``dropped`` counts citations the answerer itself had to discard (a quote not found).
    """

    text: str
    citations: list[Citation] = field(default_factory=list)
    abstained: bool = False
    dropped: int = 0


class Unavailable(Exception):
    """The answerer could not give a usable reply; ``str()`` says why, in a few words."""


class Streaming(Generic[T]):
    """A reply being written: iterate it for text deltas, then ask for the :meth:`result`.

    As in simonw/llm's ``Response``: ``for text in stream: ...`` shows the text as it comes;
    ``stream.result()`` returns the final value (reading the rest of the stream first if it
    was not read to its end). The deltas are provisional; the result is what counts.
    """

    def __init__(self, parts: Generator[str, None, T]) -> None:
        self._parts = parts
        self._done = False
        self._result: T | None = None

    def __iter__(self) -> Iterator[str]:
        if self._done:
            return
        self._result = yield from self._parts
        self._done = True

    def result(self) -> T:
        for _ in self:
            pass
        assert self._done
        return self._result  # type: ignore[return-value]

    @classmethod
    def of(cls, value: T, *deltas: str) -> Streaming[T]:
        """A stream that is already written: ``deltas``, then ``value``."""

        def parts() -> Generator[str, None, T]:
            yield from deltas
            return value

        return cls(parts())


@runtime_checkable
class Answerer(Protocol):
    """An answering backend. ``streams``: whether :meth:`stream` yields text as it is written."""

    name: str
    streams: bool

    def answer(self, request: AnswerRequest) -> Draft:
        """The draft answer; raises :class:`Unavailable` when no usable reply came."""
        ...

    def stream(self, request: AnswerRequest) -> Streaming[Draft]:
        """:meth:`answer` as it is written (an answerer that cannot stream yields it whole)."""
        ...

    def standalone(self, question: str, history: Sequence[Turn]) -> str | None:
        """``question`` rewritten to stand alone without ``history``, or ``None``."""
        ...
