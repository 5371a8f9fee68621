"""What the fake server does with one request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Reply:
    """Answer with ``text`` (streamed in small pieces when the client asks for a stream)."""

    text: str


@dataclass(frozen=True)
class Fail:
    """Answer with an HTTP error in the provider's own error format."""

    status: int
    message: str = "simulated failure"


@dataclass(frozen=True)
class Hang:
    """Wait ``seconds`` before answering (longer than the client's timeout)."""

    seconds: float
    then: Reply | None = None


@dataclass(frozen=True)
class Malformed:
    """A 200 response whose body is not what the protocol promises."""


@dataclass(frozen=True)
class Drop:
    """Start answering with ``text``, then drop the connection: the server died mid-reply.

    A stream sends its opening events and the first ``after`` text pieces of the reply (all
    but the last ``-after`` when negative); a whole reply sends its headers (with the full
    ``Content-Length``) and half of its body. With ``clean`` a stream is instead ended
    properly on the wire after those pieces, but without the protocol's end marker
    (``[DONE]``, ``message_stop``, ``"done": true``): a cut-off reply that no transport error
    reveals. ``text`` defaults to the responder's reply.
    """

    after: int = 3
    clean: bool = False
    text: str | None = None


@dataclass(frozen=True)
class Structured:
    """Answer a structured request with ``value`` in the provider's structured form: an
    object, or raw JSON text (which may be broken on purpose). Scripted for a request that
    carried no schema, the server answers 500: the test expected a structured request."""

    value: dict | str


Behaviour = Reply | Fail | Hang | Malformed | Drop | Structured
