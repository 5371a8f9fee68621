"""Which failures are worth retrying, and retrying them with exponential backoff."""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TypeVar

import httpx

T = TypeVar("T")

#: HTTP statuses that say "try again later" rather than "this request is wrong".
RETRY_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504, 529})


def _http_errors() -> tuple[type[BaseException], ...]:
    """Transport failures of httpx and of its fork httpx2 (which the anthropic SDK uses)."""
    found: list[type[BaseException]] = []
    for module in (httpx, _optional("httpx2")):
        if module is not None:
            found += [module.TimeoutException, module.NetworkError, module.RemoteProtocolError]
    return tuple(found)


def _optional(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    TimeoutError,
    ConnectionError,
    *_http_errors(),
    json.JSONDecodeError,
)


class MalformedReply(Exception):
    """The model's reply could not be read (empty, cut off, not text)."""


class CutOffReply(MalformedReply):
    """A streamed reply ended without the protocol's end marker: the server stopped mid-way."""


def status_of(error: BaseException) -> int | None:
    """The HTTP status an SDK error carries (openai, anthropic, ollama all use ``status_code``)."""
    status = getattr(error, "status_code", None)
    if status is None:
        response = getattr(error, "response", None)
        status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def error_chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and its causes (``__cause__`` or ``__context__``), each once: SDKs wrap the
    httpx error in their own."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_transient(error: BaseException, extra: tuple[type[BaseException], ...] = ()) -> bool:
    """True for timeouts, refused connections, 429/5xx and malformed replies.

    Follows ``__cause__``/``__context__`` because SDKs wrap the httpx error in their own.
    """
    for current in error_chain(error):
        if isinstance(current, (*_TRANSIENT_TYPES, MalformedReply, *extra)):
            return True
        status = status_of(current)
        if status is not None:
            return status in RETRY_STATUSES
    return False


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``retries`` further attempts after the first, waiting ``backoff * 2**i`` seconds."""

    retries: int = 2
    backoff: float = 1.0
    max_delay: float = 20.0
    sleep: Callable[[float], None] = time.sleep

    def delays(self) -> Iterator[float]:
        for i in range(self.retries):
            yield min(self.backoff * (2**i), self.max_delay)

    def call(self, fn: Callable[[], T], transient: Callable[[BaseException], bool]) -> T:
        """``fn()``, retried while it raises a transient error; the last error propagates."""
        delays = self.delays()
        while True:
            try:
                return fn()
            except Exception as error:
                if not transient(error):
                    raise
                delay = next(delays, None)
                if delay is None:
                    raise
                self.sleep(delay)
