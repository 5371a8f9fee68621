"""Adapter from a LangChain chat model to :class:`~answering.llm.chat.ChatBackend`."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from answering.llm.chat import Message
from answering.llm.retry import CutOffReply, MalformedReply, is_transient


def content_text(content: Any) -> str:
    """The text of a message's ``content``: a string, or a list of text blocks (Anthropic)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict) and block.get("type") == "text":
                parts.append(str(block.get("text", "")))
        return "".join(parts)
    raise MalformedReply(f"unexpected message content of type {type(content).__name__}")


#: How a provider holds a chat model to a JSON schema: ``bind(model, schema)`` returns the
#: model bound to its own mechanism (OpenAI ``response_format``, Ollama ``format``, Anthropic
#: a forced tool).
Binder = Callable[[Any, dict], Any]


class LangChainBackend:
    """Runs a LangChain ``BaseChatModel``; SDK retries are off: the pipeline retries itself.

    With a ``binder`` it also implements :class:`~answering.llm.chat.StructuredChat`;
    ``schema_limits`` says the provider decodes with a grammar that honours length limits.
    """

    streams = True

    def __init__(
        self,
        name: str,
        model: Any,
        transient: tuple[type[BaseException], ...] = (),
        binder: Binder | None = None,
        schema_limits: bool = False,
    ) -> None:
        self.name = name
        self.model = model
        self._transient = transient
        self._binder = binder
        self.schema_limits = schema_limits
        self.structured = binder is not None

    def complete(self, messages: Sequence[Message]) -> str:
        reply = self.model.invoke(list(messages))
        text = content_text(reply.content)
        if not text.strip():
            raise MalformedReply("the model returned an empty reply")
        return text

    def stream(self, messages: Sequence[Message]) -> Iterator[str]:
        """The reply's text deltas; raises :class:`CutOffReply` if it never says it ended."""
        ended = False
        for chunk in self.model.stream(list(messages)):
            ended = ended or _is_end(getattr(chunk, "response_metadata", None))
            text = content_text(chunk.content)
            if text:
                yield text
        if not ended:
            # A server that dies while sending can still close the stream cleanly on the wire
            # (HTTP/1.0, a proxy): only the missing end marker shows that text is missing.
            raise CutOffReply("the reply stream ended without its end marker")

    def is_transient(self, error: BaseException) -> bool:
        return is_transient(error, self._transient)

    def _bound(self, schema: dict) -> Any:
        if self._binder is None:
            raise NotImplementedError(f"{self.name} has no structured-output mechanism")
        return self._binder(self.model, schema)

    def complete_structured(self, messages: Sequence[Message], schema: dict) -> str:
        """The reply's JSON text: a tool call's arguments, or the message content."""
        reply = self._bound(schema).invoke(list(messages))
        calls = getattr(reply, "tool_calls", None) or []
        if calls:
            return json.dumps(calls[0].get("args", {}))
        invalid = getattr(reply, "invalid_tool_calls", None) or []
        if invalid:  # the tool input was not JSON: let the caller's parser say so
            return str(invalid[0].get("args") or "")
        text = content_text(reply.content)
        if not text.strip():
            raise MalformedReply("the model returned an empty reply")
        return text

    def stream_structured(self, messages: Sequence[Message], schema: dict) -> Iterator[str]:
        """Deltas of the reply's JSON text (tool-call argument pieces, or content pieces)."""
        ended = False
        for chunk in self._bound(schema).stream(list(messages)):
            ended = ended or _is_end(getattr(chunk, "response_metadata", None))
            pieces = [c.get("args") or "" for c in getattr(chunk, "tool_call_chunks", None) or []]
            text = "".join(pieces) if pieces else content_text(_text_blocks(chunk.content))
            if text:
                yield text
        if not ended:
            raise CutOffReply("the reply stream ended without its end marker")


def _text_blocks(content: Any) -> Any:
    """``content`` without tool-input blocks (their JSON comes as tool-call chunks)."""
    if isinstance(content, list):
        return [b for b in content if not (isinstance(b, dict) and b.get("type") != "text")]
    return content


def _is_end(metadata: Any) -> bool:
    """True for the chunk that ends a reply: its finish/stop reason, or Ollama's ``done``."""
    if not isinstance(metadata, dict):
        return False
    return metadata.get("done") is True or any(
        metadata.get(key) for key in ("finish_reason", "stop_reason", "done_reason")
    )
