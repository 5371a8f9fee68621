"""The model answerer: prompt a chat backend, call it with retries, check its reply.

Failures that retrying cannot fix, or that outlast the retries, raise
:class:`~answering.answerer.Unavailable`; the pipeline then shows the extractive answer with
a notice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence

from answering.answerer import AnswerRequest, Draft, Streaming, Unavailable
from answering.llm.chat import ChatBackend, Message
from answering.llm.prompt import PackedChunk, answer_messages, condense_messages
from answering.llm.reply import Checked, check, parse, visible
from answering.llm.retry import CutOffReply, MalformedReply, RetryPolicy, status_of
from qabot.settings import Settings
from qabot.types import Hit, Turn

_HEADINGS = ("quotes:", "quote:", "sources:", "citations:")

#: Transport errors that mean the connection broke after the reply had started (httpx,
#: httpx2, httpcore, http.client): the server died or hung up mid-way.
_LOST = frozenset({"remoteprotocolerror", "readerror", "incompleteread", "remotedisconnected"})


def describe(error: BaseException) -> str:
    """A short reason for a failed call: ``HTTP 429``, ``timed out``, ``connection lost``...

    The whole ``__cause__``/``__context__`` chain is searched, most telling reason first: SDKs
    wrap both "cannot connect" and "connection dropped mid-reply" in one connection error.
    """
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    names = [type(e).__name__.lower() for e in chain]
    for e in chain:
        status = status_of(e)
        if status is not None and status != 200:
            return f"HTTP {status}"
    if any("timeout" in name for name in names):
        return "timed out"
    if any(name in _LOST for name in names):
        return "connection lost"
    if any("connect" in name for name in names):
        return "connection failed"
    if any(isinstance(e, CutOffReply) for e in chain):
        return "reply cut off"
    if any(isinstance(e, MalformedReply) for e in chain):
        return "malformed reply"
    return type(error).__name__


def _draft(checked: Checked) -> Draft:
    return Draft(checked.text, checked.citations, checked.abstained, checked.dropped)


class ModelAnswerer:
    """Answers from retrieved hits with a chat backend; every citation is checked."""

    def __init__(
        self,
        backend: ChatBackend,
        settings: Settings,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend = backend
        self.name = backend.name
        self.streams = bool(backend.streams)
        self.settings = settings
        self.policy = RetryPolicy(
            settings.qabot_llm_retries, settings.qabot_llm_backoff, sleep=sleep
        )

    def messages(
        self, question: str, hits: Sequence[Hit]
    ) -> tuple[list[Message], list[PackedChunk]]:
        return answer_messages(
            question,
            hits,
            context_tokens=self.settings.qabot_llm_context_tokens,
            answer_tokens=self.settings.qabot_llm_answer_tokens,
        )

    def _complete(self, messages: Sequence[Message]) -> str:
        try:
            return self.policy.call(
                lambda: self.backend.complete(messages), self.backend.is_transient
            )
        except Exception as error:
            raise Unavailable(describe(error)) from error

    def standalone(self, question: str, history: Sequence[Turn]) -> str | None:
        """``question`` rewritten to stand alone, or ``None`` if the model failed."""
        if not history or not self.settings.qabot_llm_condense:
            return None
        try:
            text = self._complete(condense_messages(question, [t.question for t in history]))
        except Unavailable:
            return None
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        return lines[0].strip('"“”') if lines else None

    def answer(self, request: AnswerRequest) -> Draft:
        if not request.hits:
            raise Unavailable("nothing retrieved")
        messages, packed = self.messages(request.question, request.hits)
        return _draft(check(parse(self._complete(messages)), packed, request.lookup))

    def stream(self, request: AnswerRequest) -> Streaming[Draft]:
        """Text deltas of the answer as it is written, then the checked :class:`Draft`.

        The deltas are the raw answer (before its ``Quotes:`` section), shown provisionally:
        markers are renumbered and unsupported claims removed in the final result.
        """
        return Streaming(self._stream(request))

    def _stream(self, request: AnswerRequest) -> Generator[str, None, Draft]:
        if not request.hits:
            raise Unavailable("nothing retrieved")
        messages, packed = self.messages(request.question, request.hits)
        full = ""
        shown = 0
        try:
            for delta in self._stream_with_retry(messages):
                full += delta
                text = _showable(full)
                if len(text) > shown:
                    yield text[shown:]
                    shown = len(text)
        except Exception as error:
            raise Unavailable(describe(error)) from error
        return _draft(check(parse(full), packed, request.lookup))

    def _stream_with_retry(self, messages: Sequence[Message]) -> Iterator[str]:
        """The backend's deltas; a failure before the first delta is retried with backoff."""
        if not self.backend.streams:
            yield self.policy.call(
                lambda: self.backend.complete(messages), self.backend.is_transient
            )
            return
        delays = self.policy.delays()
        while True:
            started = False
            try:
                for delta in self.backend.stream(messages):
                    started = True
                    yield delta
                if not started:
                    raise MalformedReply("the model returned an empty reply")
                return
            except Exception as error:
                delay = next(delays, None)
                if started or delay is None or not self.backend.is_transient(error):
                    raise
                self.policy.sleep(delay)


def _showable(text: str) -> str:
    """The answer part of a partial reply, holding back a line that may become ``Quotes:``."""
    body = visible(text)
    head, _, last = body.rpartition("\n")
    probe = last.strip().lstrip("#*_ ").lower()
    if probe and any(h.startswith(probe) for h in _HEADINGS):
        return head
    return body
