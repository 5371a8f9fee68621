"""Answering with a generative backend: prompt, call with retries, verify the reply.

Failures that retrying cannot fix, or that outlast the retries, raise
:class:`ModelUnavailable`; the pipeline then shows the offline answer with a notice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence

from answering.backends.base import ChatBackend, Message
from answering.backends.retry import CutOffReply, MalformedReply, RetryPolicy, status_of
from answering.citations import TextLookup
from answering.llm_answer import Checked, check, parse, visible
from answering.prompting import PackedChunk, answer_messages, condense_messages
from qabot.settings import Settings
from qabot.types import Hit

_HEADINGS = ("quotes:", "quote:", "sources:", "citations:")


class ModelUnavailable(Exception):
    """The model could not give a usable reply; ``str()`` says why, in a few words."""


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


class GenerativeAnswerer:
    """Answers from retrieved hits with a chat backend; every citation is verified."""

    def __init__(
        self,
        backend: ChatBackend,
        settings: Settings,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend = backend
        self.name = backend.name
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
            raise ModelUnavailable(describe(error)) from error

    def condense(self, question: str, history: Sequence[str]) -> str | None:
        """``question`` rewritten to stand alone, or ``None`` if the model failed."""
        try:
            text = self._complete(condense_messages(question, history))
        except ModelUnavailable:
            return None
        lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
        return lines[0].strip('"“”') if lines else None

    def answer(self, question: str, hits: Sequence[Hit], lookup: TextLookup) -> Checked:
        messages, packed = self.messages(question, hits)
        return check(parse(self._complete(messages)), packed, lookup)

    def stream(
        self, question: str, hits: Sequence[Hit], lookup: TextLookup
    ) -> Iterator[str | Checked]:
        """Text deltas of the answer as it is written, then the verified :class:`Checked`.

        The deltas are the raw answer (before its ``Quotes:`` section), shown provisionally:
        markers are renumbered and unsupported claims removed in the final result.
        """
        messages, packed = self.messages(question, hits)
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
            raise ModelUnavailable(describe(error)) from error
        yield check(parse(full), packed, lookup)

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


Outcome = tuple[Checked | None, str | None, int]
"""(the verified answer, or None to fall back to offline; the notice for the user; dropped)."""


def generate(
    model: GenerativeAnswerer,
    question: str,
    hits: Sequence[Hit],
    lookup: TextLookup,
    stream: bool,
) -> Generator[str, None, Outcome]:
    """Run ``model``, yielding deltas when ``stream``; returns what the pipeline should show."""
    if not hits:
        return None, None, 0  # nothing to answer from: the offline answerer abstains
    try:
        if stream:
            checked: Checked | None = None
            for item in model.stream(question, hits, lookup):
                if isinstance(item, str):
                    yield item
                else:
                    checked = item
            assert checked is not None
        else:
            checked = model.answer(question, hits, lookup)
    except ModelUnavailable as error:
        return None, f"The model {model.name} was unavailable ({error}): offline answer shown.", 0
    if checked.citations or checked.abstained:
        return checked, None, checked.dropped
    notice = f"The answer of {model.name} had no verifiable citation: offline answer shown."
    return None, notice, checked.dropped
