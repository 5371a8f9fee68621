"""A fake embedding server on 127.0.0.1: OpenAI ``POST /v1/embeddings`` and Ollama ``/api/embed``.

Its vectors are a hashed bag of words (each lower-cased word adds +1 or -1 to one of
``dimensions`` slots, chosen by a hash of the word), so texts that share words are close and
retrieval still works, deterministically. Like :class:`~tests.llm_servers.FakeLLM` it answers
from :attr:`FakeEmbeddingServer.script` first (:class:`Fail`, :class:`Hang`, :class:`Malformed`,
one per request) and logs every request's protocol, model and number of texts.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import re
import threading
from collections import deque
from typing import Any

import numpy as np
from aiohttp import web

from .behaviours import Behaviour, Fail, Hang, Malformed

WORD = re.compile(r"\w+")


def bag_of_words(text: str, dimensions: int) -> list[float]:
    vector = np.zeros(dimensions, dtype=np.float32)
    for word in WORD.findall(text.lower()):
        digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
        slot = int.from_bytes(digest[:4], "little") % dimensions
        vector[slot] += 1.0 if digest[4] & 1 else -1.0
    norm = float(np.linalg.norm(vector))
    if norm == 0:
        vector[0] = 1.0
        norm = 1.0
    return (vector / norm).tolist()


class FakeEmbeddingServer:
    """A scripted OpenAI + Ollama embedding server; use as a context manager."""

    def __init__(self, dimensions: int = 64) -> None:
        self.dimensions = dimensions
        self.script: deque[Behaviour] = deque()
        self.requests: list[dict[str, Any]] = []
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)

    def __enter__(self) -> FakeEmbeddingServer:
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
        app.router.add_post("/v1/embeddings", self._openai)
        app.router.add_post("/api/embed", self._ollama)
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
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def queue(self, *behaviours: Behaviour) -> None:
        self.script.extend(behaviours)

    def sizes(self, protocol: str | None = None) -> list[int]:
        """Texts per request, in order (of one protocol when given)."""
        return [r["texts"] for r in self.requests if protocol in (None, r["protocol"])]

    async def _step(self, protocol: str, body: dict, texts: list[str]) -> Behaviour | None:
        self.requests.append(
            {"protocol": protocol, "model": body.get("model"), "texts": len(texts), "body": body}
        )
        step = self.script.popleft() if self.script else None
        if isinstance(step, Hang):
            await asyncio.sleep(step.seconds)
            step = None
        return step

    async def _openai(self, request: web.Request) -> web.Response:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        step = await self._step("openai", body, texts)
        if isinstance(step, Fail):
            error = {"error": {"message": step.message, "type": "server_error", "code": None}}
            return web.json_response(error, status=step.status)
        if isinstance(step, Malformed):
            return web.json_response({"object": "list", "data": [], "model": body["model"]})
        data = []
        for i, text in enumerate(texts):
            vector = bag_of_words(text, self.dimensions)
            if body.get("encoding_format") == "base64":
                raw = np.asarray(vector, dtype="<f4").tobytes()
                embedding: Any = base64.b64encode(raw).decode()
            else:
                embedding = vector
            data.append({"object": "embedding", "index": i, "embedding": embedding})
        usage = {"prompt_tokens": len(texts), "total_tokens": len(texts)}
        return web.json_response(
            {"object": "list", "data": data, "model": body["model"], "usage": usage}
        )

    async def _ollama(self, request: web.Request) -> web.Response:
        body = await request.json()
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        step = await self._step("ollama", body, texts)
        if isinstance(step, Fail):
            return web.json_response({"error": step.message}, status=step.status)
        if isinstance(step, Malformed):
            return web.json_response({"model": body["model"], "embeddings": [[1.0]]})
        vectors = [bag_of_words(t, self.dimensions) for t in texts]
        return web.json_response({"model": body["model"], "embeddings": vectors})
