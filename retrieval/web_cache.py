"""What qabot remembers about web pages between ingests, in ``web.sqlite`` in the data directory.

* ``pages``: per requested URL, the ``ETag`` / ``Last-Modified`` the server sent, the text
  extracted then and its links, so a re-ingest can ask "changed since?" and, on ``304 Not
  Modified``, hand the indexer the same text (which it then finds stored and counts as
  unchanged). Keeping the text also means a 304 never loses a page, even for a collection
  that does not have it yet.
* ``crawls``: per collection and crawl root, the pages that crawl found the last time it ran
  to the end; only against that record can a later complete crawl say a page is gone.

Writes are single transactions, so a crash leaves either the old row or the new one.
"""

from __future__ import annotations

import sqlite3
import threading
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from qabot.errors import StoreError

SCHEMA = """
CREATE TABLE IF NOT EXISTS pages (
    url TEXT PRIMARY KEY,
    final_url TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    text BLOB NOT NULL,
    links TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS crawls (
    collection TEXT NOT NULL,
    root TEXT NOT NULL,
    source TEXT NOT NULL,
    PRIMARY KEY (collection, root, source)
);
"""


@dataclass(frozen=True, slots=True)
class CachedPage:
    final_url: str
    etag: str | None
    last_modified: str | None
    text: str
    #: The page's links, for a crawl that gets a 304 and so no body to read them from.
    links: tuple[str, ...] = ()


class WebCache:
    """The ``pages`` and ``crawls`` tables; safe to share between threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, check_same_thread=False, timeout=30)
            self._db.executescript(SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"Cannot open the web page cache {path}: {exc}") from exc

    @classmethod
    def in_dir(cls, data_dir: Path) -> WebCache:
        return cls(data_dir / "web.sqlite")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ---- pages -------------------------------------------------------------------------------
    def page(self, url: str) -> CachedPage | None:
        with self._lock:
            row = self._db.execute(
                "SELECT final_url, etag, last_modified, text, links FROM pages WHERE url = ?",
                (url,),
            ).fetchone()
        if row is None:
            return None
        text = zlib.decompress(row[3]).decode("utf-8")
        return CachedPage(row[0], row[1], row[2], text, tuple(row[4].split()))

    def save_page(self, url: str, page: CachedPage) -> None:
        data = zlib.compress(page.text.encode("utf-8"))
        self._write(
            "INSERT OR REPLACE INTO pages VALUES (?, ?, ?, ?, ?, ?)",
            [(url, page.final_url, page.etag, page.last_modified, data, "\n".join(page.links))],
        )

    # ---- crawls ------------------------------------------------------------------------------
    def crawl_record(self, collection: str, root: str) -> set[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT source FROM crawls WHERE collection = ? AND root = ?", (collection, root)
            ).fetchall()
        return {r[0] for r in rows}

    def recorded_elsewhere(self, collection: str, root: str, sources: Iterable[str]) -> set[str]:
        """Those of ``sources`` that another crawl root of ``collection`` has found."""
        sources = list(sources)
        with self._lock:
            found = {
                r[0]
                for s in sources
                for r in self._db.execute(
                    "SELECT source FROM crawls WHERE collection = ? AND root != ? AND source = ?",
                    (collection, root, s),
                )
            }
        return found

    def set_crawl_record(self, collection: str, root: str, sources: Iterable[str]) -> None:
        rows = [(collection, root, s) for s in sorted(set(sources))]
        with self._lock:
            try:
                with self._db:
                    self._db.execute(
                        "DELETE FROM crawls WHERE collection = ? AND root = ?", (collection, root)
                    )
                    self._db.executemany("INSERT INTO crawls VALUES (?, ?, ?)", rows)
            except sqlite3.Error as exc:
                raise StoreError(f"Cannot write the web page cache {self.path}: {exc}") from exc

    def _write(self, sql: str, rows: list[tuple]) -> None:
        with self._lock:
            try:
                with self._db:
                    self._db.executemany(sql, rows)
            except sqlite3.Error as exc:
                raise StoreError(f"Cannot write the web page cache {self.path}: {exc}") from exc
