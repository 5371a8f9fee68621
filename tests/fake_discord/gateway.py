"""A fake of Discord's gateway: HELLO, IDENTIFY -> READY, RESUME -> replay + RESUMED,
heartbeat ACKs, and dispatching events with sequence numbers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable
from typing import Any

from aiohttp import WSMsgType, web

HELLO, HEARTBEAT, IDENTIFY, RESUME, RECONNECT, INVALID_SESSION, HEARTBEAT_ACK = (
    10,
    1,
    2,
    6,
    7,
    9,
    11,
)


class FakeGateway:
    """One bot session; ``ready_events`` builds what follows a successful IDENTIFY."""

    def __init__(
        self,
        token: str,
        resume_url: Callable[[], str],
        ready_events: Callable[[str], list[tuple[str, dict[str, Any]]]],
        heartbeat_interval_ms: int = 41_250,
    ) -> None:
        self.token = token
        self.resume_url = resume_url
        self.ready_events = ready_events
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.session_id: str | None = None
        self.seq = 0
        self.sent: list[dict[str, Any]] = []  # every dispatch of this session, for RESUME
        self.received: list[dict[str, Any]] = []  # every payload the client sent (token redacted)
        self.ws: web.WebSocketResponse | None = None
        self.connections = 0
        self.identified = asyncio.Event()
        self.resumed = asyncio.Event()
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self.ws is not None and not self.ws.closed and self.session_id is not None

    def ops(self, op: int) -> list[dict[str, Any]]:
        return [p for p in self.received if p.get("op") == op]

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.connections += 1
        await ws.send_json(
            {
                "op": HELLO,
                "d": {"heartbeat_interval": self.heartbeat_interval_ms},
                "s": None,
                "t": None,
            }
        )
        async for msg in ws:
            if msg.type is not WSMsgType.TEXT:
                continue
            payload = json.loads(msg.data)
            self._record(payload)
            op, data = payload.get("op"), payload.get("d")
            if op == HEARTBEAT:
                await ws.send_json({"op": HEARTBEAT_ACK, "d": None, "s": None, "t": None})
            elif op == IDENTIFY:
                await self._identify(ws, data)
            elif op == RESUME:
                await self._resume(ws, data)
        if self.ws is ws:
            self.ws = None
        return ws

    def _record(self, payload: dict[str, Any]) -> None:
        data = payload.get("d")
        if isinstance(data, dict) and "token" in data:
            payload = {**payload, "d": {**data, "token": "<token>"}}
            payload["token_ok"] = data["token"] == self.token
        self.received.append(payload)

    async def _identify(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self.token:
            await ws.close(code=4004, message=b"Authentication failed.")
            return
        async with self._lock:
            self.session_id = secrets.token_hex(16)
            self.seq = 0
            self.sent = []
            self.ws = ws
        for event, event_data in self.ready_events(self.session_id):
            await self.dispatch(event, event_data)
        self.identified.set()

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        if data.get("token") != self.token or data.get("session_id") != self.session_id:
            await ws.send_json({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        async with self._lock:
            self.ws = ws
            missed = [p for p in self.sent if p["s"] > (data.get("seq") or 0)]
            for payload in missed:
                await ws.send_json(payload)
        await self.dispatch("RESUMED", {})
        self.resumed.set()

    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send an event (kept for replay if the connection is down); returns its sequence."""
        async with self._lock:
            self.seq += 1
            payload = {"op": 0, "t": event, "s": self.seq, "d": data}
            self.sent.append(payload)
            ws = self.ws
            if ws is not None and not ws.closed:
                with contextlib.suppress(ConnectionError):  # replayed on RESUME
                    await ws.send_json(payload)
            return self.seq

    async def close(self, code: int = 4000, message: bytes = b"Unknown error") -> None:
        """Close the connection as Discord does when it wants the client to reconnect."""
        async with self._lock:
            ws, self.ws = self.ws, None
        self.resumed.clear()
        if ws is not None:
            await ws.close(code=code, message=message)
