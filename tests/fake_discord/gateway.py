"""A fake of Discord's gateway: HELLO, IDENTIFY -> READY, RESUME -> replay + RESUMED,
heartbeat ACKs, and dispatching events with sequence numbers.

Sharding works as on Discord: each shard is its own connection and session (IDENTIFY carries
``"shard": [shard_id, shard_count]``); a guild's events go to shard
``(guild_id >> 22) % shard_count`` and direct messages to shard 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
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
INVALID_SHARD = 4010


def shard_of(guild_id: str | int | None, shard_count: int) -> int:
    """The shard that receives a guild's events (Discord's formula); DMs go to shard 0."""
    if guild_id is None or shard_count <= 1:
        return 0
    return (int(guild_id) >> 22) % shard_count


@dataclass
class Session:
    """One shard's session: its sequence and every dispatch (replayed on RESUME)."""

    shard_id: int
    shard_count: int
    session_id: str = field(default_factory=lambda: secrets.token_hex(16))
    seq: int = 0
    sent: list[dict[str, Any]] = field(default_factory=list)
    ws: web.WebSocketResponse | None = None


ReadyEvents = Callable[[str, int, int], list[tuple[str, dict[str, Any]]]]


class FakeGateway:
    """The bot's sessions, one per shard; ``ready_events(session_id, shard_id, shard_count)``
    builds what follows a successful IDENTIFY of that shard."""

    def __init__(
        self,
        token: str,
        resume_url: Callable[[], str],
        ready_events: ReadyEvents,
        heartbeat_interval_ms: int = 41_250,
    ) -> None:
        self.token = token
        self.resume_url = resume_url
        self.ready_events = ready_events
        self.heartbeat_interval_ms = heartbeat_interval_ms
        self.sessions: dict[int, Session] = {}  # shard id -> its current session
        self.received: list[dict[str, Any]] = []  # every payload the client sent (token redacted)
        self.connections = 0
        self.identified = asyncio.Event()  # set when every shard has identified
        self.resumed = asyncio.Event()
        self._lock = asyncio.Lock()

    # ---- the unsharded view (shard 0), as the single-session tests use it --------------------
    @property
    def session_id(self) -> str | None:
        session = self.sessions.get(0)
        return session.session_id if session else None

    @property
    def shard_count(self) -> int:
        return next(iter(self.sessions.values())).shard_count if self.sessions else 1

    @property
    def connected(self) -> bool:
        return bool(self.sessions) and all(
            s.ws is not None and not s.ws.closed for s in self.sessions.values()
        )

    def ops(self, op: int) -> list[dict[str, Any]]:
        return [p for p in self.received if p.get("op") == op]

    def identifies(self) -> list[dict[str, Any]]:
        """The IDENTIFY payloads' data, in order."""
        return [p["d"] for p in self.ops(IDENTIFY)]

    # ---- connections -------------------------------------------------------------------------
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
        for session in self.sessions.values():
            if session.ws is ws:
                session.ws = None
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
        shard_id, shard_count = data.get("shard") or (0, 1)
        if not (isinstance(shard_id, int) and isinstance(shard_count, int)) or not (
            0 <= shard_id < shard_count
        ):
            await ws.close(code=INVALID_SHARD, message=b"Invalid shard.")
            return
        async with self._lock:
            if any(s.shard_count != shard_count for s in self.sessions.values()):
                self.sessions.clear()  # the bot restarted with another shard count
            session = Session(shard_id, shard_count, ws=ws)
            self.sessions[shard_id] = session
        for event, event_data in self.ready_events(session.session_id, shard_id, shard_count):
            await self._dispatch_to(session, event, event_data)
        if len(self.sessions) == shard_count:
            self.identified.set()

    async def _resume(self, ws: web.WebSocketResponse, data: dict[str, Any]) -> None:
        session = next(
            (s for s in self.sessions.values() if s.session_id == data.get("session_id")), None
        )
        if data.get("token") != self.token or session is None:
            await ws.send_json({"op": INVALID_SESSION, "d": False, "s": None, "t": None})
            return
        async with self._lock:
            session.ws = ws
            missed = [p for p in session.sent if p["s"] > (data.get("seq") or 0)]
            for payload in missed:
                await ws.send_json(payload)
        await self._dispatch_to(session, "RESUMED", {})
        self.resumed.set()

    # ---- events ------------------------------------------------------------------------------
    async def dispatch(self, event: str, data: dict[str, Any]) -> int:
        """Send an event to the shard that owns it (kept for replay if that connection is
        down); returns its sequence number in that shard's session (0: no session yet)."""
        guild_id = data.get("id") if event.startswith("GUILD_") else data.get("guild_id")
        session = self.sessions.get(shard_of(guild_id, self.shard_count))
        if session is None:
            return 0
        return await self._dispatch_to(session, event, data)

    async def _dispatch_to(self, session: Session, event: str, data: dict[str, Any]) -> int:
        async with self._lock:
            session.seq += 1
            payload = {"op": 0, "t": event, "s": session.seq, "d": data}
            session.sent.append(payload)
            ws = session.ws
            if ws is not None and not ws.closed:
                with contextlib.suppress(ConnectionError):  # replayed on RESUME
                    await ws.send_json(payload)
            return session.seq

    def dispatched(self, shard_id: int, event: str | None = None) -> list[dict[str, Any]]:
        """The events sent on ``shard_id``'s current session (only ``event`` if given)."""
        session = self.sessions.get(shard_id)
        sent = session.sent if session else []
        return [p for p in sent if event is None or p["t"] == event]

    async def close(
        self, code: int = 4000, message: bytes = b"Unknown error", shard_id: int | None = None
    ) -> None:
        """Close a shard's connection (every shard's by default) as Discord does when it wants
        the client to reconnect."""
        async with self._lock:
            sockets = []
            for sid, session in self.sessions.items():
                if shard_id is None or sid == shard_id:
                    sockets.append(session.ws)
                    session.ws = None
        self.resumed.clear()
        for ws in sockets:
            if ws is not None:
                await ws.close(code=code, message=message)
