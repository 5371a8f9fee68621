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


@runtime_checkable
class StructuredChat(Protocol):
    """A model that can be held to a JSON schema by its provider (``QABOT_LLM_STRUCTURED``).

    Both methods return the reply's JSON text (whole, or as deltas); what the model wrote is
    parsed and checked by the caller. A server that does not know the mechanism answers with
    an error (HTTP 400...), which :func:`rejected` recognises.
    """

    def complete_structured(self, messages: Sequence[Message], schema: dict) -> str: ...

    def stream_structured(self, messages: Sequence[Message], schema: dict) -> Iterator[str]: ...


#: HTTP statuses with which a server refuses a request it does not understand (an unknown
#: ``response_format``, ``format`` or ``tools`` field), as opposed to "try again later" or
#: "your key is wrong" (401, 403), which the free-text request would meet as well.
REJECTED_STATUSES = frozenset({400, 404, 405, 415, 422, 501})


class SchemaRejected(Exception):
    """The runtime refused the JSON schema itself (not the request as a whole)."""


def rejected(error: BaseException) -> bool:
    """True when ``error`` says the structured request was refused as not understood."""
    from answering.llm.retry import error_chain, status_of

    for current in error_chain(error):
        if isinstance(current, SchemaRejected):
            return True
        status = status_of(current)
        if status is not None:
            return status in REJECTED_STATUSES
    return False
