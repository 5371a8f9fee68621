"""Adapter from a LangChain chat model to :class:`~answering.llm.chat.ChatBackend`."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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


class LangChainBackend:
    """Runs a LangChain ``BaseChatModel``; SDK retries are off: the pipeline retries itself."""

    streams = True

    def __init__(
        self, name: str, model: Any, transient: tuple[type[BaseException], ...] = ()
    ) -> None:
        self.name = name
        self.model = model
        self._transient = transient

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


def _is_end(metadata: Any) -> bool:
    """True for the chunk that ends a reply: its finish/stop reason, or Ollama's ``done``."""
    if not isinstance(metadata, dict):
        return False
    return metadata.get("done") is True or any(
        metadata.get(key) for key in ("finish_reason", "stop_reason", "done_reason")
    )
