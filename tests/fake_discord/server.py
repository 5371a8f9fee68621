"""A fake Discord (REST API + gateway) on 127.0.0.1, and helpers to act as its users.

It records every REST request the client makes, answers with the JSON Discord would, can
answer one request with a 429 (with a ``Via`` header, as Discord's own responses have) or
with server errors (500, 502, ...), and drives the gateway (see :mod:`.gateway`), sharded or
not (``GET /gateway/bot`` recommends ``recommended_shards``).

Messages can be edited (``PATCH`` of a channel message, of an interaction's original response
or of a followup): the stored message changes, ``MESSAGE_UPDATE`` is dispatched for channel
messages, and every request that created or edited a message names it in
:attr:`Request.message_id`, so :meth:`FakeDiscord.edits` and :meth:`FakeDiscord.versions`
can tell which message a request was about.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from aiohttp import web

from . import payloads as p
from .gateway import FakeGateway, shard_of

API = "/api/v10"
EPHEMERAL = 1 << 6
LOADING = 1 << 7  # a deferred interaction's "is thinking..." original response


@dataclass
class Request:
    """One REST request the client made (``path`` is relative to ``/api/v10``)."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int = 200
    authorized: bool = False
    at: float = field(default_factory=time.monotonic)
    message_id: str | None = None  # the message this request created or edited

    @property
    def edits_message(self) -> bool:
        """Whether this request changed an existing message (a successful ``PATCH``)."""
        return self.method == "PATCH" and self.status < 300 and self.message_id is not None

    @property
    def content(self) -> str:
        return (self.data or {}).get("content") or ""

    @property
    def data(self) -> dict[str, Any] | None:
        """The message part of the body (interaction callbacks nest it under ``data``)."""
        if not isinstance(self.body, dict):
            return None
        if self.path.endswith("/callback"):
            return self.body.get("data")
        return self.body

    @property
    def sends_message(self) -> bool:
        """Whether this request posts or edits a message someone will see."""
        data = self.data
        return (
            self.status < 300
            and self.method in ("POST", "PATCH")
            and isinstance(data, dict)
            and any(k in data for k in ("content", "embeds", "components"))
        )

    @property
    def ephemeral(self) -> bool:
        return bool(((self.data or {}).get("flags") or 0) & EPHEMERAL)


@dataclass
class RateLimit:
    method: str
    pattern: re.Pattern[str]
    retry_after: float
    remaining: int = 1


@dataclass
class Failure:
    method: str
    pattern: re.Pattern[str]
    status: int
    remaining: int = 1


@dataclass
class Actor:
    """A member of the fake server."""

    user: dict[str, Any]
    roles: list[str] = field(default_factory=list)
    permissions: str = p.MEMBER_PERMISSIONS

    @property
    def id(self) -> str:
        return self.user["id"]


@dataclass
class FakeGuild:
    """Another server the bot is in (:meth:`FakeDiscord.add_guild`): one text channel, an
    owner with Manage Server and an ordinary member."""

    id: str
    name: str
    channel_id: str
    owner: Actor
    member: Actor


Handler = Callable[[Request, re.Match[str]], Awaitable[web.Response]]


class FakeDiscord:
    """Start with ``await fake.start()``; point discord.py at ``rest_base`` / ``gateway_url``."""

    def __init__(self, token: str = "fake-token.not-real.0123456789") -> None:
        self.token = token
        self.snowflake = p.Snowflakes()
        self.app_id = self.snowflake()
        self.bot_user = p.user(self.app_id, "qabot", bot=True)
        self.guild_id = self.snowflake()
        self.channel_id = self.snowflake()
        self.other_channel_id = self.snowflake()
        self.admin_role_id = self.snowflake()
        self.alice = Actor(p.user(self.snowflake(), "alice"))
        self.bob = Actor(p.user(self.snowflake(), "bob"))
        self.owner = Actor(p.user(self.snowflake(), "owner"), permissions=p.MANAGER_PERMISSIONS)
        self.others: list[Actor] = []  # members added with new_member()
        self.guilds: list[FakeGuild] = []  # servers added with add_guild()
        self._channel_guild: dict[str, str] = {}  # channels of the added guilds
        self.requests: list[Request] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, dict[str, Any]] = {}
        self.dm_channels: dict[str, str] = {}  # user id -> channel id
        self.commands: list[dict[str, Any]] = []
        self.attachments: dict[str, bytes] = {}
        self.interactions: dict[str, dict[str, Any]] = {}  # token -> interaction payload
        self.originals: dict[str, str] = {}  # interaction token -> its original response's id
        self.rate_limits: list[RateLimit] = []
        self.failures: list[Failure] = []
        self.recommended_shards = 1  # what GET /gateway/bot tells an auto-sharded client
        self.gateway = FakeGateway(token, lambda: self.gateway_url, self._ready_events)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = [
            ("GET", re.compile(r"/users/@me"), self._get_me),
            ("GET", re.compile(r"/oauth2/applications/@me"), self._get_application),
            ("GET", re.compile(r"/gateway(/bot)?"), self._get_gateway),
            ("PUT", re.compile(r"/applications/(\d+)/commands"), self._put_commands),
            ("GET", re.compile(r"/applications/(\d+)/commands"), self._get_commands),
            ("POST", re.compile(r"/channels/(\d+)/typing"), self._typing),
            ("POST", re.compile(r"/channels/(\d+)/messages"), self._create_message),
            ("GET", re.compile(r"/channels/(\d+)/messages"), self._list_messages),
            ("GET", re.compile(r"/channels/(\d+)/messages/(\d+)"), self._get_message),
            ("PATCH", re.compile(r"/channels/(\d+)/messages/(\d+)"), self._edit_message),
            ("POST", re.compile(r"/channels/(\d+)/messages/(\d+)/threads"), self._create_thread),
            ("POST", re.compile(r"/interactions/(\d+)/([\w.-]+)/callback"), self._callback),
            ("POST", re.compile(r"/webhooks/(\d+)/([\w.-]+)"), self._followup),
            ("PATCH", re.compile(r"/webhooks/(\d+)/([\w.-]+)/messages/@original"), self._edit_orig),
            ("PATCH", re.compile(r"/webhooks/(\d+)/([\w.-]+)/messages/(\d+)"), self._edit_followup),
            ("POST", re.compile(r"/users/@me/channels"), self._create_dm),
        ]

    # ---- server ----------------------------------------------------------------------------
    @property
    def rest_base(self) -> str:
        return f"http://127.0.0.1:{self.port}{API}"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    async def start(self) -> None:
        app = web.Application(client_max_size=32 * 1024 * 1024)
        app.router.add_get("/gateway", self.gateway.handle)
        app.router.add_get("/cdn/attachments/{name}", self._attachment)
        app.router.add_route("*", API + "/{tail:.*}", self._rest)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def stop(self) -> None:
        await self.gateway.close(code=1000, message=b"")
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- recording -------------------------------------------------------------------------
    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["tail"]
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            if request.content_type == "application/json":
                body = json.loads(raw or b"null")
            elif request.content_type.startswith("multipart/"):
                body = _payload_json(raw)
        auth = request.headers.get("Authorization")
        rec = Request(
            request.method, path, dict(request.query), body, authorized=auth == f"Bot {self.token}"
        )
        limit = self._rate_limited(rec)
        if limit is not None:
            rec.status = 429
            await self._record(rec)
            return _json(
                {
                    "message": "You are being rate limited.",
                    "retry_after": limit.retry_after,
                    "global": False,
                },
                status=429,
                headers={
                    "Via": "1.1 google",
                    "Retry-After": str(limit.retry_after),
                    "X-RateLimit-Scope": "user",
                },
            )
        failure = self._failing(rec)
        if failure is not None:
            rec.status = failure.status
            await self._record(rec)
            return _server_error(failure.status)
        for method, pattern, handler in self._routes:
            match = pattern.fullmatch(path)
            if method == request.method and match:
                needs_auth = not path.startswith(("/interactions/", "/webhooks/"))
                if needs_auth and not rec.authorized:
                    rec.status = 401
                    await self._record(rec)
                    unauthorized = {"message": "401: Unauthorized", "code": 0}
                    return _json(unauthorized, status=401)
                response = await handler(rec, match)
                rec.status = response.status
                await self._record(rec)
                return response
        rec.status = 404
        await self._record(rec)
        return _json({"message": "Unknown route (fake)", "code": 0}, status=404)

    def _rate_limited(self, rec: Request) -> RateLimit | None:
        for limit in self.rate_limits:
            if (
                limit.remaining > 0
                and limit.method == rec.method
                and limit.pattern.fullmatch(rec.path)
            ):
                limit.remaining -= 1
                return limit
        return None

    def _failing(self, rec: Request) -> Failure | None:
        for failure in self.failures:
            if (
                failure.remaining > 0
                and failure.method == rec.method
                and failure.pattern.fullmatch(rec.path)
            ):
                failure.remaining -= 1
                return failure
        return None

    async def _record(self, rec: Request) -> None:
        async with self._changed:
            self.requests.append(rec)
            self._changed.notify_all()

    async def wait_for(
        self, predicate: Callable[[Request], bool], count: int = 1, timeout: float = 20.0
    ) -> list[Request]:
        """The first ``count`` recorded requests matching ``predicate`` (waiting for them)."""

        def found() -> list[Request]:
            return [r for r in self.requests if predicate(r)]

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(found()) >= count), timeout)
        return found()[:count]

    async def wait_until(self, condition: Callable[[], bool], timeout: float = 20.0) -> None:
        """Wait until ``condition()`` holds (checked after every recorded request)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(condition), timeout)

    def rate_limit_once(self, method: str, path_regex: str, retry_after: float = 0.5) -> None:
        """Answer the next matching request with a 429 (``Via`` header set)."""
        self.rate_limits.append(RateLimit(method, re.compile(path_regex), retry_after))

    def fail(self, method: str, path_regex: str, *statuses: int) -> None:
        """Answer the next matching requests with these server errors, one each, in order
        (e.g. ``fail("POST", r"/channels/\\d+/messages", 500, 502)``)."""
        for status in statuses:
            self.failures.append(Failure(method, re.compile(path_regex), status))

    def sent_messages(self) -> list[Request]:
        """Every request by which the bot posted or edited a message."""
        return [r for r in self.requests if r.sends_message]

    def edits(self, message_id: str | None = None) -> list[Request]:
        """The successful edits of ``message_id`` (of any message when ``None``), in order."""
        return [
            r
            for r in self.requests
            if r.edits_message and (message_id is None or r.message_id == message_id)
        ]

    def versions(self, message_id: str) -> list[Request]:
        """The request that created ``message_id`` (if the bot did), then its edits."""
        return [r for r in self.requests if r.status < 300 and r.message_id == message_id]

    # ---- REST handlers ---------------------------------------------------------------------
    async def _get_me(self, rec: Request, m: re.Match[str]) -> web.Response:
        return _json({**self.bot_user, "verified": True, "mfa_enabled": False})

    async def _get_application(self, rec: Request, m: re.Match[str]) -> web.Response:
        return _json(
            {
                "id": self.app_id,
                "name": "qabot",
                "icon": None,
                "description": "",
                "rpc_origins": [],
                "bot_public": True,
                "bot_require_code_grant": False,
                "owner": self.owner.user,
                "summary": "",
                "verify_key": "0" * 64,
                "team": None,
                "flags": 0,
                "bot": self.bot_user,
                "interactions_endpoint_url": None,
            }
        )

    async def _get_gateway(self, rec: Request, m: re.Match[str]) -> web.Response:
        return _json(
            {
                "url": self.gateway_url,
                "shards": self.recommended_shards,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": 999,
                    "reset_after": 0,
                    "max_concurrency": 1,
                },
            }
        )

    async def _put_commands(self, rec: Request, m: re.Match[str]) -> web.Response:
        self.commands = [
            {
                **c,
                "id": self.snowflake(),
                "application_id": self.app_id,
                "version": "1",
                "type": c.get("type", 1),
                "default_member_permissions": None,
            }
            for c in rec.body or []
        ]
        return _json(self.commands)

    async def _get_commands(self, rec: Request, m: re.Match[str]) -> web.Response:
        return _json(self.commands)

    async def _typing(self, rec: Request, m: re.Match[str]) -> web.Response:
        return web.Response(status=204)

    def _guild_of(self, channel_id: str) -> str | None:
        if channel_id in self.threads:
            return self.threads[channel_id]["guild_id"]
        if channel_id in (self.channel_id, self.other_channel_id):
            return self.guild_id  # read now: a test may change the guild's id before start
        return self._channel_guild.get(channel_id)

    async def _create_message(self, rec: Request, m: re.Match[str]) -> web.Response:
        channel_id = m[1]
        body = rec.body or {}
        msg = p.message(
            self.snowflake(),
            channel_id,
            self.bot_user,
            body.get("content") or "",
            guild_id=self._guild_of(channel_id),
            embeds=body.get("embeds"),
            components=body.get("components"),
            reference=body.get("message_reference"),
        )
        self.messages[msg["id"]] = msg
        rec.message_id = msg["id"]
        await self.gateway.dispatch("MESSAGE_CREATE", msg)
        return _json(msg)

    async def _edit_message(self, rec: Request, m: re.Match[str]) -> web.Response:
        msg = self.messages.get(m[2])
        if msg is None or msg["channel_id"] != m[1]:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        if msg["author"]["id"] != self.app_id:
            forbidden = {"message": "Cannot edit a message authored by another user", "code": 50005}
            return _json(forbidden, status=403)
        self._apply_edit(msg, rec)
        await self.gateway.dispatch("MESSAGE_UPDATE", msg)
        return _json(msg)

    def _apply_edit(self, msg: dict[str, Any], rec: Request) -> None:
        """Change ``msg`` as Discord does: only the fields the body names."""
        body = rec.body if isinstance(rec.body, dict) else {}
        for key, empty in (("content", ""), ("embeds", []), ("components", [])):
            if key in body:
                msg[key] = body[key] if body[key] is not None else empty
        if "flags" in body and body["flags"] is not None:
            msg["flags"] = body["flags"]
        msg["flags"] = (msg.get("flags") or 0) & ~LOADING
        msg["edited_timestamp"] = p.now_iso()
        rec.message_id = msg["id"]

    async def _list_messages(self, rec: Request, m: re.Match[str]) -> web.Response:
        """Newest first, like Discord, honouring ``before`` / ``after`` / ``limit``."""
        found = sorted(
            (msg for msg in self.messages.values() if msg["channel_id"] == m[1]),
            key=lambda msg: int(msg["id"]),
        )
        limit = int(rec.query.get("limit", 50))
        if "after" in rec.query:
            found = [x for x in found if int(x["id"]) > int(rec.query["after"])][:limit]
        else:
            if "before" in rec.query:
                found = [x for x in found if int(x["id"]) < int(rec.query["before"])]
            found = found[-limit:]
        return _json(list(reversed(found)))

    async def _get_message(self, rec: Request, m: re.Match[str]) -> web.Response:
        msg = self.messages.get(m[2])
        if msg is None or msg["channel_id"] != m[1]:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        return _json(msg)

    async def _create_thread(self, rec: Request, m: re.Match[str]) -> web.Response:
        channel_id, message_id = m[1], m[2]
        guild_id = self._guild_of(channel_id) or self.guild_id
        thread = p.thread_channel(
            message_id, guild_id, channel_id, self.app_id, (rec.body or {}).get("name", "")
        )
        self.threads[message_id] = thread
        await self.gateway.dispatch("THREAD_CREATE", {**thread, "newly_created": True})
        return _json(thread, status=201)

    async def _create_dm(self, rec: Request, m: re.Match[str]) -> web.Response:
        user_id = (rec.body or {}).get("recipient_id", "")
        actors = (self.alice, self.bob, self.owner, *self.others)
        actors += tuple(a for g in self.guilds for a in (g.owner, g.member))
        actor = next(a for a in actors if a.id == user_id)
        channel_id = self.dm_channels.setdefault(user_id, self.snowflake())
        return _json(p.dm_channel(channel_id, actor.user))

    async def _callback(self, rec: Request, m: re.Match[str]) -> web.Response:
        interaction_id, token = m[1], m[2]
        interaction = self.interactions.get(token)
        if interaction is None or interaction["id"] != interaction_id:
            return _json({"message": "Unknown interaction", "code": 10062}, status=404)
        kind = (rec.body or {}).get("type")
        data = (rec.body or {}).get("data") or {}
        resource: dict[str, Any] = {"type": kind}
        message_id = None
        if kind == 4:
            msg = self._interaction_message(interaction, data)
            resource["message"], message_id = msg, msg["id"]
        elif kind == 5:  # deferred: Discord shows "is thinking..." until it is edited
            flags = LOADING | ((data.get("flags") or 0) & EPHEMERAL)
            msg = self._interaction_message(interaction, {"flags": flags})
            message_id = msg["id"]
        if message_id is not None:
            self.originals[token] = rec.message_id = message_id
        return _json(
            {
                "interaction": {
                    "id": interaction_id,
                    "type": interaction["type"],
                    "response_message_id": message_id,
                    "response_message_loading": kind == 5,
                    "response_message_ephemeral": bool((data.get("flags") or 0) & EPHEMERAL),
                },
                "resource": resource,
            }
        )

    async def _followup(self, rec: Request, m: re.Match[str]) -> web.Response:
        interaction = self.interactions.get(m[2])
        if interaction is None or m[1] != self.app_id:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        msg = self._interaction_message(interaction, rec.body or {})
        rec.message_id = msg["id"]
        return _json(msg)

    async def _edit_orig(self, rec: Request, m: re.Match[str]) -> web.Response:
        """Edit the interaction's original response (404 before the interaction is answered)."""
        interaction = self.interactions.get(m[2])
        if interaction is None or m[1] != self.app_id:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        msg = self.messages.get(self.originals.get(m[2], ""))
        if msg is None:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        self._apply_edit(msg, rec)
        return _json(msg)

    async def _edit_followup(self, rec: Request, m: re.Match[str]) -> web.Response:
        """Edit a message sent with the interaction's webhook (a followup or the original)."""
        interaction = self.interactions.get(m[2])
        if interaction is None or m[1] != self.app_id:
            return _json({"message": "Unknown Webhook", "code": 10015}, status=404)
        msg = self.messages.get(m[3])
        if msg is None or msg.get("webhook_id") != self.app_id:
            return _json({"message": "Unknown Message", "code": 10008}, status=404)
        self._apply_edit(msg, rec)
        return _json(msg)

    def _interaction_message(
        self, interaction: dict[str, Any], body: dict[str, Any]
    ) -> dict[str, Any]:
        msg = p.message(
            self.snowflake(),
            interaction["channel_id"],
            self.bot_user,
            body.get("content") or "",
            guild_id=interaction.get("guild_id"),
            embeds=body.get("embeds"),
            components=body.get("components"),
            flags=body.get("flags") or 0,
            webhook_id=self.app_id,
        )
        self.messages[msg["id"]] = msg
        return msg

    async def _attachment(self, request: web.Request) -> web.Response:
        data = self.attachments.get(request.match_info["name"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    # ---- gateway content -------------------------------------------------------------------
    def _ready_events(
        self, session_id: str, shard_id: int = 0, shard_count: int = 1
    ) -> list[tuple[str, dict[str, Any]]]:
        roles = [
            p.role(self.guild_id, "@everyone", p.MEMBER_PERMISSIONS),
            p.role(self.admin_role_id, "qabot-admins", p.MEMBER_PERMISSIONS, position=1),
        ]
        channels = [
            p.text_channel(self.channel_id, self.guild_id, "general"),
            p.text_channel(self.other_channel_id, self.guild_id, "off-topic"),
        ]
        members = [p.member(self.bot_user)] + [
            p.member(a.user, a.roles) for a in (self.alice, self.bob, self.owner)
        ]
        guilds = [p.guild(self.guild_id, self.owner.id, roles, channels, members)]
        for extra in self.guilds:
            guilds.append(
                p.guild(
                    extra.id,
                    extra.owner.id,
                    [p.role(extra.id, "@everyone", p.MEMBER_PERMISSIONS)],
                    [p.text_channel(extra.channel_id, extra.id, "general")],
                    [p.member(self.bot_user)]
                    + [p.member(a.user, a.roles) for a in (extra.owner, extra.member)],
                    name=extra.name,
                )
            )
        ours = [g for g in guilds if shard_of(g["id"], shard_count) == shard_id]
        ready = {
            "v": 10,
            "user": {**self.bot_user, "verified": True, "mfa_enabled": False},
            "guilds": [{"id": g["id"], "unavailable": True} for g in ours],
            "session_id": session_id,
            "resume_gateway_url": self.gateway_url,
            "application": {"id": self.app_id, "flags": 0},
            "private_channels": [],
            "relationships": [],
            "presences": [],
        }
        if shard_count > 1:
            ready["shard"] = [shard_id, shard_count]
        events: list[tuple[str, dict[str, Any]]] = [("READY", ready)]
        for guild in ours:
            # the active threads, as Discord sends them
            guild["threads"] = [t for t in self.threads.values() if t["guild_id"] == guild["id"]]
            events.append(("GUILD_CREATE", guild))
        return events

    def add_guild(self, name: str = "Second Server") -> FakeGuild:
        """Another server with the bot in it (call before the bot starts)."""
        guild = FakeGuild(
            id=self.snowflake(),
            name=name,
            channel_id=self.snowflake(),
            owner=Actor(
                p.user(self.snowflake(), f"{name}-owner"), permissions=p.MANAGER_PERMISSIONS
            ),
            member=Actor(p.user(self.snowflake(), f"{name}-member")),
        )
        self.guilds.append(guild)
        self._channel_guild[guild.channel_id] = guild.id
        return guild

    # ---- acting as users -------------------------------------------------------------------
    def new_member(self, name: str) -> Actor:
        """Another ordinary member of the server (sent to the bot with their first message)."""
        actor = Actor(p.user(self.snowflake(), name))
        self.others.append(actor)
        return actor

    async def say(
        self,
        content: str,
        *,
        actor: Actor | None = None,
        channel_id: str | None = None,
        mention_bot: bool = True,
        mention_everyone: bool = False,
    ) -> dict[str, Any]:
        """A member posts ``content`` in a guild channel or thread (mentioning the bot)."""
        actor = actor or self.alice
        channel_id = channel_id or self.channel_id
        if mention_bot:
            content = f"<@{self.app_id}> {content}"
        msg = p.message(
            self.snowflake(),
            channel_id,
            actor.user,
            content,
            guild_id=self._guild_of(channel_id) or self.guild_id,
            author_member=p.member(actor.user, actor.roles),
            mentions=[self.bot_user] if mention_bot else [],
            mention_everyone=mention_everyone,
        )
        self.messages[msg["id"]] = msg
        await self.gateway.dispatch("MESSAGE_CREATE", msg)
        return msg

    async def direct_message(self, content: str, *, actor: Actor | None = None) -> dict[str, Any]:
        actor = actor or self.alice
        channel_id = self.dm_channels.setdefault(actor.id, self.snowflake())
        msg = p.message(self.snowflake(), channel_id, actor.user, content)
        self.messages[msg["id"]] = msg
        await self.gateway.dispatch("MESSAGE_CREATE", msg)
        return msg

    def add_attachment(self, filename: str, data: bytes) -> dict[str, Any]:
        self.attachments[filename] = data
        return {
            "id": self.snowflake(),
            "filename": filename,
            "size": len(data),
            "url": f"http://127.0.0.1:{self.port}/cdn/attachments/{filename}",
            "proxy_url": f"http://127.0.0.1:{self.port}/cdn/attachments/{filename}",
            "content_type": "text/plain",
        }

    async def slash(
        self,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        actor: Actor | None = None,
        channel_id: str | None = None,
        attachment: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A member uses ``/name`` with ``options`` (an attachment goes in ``attachment``; a
        channel option's value is a channel id, resolved as Discord does)."""
        command = next(c for c in self.commands if c["name"] == name)
        opts = []
        channels: dict[str, Any] = {}
        for option in command.get("options", []):
            if option["name"] in (options or {}):
                opts.append(
                    {
                        "name": option["name"],
                        "type": option["type"],
                        "value": options[option["name"]],
                    }
                )  # type: ignore[index]
            elif attachment is not None and option["type"] == 11:
                opts.append({"name": option["name"], "type": 11, "value": attachment["id"]})
        for option in opts:
            if option["type"] == 7:  # a channel: its id, and the channel under "resolved"
                cid = str(option["value"])
                guild_id = self._guild_of(cid) or self.guild_id
                channel = {**p.text_channel(cid, guild_id, "general")}
                channels[cid] = {**channel, "permissions": p.MEMBER_PERMISSIONS}
        data: dict[str, Any] = {"id": command["id"], "name": name, "type": 1, "options": opts}
        resolved: dict[str, Any] = {}
        if attachment is not None:
            resolved["attachments"] = {attachment["id"]: attachment}
        if channels:
            resolved["channels"] = channels
        if resolved:
            data["resolved"] = resolved
        return await self._interact(2, data, actor or self.alice, channel_id or self.channel_id)

    async def click(
        self, message: dict[str, Any], custom_id: str, *, actor: Actor | None = None
    ) -> dict[str, Any]:
        """A member presses the button ``custom_id`` on ``message``."""
        data = {"custom_id": custom_id, "component_type": 2}
        return await self._interact(
            3, data, actor or self.alice, message["channel_id"], message=message
        )

    async def _interact(
        self,
        kind: int,
        data: dict[str, Any],
        actor: Actor,
        channel_id: str,
        message: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        guild_id = self._guild_of(channel_id) or self.guild_id
        channel = self.threads.get(channel_id) or p.text_channel(channel_id, guild_id, "general")
        interaction: dict[str, Any] = {
            "id": self.snowflake(),
            "application_id": self.app_id,
            "type": kind,
            "token": "itoken." + secrets.token_urlsafe(24),
            "version": 1,
            "guild_id": guild_id,
            "channel_id": channel_id,
            "channel": channel,
            "member": {**p.member(actor.user, actor.roles), "permissions": actor.permissions},
            "data": data,
            "app_permissions": p.MEMBER_PERMISSIONS,
            "locale": "en-US",
            "guild_locale": "en-US",
            "entitlements": [],
            "authorizing_integration_owners": {"0": guild_id},
            "context": 0,
            "attachment_size_limit": 26214400,
        }
        if message is not None:
            interaction["message"] = message
        self.interactions[interaction["token"]] = interaction
        await self.gateway.dispatch("INTERACTION_CREATE", interaction)
        return interaction

    def for_interaction(self, interaction: dict[str, Any]) -> list[Request]:
        """The requests answering ``interaction`` (callback, followups, edits), in order."""
        token = interaction["token"]
        return [r for r in self.requests if f"/{token}" in r.path]


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """A JSON response with exactly ``application/json`` (what discord.py checks for)."""
    headers = {**(headers or {}), "Content-Type": "application/json"}
    return web.Response(body=json.dumps(data).encode(), status=status, headers=headers)


def _server_error(status: int) -> web.Response:
    """What Discord's edge answers on a server error: JSON for a 500, an HTML page otherwise."""
    if status == 500:
        return _json({"message": "500: Internal Server Error", "code": 0}, status=500)
    html = f"<html><body><h1>{status} {HTTPStatus(status).phrase}</h1></body></html>"
    return web.Response(text=html, status=status, content_type="text/html")


def _payload_json(raw: bytes) -> Any:
    match = re.search(rb'name="payload_json"\r\n(?:[^\r\n]*\r\n)*\r\n(.*?)\r\n--', raw, re.S)
    return json.loads(match.group(1)) if match else None
