"""The aiohttp server behind :class:`FakeLLM`, run in a thread with its own event loop."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import jsonschema
from aiohttp import web

from .behaviours import Behaviour, Drop, Fail, Hang, Malformed, Reply, Structured
from .fake_model import cite_first_sentence, cite_first_sentence_claims

Responder = Callable[[list[dict[str, str]]], str]
StructuredResponder = Callable[[list[dict[str, str]], dict], dict]


class BadStructuredRequest(Exception):
    """The request asked for structured output in a form the provider does not accept."""


def openai_schema(body: dict) -> dict | None:
    """The schema of an OpenAI ``response_format`` of type ``json_schema``, if any."""
    fmt = body.get("response_format")
    if fmt is None:
        return None
    spec = fmt.get("json_schema") if isinstance(fmt, dict) else None
    if fmt.get("type") != "json_schema" or not isinstance(spec, dict):
        raise BadStructuredRequest(f"response_format must be of type json_schema: {fmt!r}")
    if not isinstance(spec.get("name"), str) or not isinstance(spec.get("schema"), dict):
        raise BadStructuredRequest("json_schema needs a name and a schema")
    return spec["schema"]


def ollama_schema(body: dict) -> dict | None:
    """The JSON schema given as Ollama's ``format``, if any."""
    fmt = body.get("format")
    if fmt in (None, ""):
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "object":
        raise BadStructuredRequest(f"format must be a JSON schema object here: {fmt!r}")
    return fmt


def anthropic_tool(body: dict) -> tuple[str, dict] | None:
    """(name, input schema) of the tool an Anthropic request forces, if it has tools."""
    tools = body.get("tools")
    if not tools:
        return None
    choice = body.get("tool_choice") or {}
    if choice.get("type") != "tool":
        raise BadStructuredRequest(f"tool_choice must force one tool: {choice!r}")
    for tool in tools:
        if tool.get("name") == choice.get("name") and isinstance(tool.get("input_schema"), dict):
            return tool["name"], tool["input_schema"]
    raise BadStructuredRequest("tool_choice names no tool with an input_schema")


PIECE = 12  # characters per streamed delta


def unused_port() -> int:
    """A local port nothing listens on (for "connection refused")."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    return "".join(b.get("text", "") for b in content if isinstance(b, dict))


def _pieces(text: str) -> list[str]:
    return [text[i : i + PIECE] for i in range(0, len(text), PIECE)] or [""]


class FakeLLM:
    """A scripted OpenAI + Anthropic + Ollama server on 127.0.0.1; use as a context manager."""

    def __init__(
        self,
        responder: Responder = cite_first_sentence,
        structured_responder: StructuredResponder = cite_first_sentence_claims,
        structured: bool = True,
    ) -> None:
        self.responder = responder
        self.structured_responder = structured_responder
        #: False: a server without structured output, which answers 400 to any schema.
        self.structured = structured
        self.script: deque[Behaviour] = deque()
        self.requests: list[dict[str, Any]] = []
        #: Seconds to wait before each streamed text piece: a model writing at a set speed.
        self.piece_delay = 0.0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    # ---- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> FakeLLM:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_post("/v1/messages", self._anthropic)
        app.router.add_post("/api/chat", self._ollama)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def _stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current]
        for task in pending:  # handlers still sleeping in a Hang
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue(self, *behaviours: Behaviour) -> None:
        self.script.extend(behaviours)

    # ---- behaviour -------------------------------------------------------------------------
    async def _behaviour(
        self,
        protocol: str,
        body: dict,
        messages: list[dict[str, str]],
        schema: dict | None = None,
    ):
        self.requests.append(
            {"protocol": protocol, "body": body, "messages": messages, "schema": schema}
        )
        if schema is not None and not self.structured:
            return Fail(400, f"unsupported structured output request ({protocol})")
        step = self.script.popleft() if self.script else None
        if isinstance(step, Hang):
            await asyncio.sleep(step.seconds)
            step = step.then
        if schema is not None:
            return self._structured_step(step, messages, schema)
        if isinstance(step, Structured):
            return Fail(500, "fake: a structured reply was scripted, the request had no schema")
        if isinstance(step, Drop) and step.text is None:
            step = Drop(step.after, step.clean, self.responder(messages))
        return step or Reply(self.responder(messages))

    def _structured_step(
        self, step: Behaviour | None, messages: list[dict[str, str]], schema: dict
    ) -> Behaviour:
        """The step for a request that carried a schema; the reply is the JSON text."""
        if isinstance(step, Structured):
            value = step.value
            return Reply(value if isinstance(value, str) else json.dumps(value))
        if step is not None and not (isinstance(step, Drop) and step.text is None):
            return step
        value = self.structured_responder(messages, schema)
        jsonschema.validate(value, schema)  # the fake model obeys the schema it was given
        if isinstance(step, Drop):
            return Drop(step.after, step.clean, json.dumps(value))
        return Reply(json.dumps(value))

    # ---- OpenAI ----------------------------------------------------------------------------
    async def _openai(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = [{"role": m["role"], "content": _text(m["content"])} for m in body["messages"]]
        try:
            schema = openai_schema(body)
        except BadStructuredRequest as bad:
            schema, step = None, Fail(400, str(bad))
        else:
            step = await self._behaviour("openai", body, messages, schema)
        if isinstance(step, Fail):
            kind = "invalid_request_error" if step.status == 400 else "server_error"
            error = {"error": {"message": step.message, "type": kind, "code": None}}
            return web.json_response(error, status=step.status)
        if isinstance(step, Malformed):
            if body.get("stream"):
                return await _send(request, "text/event-stream", ['data: {"choices": [\n\n'])
            return web.Response(text='{"choices": [', content_type="application/json")
        model = body.get("model", "fake")
        if not body.get("stream"):
            reply = {
                "id": "chatcmpl-fake",
                "object": "chat.completion",
                "created": 0,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": step.text},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
            }
            if isinstance(step, Drop):
                return await _send_half(request, reply)
            return web.json_response(reply)

        def chunk(delta: dict, finish: str | None = None) -> dict:
            return {
                "id": "chatcmpl-fake",
                "object": "chat.completion.chunk",
                "created": 0,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": p}) for p in _pieces(step.text)]
        events.append(chunk({}, "stop"))
        lines = [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]
        return await _send(
            request, "text/event-stream", lines, _drop(step), lead=1, delay=self.piece_delay
        )

    # ---- Anthropic -------------------------------------------------------------------------
    async def _anthropic(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = [{"role": "system", "content": _text(body.get("system", ""))}]
        messages += [{"role": m["role"], "content": _text(m["content"])} for m in body["messages"]]
        try:
            tool = anthropic_tool(body)
        except BadStructuredRequest as bad:
            tool, step = None, Fail(400, str(bad))
        else:
            step = await self._behaviour("anthropic", body, messages, tool and tool[1])
        if isinstance(step, Fail):
            kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(step.status, "api_error")
            kind = "invalid_request_error" if step.status == 400 else kind
            error = {"type": "error", "error": {"type": kind, "message": step.message}}
            return web.json_response(error, status=step.status)
        if isinstance(step, Malformed):
            if body.get("stream"):
                lines = ['event: content_block_delta\ndata: {"delta": [\n\n']
                return await _send(request, "text/event-stream", lines)
            return web.Response(text='{"content": [', content_type="application/json")
        if tool is not None and isinstance(step, Reply):
            return await self._anthropic_tool_use(request, body, tool[0], step.text)
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "fake"),
            "content": [{"type": "text", "text": step.text}],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
        if not body.get("stream"):
            if isinstance(step, Drop):
                return await _send_half(request, message)
            return web.json_response(message)
        start = {**message, "content": [], "stop_reason": None}
        events: list[tuple[str, dict]] = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {"type": "text", "text": ""},
                },
            ),
            ("ping", {"type": "ping"}),
        ]
        for p in _pieces(step.text):
            delta = {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "text_delta", "text": p},
            }
            events.append(("content_block_delta", delta))
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                    "usage": {"output_tokens": 5},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        lines = [f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events]
        return await _send(
            request, "text/event-stream", lines, _drop(step), lead=3, delay=self.piece_delay
        )

    async def _anthropic_tool_use(
        self, request: web.Request, body: dict, name: str, raw: str
    ) -> web.StreamResponse:
        """The reply as a ``tool_use`` block. Raw text that is not JSON can only be sent as a
        stream of ``input_json_delta`` pieces; a whole reply then carries an empty input cut
        off at ``max_tokens``, as Anthropic's does when the model ran out mid-input."""
        try:
            value, stop = json.loads(raw), "tool_use"
        except json.JSONDecodeError:
            value, stop = {}, "max_tokens"
        block = {"type": "tool_use", "id": "toolu_fake", "name": name}
        message = {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": body.get("model", "fake"),
            "content": [{**block, "input": value}],
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
        if not body.get("stream"):
            return web.json_response(message)
        start = {**message, "content": [], "stop_reason": None}
        events: list[tuple[str, dict]] = [
            ("message_start", {"type": "message_start", "message": start}),
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": 0,
                    "content_block": {**block, "input": {}},
                },
            ),
        ]
        for p in _pieces(raw):
            delta = {"type": "input_json_delta", "partial_json": p}
            events.append(
                ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta})
            )
        events += [
            ("content_block_stop", {"type": "content_block_stop", "index": 0}),
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": "tool_use", "stop_sequence": None},
                    "usage": {"output_tokens": 5},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        lines = [f"event: {n}\ndata: {json.dumps(d)}\n\n" for n, d in events]
        return await _send(request, "text/event-stream", lines, delay=self.piece_delay)

    # ---- Ollama ----------------------------------------------------------------------------
    async def _ollama(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = [{"role": m["role"], "content": _text(m["content"])} for m in body["messages"]]
        try:
            schema = ollama_schema(body)
        except BadStructuredRequest as bad:
            schema, step = None, Fail(400, str(bad))
        else:
            step = await self._behaviour("ollama", body, messages, schema)
        if isinstance(step, Fail):
            return web.json_response({"error": step.message}, status=step.status)
        if isinstance(step, Malformed):
            return web.Response(text='{"message": {', content_type="application/x-ndjson")
        base = {"model": body.get("model", "fake"), "created_at": "2025-01-01T00:00:00Z"}
        final = {
            **base,
            "done": True,
            "done_reason": "stop",
            "total_duration": 1,
            "load_duration": 1,
            "prompt_eval_count": 1,
            "prompt_eval_duration": 1,
            "eval_count": 1,
            "eval_duration": 1,
        }
        if body.get("stream", True) is False:
            reply = {**final, "message": {"role": "assistant", "content": step.text}}
            if isinstance(step, Drop):
                return await _send_half(request, reply)
            return web.json_response(reply)
        parts = [
            {**base, "message": {"role": "assistant", "content": p}, "done": False}
            for p in _pieces(step.text)
        ]
        parts.append({**final, "message": {"role": "assistant", "content": ""}})
        lines = [json.dumps(p) + "\n" for p in parts]
        return await _send(
            request, "application/x-ndjson", lines, _drop(step), delay=self.piece_delay
        )


def _drop(step: Behaviour) -> Drop | None:
    return step if isinstance(step, Drop) else None


async def _send(
    request: web.Request,
    content_type: str,
    lines: list[str],
    drop: Drop | None = None,
    lead: int = 0,
    delay: float = 0.0,
) -> web.StreamResponse:
    """Stream ``lines`` (chunked). A ``drop`` cuts them off after the ``lead`` opening events
    and ``drop.after`` text pieces (all but ``-drop.after`` of them when negative). Every line
    after the ``lead`` opening events is sent ``delay`` seconds after the one before."""
    response = web.StreamResponse(headers={"Content-Type": content_type})
    if drop is not None:
        pieces = len(_pieces(drop.text or ""))
        lines = lines[: lead + (drop.after if drop.after >= 0 else pieces + drop.after)]
    try:
        await response.prepare(request)
        for i, line in enumerate(lines):
            if delay and i >= lead:
                await asyncio.sleep(delay)
            await response.write(line.encode())
        if drop and not drop.clean:
            _hang_up(request)
            return response
        await response.write_eof()
    except ConnectionResetError:  # the client gave up (timeout test)
        pass
    return response


async def _send_half(request: web.Request, body: dict) -> web.StreamResponse:
    """Promise the whole JSON ``body`` (Content-Length), send half of it, hang up."""
    data = json.dumps(body).encode()
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(data)
    try:
        await response.prepare(request)
        await response.write(data[: len(data) // 2])
    except ConnectionResetError:
        pass
    _hang_up(request)
    return response


def _hang_up(request: web.Request) -> None:
    """Close the connection now, as a dying server would: the reply stays incomplete."""
    if request.transport is not None:
        request.transport.close()
