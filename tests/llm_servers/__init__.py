"""Fake LLM providers on 127.0.0.1 for the backend tests.

One aiohttp server in a background thread speaks three protocols:

* OpenAI chat completions, ``POST /v1/chat/completions`` (JSON, or SSE when ``stream``),
* Anthropic messages, ``POST /v1/messages`` (JSON, or its SSE event stream),
* Ollama chat, ``POST /api/chat`` (JSON, or NDJSON when ``stream``, Ollama's default).

What it answers is scripted: :attr:`FakeLLM.script` holds behaviours used one per request
(:class:`Reply`, :class:`Fail`, :class:`Hang`, :class:`Malformed`, :class:`Drop`); when it is empty,
:attr:`FakeLLM.responder` writes the reply from the request's messages.
"""

from .behaviours import Behaviour, Drop, Fail, Hang, Malformed, Reply
from .config import PROVIDERS, settings_for
from .fake_model import chunks_in, cite_first_sentence, obey_injection
from .server import FakeLLM, unused_port

__all__ = [
    "Behaviour",
    "Drop",
    "Fail",
    "FakeLLM",
    "Hang",
    "Malformed",
    "PROVIDERS",
    "Reply",
    "chunks_in",
    "cite_first_sentence",
    "obey_injection",
    "settings_for",
    "unused_port",
]
