"""The aiohttp server behind :class:`FakeLLM`, run in a thread with its own event loop."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from .behaviours import Behaviour, Drop, Fail, Hang, Malformed, Reply
from .fake_model import cite_first_sentence

Responder = Callable[[list[dict[str, str]]], str]
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

    def __init__(self, responder: Responder = cite_first_sentence) -> None:
        self.responder = responder
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
    async def _behaviour(self, protocol: str, body: dict, messages: list[dict[str, str]]):
        self.requests.append({"protocol": protocol, "body": body, "messages": messages})
        step = self.script.popleft() if self.script else None
        if isinstance(step, Hang):
            await asyncio.sleep(step.seconds)
            step = step.then
        if isinstance(step, Drop) and step.text is None:
            step = Drop(step.after, step.clean, self.responder(messages))
        return step or Reply(self.responder(messages))

    # ---- OpenAI ----------------------------------------------------------------------------
    async def _openai(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = [{"role": m["role"], "content": _text(m["content"])} for m in body["messages"]]
        step = await self._behaviour("openai", body, messages)
        if isinstance(step, Fail):
            error = {"error": {"message": step.message, "type": "server_error", "code": None}}
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
        step = await self._behaviour("anthropic", body, messages)
        if isinstance(step, Fail):
            kind = {429: "rate_limit_error", 529: "overloaded_error"}.get(step.status, "api_error")
            error = {"type": "error", "error": {"type": kind, "message": step.message}}
            return web.json_response(error, status=step.status)
        if isinstance(step, Malformed):
            if body.get("stream"):
                lines = ['event: content_block_delta\ndata: {"delta": [\n\n']
                return await _send(request, "text/event-stream", lines)
            return web.Response(text='{"content": [', content_type="application/json")
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

    # ---- Ollama ----------------------------------------------------------------------------
    async def _ollama(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        messages = [{"role": m["role"], "content": _text(m["content"])} for m in body["messages"]]
        step = await self._behaviour("ollama", body, messages)
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
