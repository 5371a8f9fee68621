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


Behaviour = Reply | Fail | Hang | Malformed
