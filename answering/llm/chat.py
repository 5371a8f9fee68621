"""What a generative model is to qabot: a chat backend that completes or streams a reply."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, runtime_checkable

#: A chat message: ``("system" | "human" | "ai", text)``.
Message = tuple[str, str]


@runtime_checkable
class ChatBackend(Protocol):
    """A generative model. ``complete`` returns the whole reply, ``stream`` its text deltas."""

    name: str
    streams: bool

    def complete(self, messages: Sequence[Message]) -> str: ...

    def stream(self, messages: Sequence[Message]) -> Iterator[str]: ...

    def is_transient(self, error: BaseException) -> bool:
        """True when retrying the same request may succeed (timeout, 429, 5xx...)."""
        ...
