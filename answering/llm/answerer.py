"""The model answerer: prompt a chat backend, call it with retries, check its reply.

The reply is asked for in one of two forms (``QABOT_LLM_STRUCTURED``): a JSON object held to
a schema by the provider (``answering.llm.structured``), when the backend has a mechanism
for it, or free text with a ``Quotes:`` section (``answering.llm.reply``). In ``auto`` mode a
server that refuses the schema (HTTP 400...) is asked again in free text, and from then on
only in free text. Failures that retrying cannot fix, or that outlast the retries, raise
:class:`~answering.answerer.Unavailable`; the pipeline then shows the extractive answer with
a notice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterator, Sequence

from answering.abstention import missing_names
from answering.answerer import AnswerRequest, Draft, Streaming, Unavailable
from answering.llm.chat import ChatBackend, Message, StructuredChat, rejected
from answering.llm.prompt import PackedChunk, answer_messages, condense_messages
from answering.llm.reply import Checked, check, parse, visible, without_markers
from answering.llm.retry import CutOffReply, MalformedReply, RetryPolicy, error_chain, status_of
from answering.llm.structured import (
    check_claims,
    parse_claims,
    partial_answer,
    quote_choices,
    reply_schema,
)
from answering.short import restates
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
    chain = list(error_chain(error))
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


def _draft(checked: Checked, request: AnswerRequest, packed: Sequence[PackedChunk]) -> Draft:
    """The checked reply as a draft; its citations are dropped when it does not answer the
    question asked. With nothing left, the pipeline shows the extractive answer.

    Two rules of the extractive answerer say when: the answer only repeats the question's
    own words (``answering.short.restates``: "Russia" for "Who can no longer buy Russian
    rocket engines?", a cited sentence that holds "Russia" passes every quote check); or the
    question names something rare that none of the cited chunks mentions (the near-miss rule,
    ``answering.abstention.missing_names``): "When will Russia leave the Tiangong station?"
    answered from a passage about the ISS answers another question."""
    draft = Draft(checked.text, checked.citations, checked.abstained, checked.dropped)
    if not draft.citations:
        return draft
    if restates(without_markers(draft.text), request.question) or missing_names(
        request.question, _cited_text(draft, packed), request.corpus.lexical
    ):
        return Draft("", [], False, draft.dropped + len(draft.citations))
    return draft


def _cited_text(draft: Draft, packed: Sequence[PackedChunk]) -> str:
    """The text of the chunks ``draft`` cites."""
    return " ".join(
        p.chunk.text
        for p in packed
        if any(
            c.source == p.chunk.source and p.chunk.start <= c.start < p.chunk.end
            for c in draft.citations
        )
    )


def supports_structured(backend: ChatBackend) -> bool:
    """Whether ``backend`` can be held to a JSON schema by its provider."""
    return isinstance(backend, StructuredChat) and bool(getattr(backend, "structured", True))


STRUCTURED_PROMPT = "answer.structured.system"


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
        #: Set once the server refused a schema and then answered in free text (``auto``).
        self.free_text_only = False

    def messages(
        self, question: str, hits: Sequence[Hit], system_prompt: str = "answer.system"
    ) -> tuple[list[Message], list[PackedChunk]]:
        return answer_messages(
            question,
            hits,
            context_tokens=self.settings.qabot_llm_context_tokens,
            answer_tokens=self.settings.qabot_llm_answer_tokens,
            system_prompt=system_prompt,
        )

    # ---- which form of reply -----------------------------------------------------------------
    def structured(self) -> bool:
        """Whether the next reply is asked for as JSON held to the schema."""
        mode = self.settings.qabot_llm_structured
        if mode == "off" or (mode == "auto" and self.free_text_only):
            return False
        if supports_structured(self.backend):
            return True
        if mode == "on":
            raise Unavailable("no structured output")
        return False

    def _falls_back(self, error: Unavailable) -> bool:
        """In ``auto`` mode, a refused schema is asked again in free text."""
        return self.settings.qabot_llm_structured == "auto" and rejected(error)

    def _schema(self, packed: Sequence[PackedChunk]) -> tuple[dict, list[str]]:
        """The reply's schema, and the quotes it allows (none: any). A runtime that decodes
        with a grammar (llama.cpp, Ollama) is held to the chunks' own sentences as quotes:
        small local models rarely copy a quote exactly (see ``reply_schema``)."""
        grammar = bool(getattr(self.backend, "schema_limits", False))
        quotes = quote_choices(packed) if grammar else []
        return reply_schema(grammar, quotes), quotes

    def _backend(self) -> StructuredChat:
        assert isinstance(self.backend, StructuredChat)
        return self.backend

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
        if self.structured():
            try:
                return self._answer_structured(request)
            except Unavailable as error:
                if not self._falls_back(error):
                    raise
                draft = self._answer_free_text(request)
                self.free_text_only = True
                return draft
        return self._answer_free_text(request)

    def _answer_free_text(self, request: AnswerRequest) -> Draft:
        messages, packed = self.messages(request.question, request.hits)
        return _draft(
            check(parse(self._complete(messages)), packed, request.lookup), request, packed
        )

    def _answer_structured(self, request: AnswerRequest) -> Draft:
        """A JSON reply; one that is not JSON of the schema's shape is retried (transient)."""
        messages, packed = self.messages(request.question, request.hits, STRUCTURED_PROMPT)
        (schema, quotes), backend = self._schema(packed), self._backend()
        try:
            claims = self.policy.call(
                lambda: parse_claims(backend.complete_structured(messages, schema)),
                self.backend.is_transient,
            )
        except Exception as error:
            raise Unavailable(describe(error)) from error
        return _draft(check_claims(claims, packed, request.lookup, bool(quotes)), request, packed)

    def stream(self, request: AnswerRequest) -> Streaming[Draft]:
        """Text deltas of the answer as it is written, then the checked :class:`Draft`.

        The deltas are the raw answer (before its ``Quotes:`` section), shown provisionally:
        markers are renumbered and unsupported claims removed in the final result.
        """
        return Streaming(self._stream(request))

    def _stream(self, request: AnswerRequest) -> Generator[str, None, Draft]:
        if not request.hits:
            raise Unavailable("nothing retrieved")
        if self.structured():
            shown: list[str] = []
            try:
                return (yield from self._stream_structured(request, shown))
            except Unavailable as error:
                if shown or not self._falls_back(error):
                    raise
            draft = yield from self._stream_free_text(request)
            self.free_text_only = True
            return draft
        return (yield from self._stream_free_text(request))

    def _stream_free_text(self, request: AnswerRequest) -> Generator[str, None, Draft]:
        messages, packed = self.messages(request.question, request.hits)
        full = ""
        shown = 0
        try:
            deltas = self._stream_with_retry(
                lambda: self.backend.stream(messages), lambda: self.backend.complete(messages)
            )
            for delta in deltas:
                full += delta
                text = _showable(full)
                if len(text) > shown:
                    yield text[shown:]
                    shown = len(text)
        except Exception as error:
            raise Unavailable(describe(error)) from error
        return _draft(check(parse(full), packed, request.lookup), request, packed)

    def _stream_structured(
        self, request: AnswerRequest, shown: list[str]
    ) -> Generator[str, None, Draft]:
        """The answer field(s) of the JSON reply as they are written (partial JSON), then the
        checked draft. ``shown`` collects what was yielded. A reply that breaks off or is not
        JSON of the schema's shape after text was shown is not retried (the shown text cannot
        be taken back): it ends as the extractive answer, as a free-text reply would."""
        messages, packed = self.messages(request.question, request.hits, STRUCTURED_PROMPT)
        (schema, quotes), backend = self._schema(packed), self._backend()
        delays = self.policy.delays()
        while True:
            full = ""
            text = ""
            try:
                deltas = self._stream_with_retry(
                    lambda: backend.stream_structured(messages, schema),
                    lambda: backend.complete_structured(messages, schema),
                )
                for delta in deltas:
                    full += delta
                    now = partial_answer(full)
                    # Deltas only add: a partial parse that rewrites earlier text waits until
                    # the text again extends what was shown.
                    if len(now) > len(text) and now.startswith(text):
                        shown.append(now[len(text) :])
                        yield shown[-1]
                        text = now
                claims = parse_claims(full)
                break
            except MalformedReply as error:
                delay = next(delays, None)
                if shown or delay is None:  # shown text cannot be taken back
                    raise Unavailable(describe(error)) from error
                self.policy.sleep(delay)
            except Exception as error:
                raise Unavailable(describe(error)) from error
        return _draft(check_claims(claims, packed, request.lookup, bool(quotes)), request, packed)

    def _stream_with_retry(
        self, stream: Callable[[], Iterator[str]], whole: Callable[[], str]
    ) -> Iterator[str]:
        """The backend's deltas; a failure before the first delta is retried with backoff."""
        if not self.backend.streams:
            yield self.policy.call(whole, self.backend.is_transient)
            return
        delays = self.policy.delays()
        while True:
            started = False
            try:
                for delta in stream():
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
