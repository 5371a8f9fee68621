"""Which collection answers where: a knowledge base per server, operator and admin mappings.

Where a question or an admin command comes from (server, channel, the thread's parent)
decides the collection, first match wins:

1. the operator's ``channel:<id>=<name>`` (``DISCORD_COLLECTIONS``), for the channel or, in a
   thread, its parent channel;
2. a server admin's ``/knowledge`` mapping of that channel;
3. the operator's ``guild:<id>=<name>``, then ``guild:*=<name>``;
4. the server's own knowledge base, ``guild-<server id>``.

Direct messages are answered from ``DISCORD_DM_COLLECTION`` (default ``QABOT_COLLECTION``,
where the seed documents go), never from a server's knowledge base.

An admin may change (``/ingest``, ``/reindex``) only a collection that belongs to their
server alone: a collection that DMs, every server, or another server also answer from is the
operator's (``qabot ingest --collection NAME``); otherwise one server could plant answers in
another's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from answering.pipelines import PipelinePool
from bot.discord.kb_store import KnowledgeStore
from qabot.errors import InputError
from qabot.settings import Settings
from qabot.types import IngestReport
from retrieval.indexer import Progress
from retrieval.store import validate_collection_name

if TYPE_CHECKING:
    from retrieval.web import WebRequest

GUILD_PREFIX = "guild-"
_ENTRY = re.compile(r"^(guild|channel):(\d{1,20}|\*)=(.+)$")


def server_collection(guild_id: int) -> str:
    """A server's own knowledge base (a valid collection name: at most 26 characters)."""
    return f"{GUILD_PREFIX}{guild_id}"


@dataclass(frozen=True, slots=True)
class OperatorMappings:
    """``DISCORD_COLLECTIONS``, parsed."""

    guilds: dict[int, str] = field(default_factory=dict)
    channels: dict[int, str] = field(default_factory=dict)
    every_guild: str | None = None

    def names(self) -> set[str]:
        found = set(self.guilds.values()) | set(self.channels.values())
        return found | ({self.every_guild} if self.every_guild else set())


def parse_mappings(text: str) -> OperatorMappings:
    """Parse ``guild:<id>=<name>, guild:*=<name>, channel:<id>=<name>`` (commas or spaces
    between entries); raises :class:`InputError` with one line naming the bad entry."""
    guilds: dict[int, str] = {}
    channels: dict[int, str] = {}
    every: str | None = None
    for entry in text.replace(",", " ").split():
        match = _ENTRY.match(entry)
        if match is None or (match[1] == "channel" and match[2] == "*"):
            raise InputError(
                f"DISCORD_COLLECTIONS: {entry!r} is not guild:<id>=<collection>, "
                "guild:*=<collection> or channel:<id>=<collection>."
            )
        kind, key, name = match[1], match[2], match[3]
        try:
            validate_collection_name(name)
        except InputError as exc:
            raise InputError(f"DISCORD_COLLECTIONS: {exc}") from None
        if key == "*":
            if every not in (None, name):
                raise InputError(f"DISCORD_COLLECTIONS: guild:* is given twice ({entry!r}).")
            every = name
            continue
        table = guilds if kind == "guild" else channels
        if table.get(int(key), name) != name:
            raise InputError(f"DISCORD_COLLECTIONS: {kind}:{key} is given twice ({entry!r}).")
        table[int(key)] = name
    return OperatorMappings(guilds, channels, every)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a message or a command comes from: ``guild_id`` is ``None`` in a DM."""

    guild_id: int | None
    channel_id: int | None = None
    parent_id: int | None = None  # a thread's channel

    @classmethod
    def of(cls, channel: object, guild_id: int | None = None) -> Place:
        guild = getattr(channel, "guild", None)
        gid = guild_id if guild_id is not None else getattr(guild, "id", None)
        if gid is None:
            return cls(None)
        return cls(gid, getattr(channel, "id", None), getattr(channel, "parent_id", None))

    @classmethod
    def of_interaction(cls, interaction: Any) -> Place:
        """Where an interaction comes from (a thread's parent channel included)."""
        if interaction.guild_id is None:
            return cls(None)
        parent = getattr(interaction.channel, "parent_id", None)
        return cls(interaction.guild_id, interaction.channel_id, parent)

    @property
    def channels(self) -> tuple[int, ...]:
        return tuple(c for c in (self.channel_id, self.parent_id) if c is not None)


@dataclass(frozen=True, slots=True)
class Route:
    """The collection that answers a place, and whether that server's admins may change it
    (``why_not`` says why they may not)."""

    collection: str
    writable: bool = True
    why_not: str = ""


class Knowledge(Protocol):
    """What the bot needs to know about knowledge bases (see :class:`KnowledgeBases`)."""

    def route(self, place: Place) -> Route: ...

    def pipeline(self, collection: str) -> Any: ...

    def is_empty(self, collection: str) -> bool: ...

    def ingest(
        self,
        collection: str,
        paths: Sequence[Path],
        progress: Progress | None = None,
        *,
        web: WebRequest | None = None,
    ) -> IngestReport: ...

    def setup(self) -> None: ...


class SingleKnowledgeBase:
    """Every server, channel and DM answered from one given pipeline, which any server's
    admins may change: what ``create_bot(pipeline=...)`` gives (one community, or tests)."""

    def __init__(self, pipeline: Any) -> None:
        self._pipeline = pipeline
        self.collection = str(getattr(pipeline, "collection", "default"))

    def route(self, place: Place) -> Route:
        return Route(self.collection)

    def pipeline(self, collection: str) -> Any:
        return self._pipeline

    def is_empty(self, collection: str) -> bool:
        return False  # as before: a question abstains when nothing matches

    def ingest(
        self,
        collection: str,
        paths: Sequence[Path],
        progress: Progress | None = None,
        *,
        web: WebRequest | None = None,
    ) -> IngestReport:
        extra = {"web": web} if web is not None else {}
        report: IngestReport = self._pipeline.ingest(paths, progress, **extra)
        return report

    def setup(self) -> None:
        self._pipeline.ensure_seeded()


class KnowledgeBases:
    """A knowledge base per server, with the operator's and the admins' mappings (see the
    module docstring); one pipeline per collection from a :class:`PipelinePool`.

    ``guild_of_channel`` tells which server a channel id belongs to (the bot's cache), to
    decide whether an operator's ``channel:`` entries keep a collection within one server.
    """

    def __init__(
        self,
        settings: Settings,
        store: KnowledgeStore,
        pool: PipelinePool | None = None,
        guild_of_channel: Callable[[int], int | None] = lambda _c: None,
    ) -> None:
        self.settings = settings
        self.operator = parse_mappings(settings.discord_collections)
        self.dm_collection = validate_collection_name(settings.dm_collection)
        self.store = store
        self.pool = pool or PipelinePool(settings, settings.discord_open_collections)
        self.guild_of_channel = guild_of_channel

    # ---- routing -----------------------------------------------------------------------------
    def route(self, place: Place) -> Route:
        guild = place.guild_id
        if guild is None:
            return Route(self.dm_collection, False, "direct messages are answered from it")
        for channel in place.channels:
            if channel in self.operator.channels:
                return self._route(self.operator.channels[channel], guild)
            mapped = self.store.channel(channel)
            if mapped is not None and mapped[0] == guild:
                return self._route(mapped[1], guild)
        if guild in self.operator.guilds:
            return self._route(self.operator.guilds[guild], guild)
        if self.operator.every_guild:
            return self._route(self.operator.every_guild, guild)
        return Route(server_collection(guild))

    def _route(self, collection: str, guild: int) -> Route:
        why_not = self._shared(collection, guild)
        return Route(collection, not why_not, why_not)

    def _shared(self, collection: str, guild: int) -> str:
        """Why ``collection`` is not this server's alone ("" when it is)."""
        if collection == self.dm_collection:
            return "direct messages are answered from it"
        if collection == self.operator.every_guild:
            return "every server is answered from it"
        if collection.startswith(GUILD_PREFIX) and collection != server_collection(guild):
            return "it is another server's knowledge base"
        owner = self.store.owner(collection)
        if owner is not None and owner != guild:
            return "it belongs to another server"
        guilds = {g for g, name in self.operator.guilds.items() if name == collection}
        for channel, name in self.operator.channels.items():
            if name == collection:
                guilds.add(self.guild_of_channel(channel) or -1)  # unknown: not ours
        if guilds - {guild}:
            return "other servers are answered from it too"
        return ""

    # ---- admin mappings --------------------------------------------------------------------
    def map_channel(self, guild: int, channel: int, collection: str | None) -> str:
        """Point one of ``guild``'s channels at ``collection`` (``None``: back to the server's
        knowledge base); returns what to tell the admin. Raises :class:`InputError` when the
        channel or the collection is not theirs to map."""
        if channel in self.operator.channels:
            raise InputError(
                "The bot's operator has mapped that channel (DISCORD_COLLECTIONS); "
                "ask them to change it."
            )
        if collection is None or collection == server_collection(guild):
            removed = self.store.unmap_channel(guild, channel)
            where = self.route(Place(guild, channel)).collection
            return f"<#{channel}> answers from `{where}`" + ("" if removed else " (as before)")
        name = validate_collection_name(collection)
        if name in self.operator.names() or name in (
            self.dm_collection,
            self.settings.qabot_collection,
        ):
            raise InputError(f"`{name}` is managed by the bot's operator: choose another name.")
        if name.startswith(GUILD_PREFIX):
            raise InputError(f"`{name}` is another server's knowledge base: choose another name.")
        owner = self.store.owner(name)
        if owner is None and self.pool.exists(name):
            raise InputError(f"`{name}` already exists in the store: choose another name.")
        if owner not in (None, guild) or not self.store.map_channel(guild, channel, name):
            raise InputError(f"`{name}` belongs to another server: choose another name.")
        return f"<#{channel}> and its threads now answer from `{name}`"

    # ---- pipelines ---------------------------------------------------------------------------
    def pipeline(self, collection: str) -> Any:
        return self.pool.get(collection)

    def is_empty(self, collection: str) -> bool:
        """Whether the collection has no documents (as its answers see it). Call it off the
        event loop: it may read the corpus."""
        return not self.pool.get(collection).corpus().chunks

    def ingest(
        self,
        collection: str,
        paths: Sequence[Path],
        progress: Progress | None = None,
        *,
        web: WebRequest | None = None,
    ) -> IngestReport:
        """Ingest into ``collection`` with the pool's ingest model handle; its corpus is
        read first, so that its questions are answered from it as it was meanwhile (even
        the first ingest of an empty one)."""
        pipeline = self.pool.get(collection)
        pipeline.corpus()
        return pipeline.ingest(paths, progress, web=web, embedder=self.pool.ingest_embedder)

    def setup(self) -> None:
        """The seed documents go into the DM collection only (when it is empty)."""
        self.pool.get(self.dm_collection).ensure_seeded()
