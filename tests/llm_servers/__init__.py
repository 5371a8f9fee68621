"""Fake LLM providers on 127.0.0.1 for the backend tests.

One aiohttp server in a background thread speaks three protocols:

* OpenAI chat completions, ``POST /v1/chat/completions`` (JSON, or SSE when ``stream``),
* Anthropic messages, ``POST /v1/messages`` (JSON, or its SSE event stream),
* Ollama chat, ``POST /api/chat`` (JSON, or NDJSON when ``stream``, Ollama's default).

What it answers is scripted: :attr:`FakeLLM.script` holds behaviours used one per request
(:class:`Reply`, :class:`Fail`, :class:`Hang`, :class:`Malformed`, :class:`Drop`,
:class:`Structured`); when it is empty, :attr:`FakeLLM.responder` writes the reply from the
request's messages.

Structured output is spoken in each provider's own form: OpenAI ``response_format`` of type
``json_schema`` (the reply is the message content), Ollama ``format`` holding the schema (the
content), Anthropic a tool with ``input_schema`` forced by ``tool_choice`` (a ``tool_use``
block, streamed as ``input_json_delta``). A request carrying the schema in any other form is
answered 400, and so is every structured request to ``FakeLLM(structured=False)``: a server
without the mechanism. The structured responder's own replies are validated against the
request's schema.
"""

from .behaviours import Behaviour, Drop, Fail, Hang, Malformed, Reply, Structured
from .config import PROVIDERS, settings_for
from .fake_model import chunks_in, cite_first_sentence, cite_first_sentence_claims, obey_injection
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
    "Structured",
    "chunks_in",
    "cite_first_sentence",
    "cite_first_sentence_claims",
    "obey_injection",
    "settings_for",
    "unused_port",
]
