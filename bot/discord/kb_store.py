"""SQLite storage for the knowledge-base mappings that server admins make with ``/knowledge``.

Two tables: which collection a channel of a server answers from, and which server each
collection named that way belongs to (the first server to name it claims it, so that no
other server can point a channel at it and read its documents).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS channel_collections (
    channel_id INTEGER PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    collection TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS collection_owners (
    collection TEXT PRIMARY KEY,
    guild_id INTEGER NOT NULL,
    created_at REAL NOT NULL
);
"""


class KnowledgeStore:
    """A small SQLite database; every method opens its own connection (thread-safe).

    Reads are cached in memory (the bot is the only writer), so routing a question costs
    no disk access.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._channels: dict[int, tuple[int, str]] | None = None  # channel -> (guild, name)
        self._owners: dict[str, int] | None = None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                db.executescript(SCHEMA)
                yield db
        finally:
            db.close()

    def _load(self) -> tuple[dict[int, tuple[int, str]], dict[str, int]]:
        with self._lock:
            if self._channels is None or self._owners is None:
                with self._connect() as db:
                    rows = db.execute(
                        "SELECT channel_id, guild_id, collection FROM channel_collections"
                    ).fetchall()
                    owners = db.execute("SELECT collection, guild_id FROM collection_owners")
                    self._owners = {name: guild for name, guild in owners.fetchall()}
                self._channels = {c: (g, name) for c, g, name in rows}
            return self._channels, self._owners

    def channel(self, channel_id: int) -> tuple[int, str] | None:
        """(guild id, collection) that an admin mapped ``channel_id`` to, if any."""
        return self._load()[0].get(channel_id)

    def owner(self, collection: str) -> int | None:
        """The server that claimed ``collection``, if one did."""
        return self._load()[1].get(collection)

    def channels_of(self, guild_id: int) -> dict[int, str]:
        """The mapped channels of one server and their collections."""
        return {c: name for c, (g, name) in self._load()[0].items() if g == guild_id}

    def map_channel(self, guild_id: int, channel_id: int, collection: str) -> bool:
        """Map the channel, claiming ``collection`` for the server if nobody has; ``False``
        (and nothing changed) if another server claimed it first."""
        now = time.time()
        with self._lock, self._connect() as db:
            db.execute(
                "INSERT OR IGNORE INTO collection_owners VALUES (?, ?, ?)",
                (collection, guild_id, now),
            )
            (owner,) = db.execute(
                "SELECT guild_id FROM collection_owners WHERE collection = ?", (collection,)
            ).fetchone()
            if owner != guild_id:
                return False
            db.execute(
                "INSERT INTO channel_collections VALUES (?, ?, ?, ?) ON CONFLICT (channel_id) "
                "DO UPDATE SET collection = excluded.collection, guild_id = excluded.guild_id",
                (channel_id, guild_id, collection, now),
            )
            self._channels = self._owners = None
        return True

    def unmap_channel(self, guild_id: int, channel_id: int) -> bool:
        """Remove a channel's mapping (its collection stays the server's); ``False`` if
        there was none."""
        with self._lock, self._connect() as db:
            gone = db.execute(
                "DELETE FROM channel_collections WHERE channel_id = ? AND guild_id = ?",
                (channel_id, guild_id),
            ).rowcount
            self._channels = None
        return bool(gone)
