"""SQLite storage for answers shown in Discord and the votes on them.

Every answer the bot posts is saved (question, text, citations) under a short id that its
buttons carry, so that a vote or a "Sources" click works even after a restart. A vote keeps
a keyed hash of the user id, never the id itself; one vote per user and answer.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from qabot.types import Answer, Citation

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS answers (
    id TEXT PRIMARY KEY,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    abstained INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS feedback (
    answer_id TEXT NOT NULL REFERENCES answers(id),
    user_hash TEXT NOT NULL,
    vote INTEGER NOT NULL CHECK (vote IN (-1, 1)),
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    citations TEXT NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (answer_id, user_hash)
);
"""


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    id: str
    question: str
    text: str
    citations: list[Citation]
    abstained: bool


@dataclass(slots=True)
class FeedbackSummary:
    answers: int = 0
    up: int = 0
    down: int = 0
    recent_down: list[tuple[str, str]] = field(default_factory=list)  # (question, answer)

    @property
    def votes(self) -> int:
        return self.up + self.down

    def to_dict(self) -> dict:
        return {
            "answers": self.answers,
            "votes": self.votes,
            "up": self.up,
            "down": self.down,
            "recent_down": [{"question": q, "answer": a} for q, a in self.recent_down],
        }


class FeedbackStore:
    """A small SQLite database; every method opens its own connection (thread-safe)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._init_lock = threading.Lock()
        self._ready = False

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        with self._init_lock:
            if not self._ready:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with sqlite3.connect(self.path) as db:
                    db.executescript(SCHEMA)
                self._ready = True
        db = sqlite3.connect(self.path, timeout=10)
        try:
            with db:
                yield db
        finally:
            db.close()

    def _salt(self, db: sqlite3.Connection) -> bytes:
        row = db.execute("SELECT value FROM meta WHERE key = 'user_salt'").fetchone()
        if row is None:
            salt = secrets.token_hex(16)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('user_salt', ?)", (salt,))
            row = db.execute("SELECT value FROM meta WHERE key = 'user_salt'").fetchone()
        return bytes.fromhex(row[0])

    def user_hash(self, user_id: int) -> str:
        """A keyed hash of a Discord user id (the key is random and stays in the database)."""
        with self._connect() as db:
            return _hash(self._salt(db), user_id)

    def save_answer(self, answer: Answer) -> str:
        """Store ``answer`` and return the id its buttons carry."""
        answer_id = uuid.uuid4().hex[:16]
        citations = json.dumps([c.to_dict() for c in answer.citations], ensure_ascii=False)
        with self._connect() as db:
            db.execute(
                "INSERT INTO answers VALUES (?, ?, ?, ?, ?, ?)",
                (
                    answer_id,
                    answer.question,
                    answer.text,
                    citations,
                    int(answer.abstained),
                    time.time(),
                ),
            )
        return answer_id

    def get_answer(self, answer_id: str) -> StoredAnswer | None:
        with self._connect() as db:
            row = db.execute(
                "SELECT id, question, answer, citations, abstained FROM answers WHERE id = ?",
                (answer_id,),
            ).fetchone()
        if row is None:
            return None
        citations = [Citation(**c) for c in json.loads(row[3])]
        return StoredAnswer(row[0], row[1], row[2], citations, bool(row[4]))

    def vote(self, answer_id: str, user_id: int, vote: int) -> bool:
        """Record (or change) ``user_id``'s vote (+1 / -1); ``False`` if the answer is unknown."""
        if vote not in (-1, 1):
            raise ValueError("vote must be +1 or -1")
        with self._connect() as db:
            row = db.execute(
                "SELECT question, answer, citations FROM answers WHERE id = ?", (answer_id,)
            ).fetchone()
            if row is None:
                return False
            db.execute(
                "INSERT INTO feedback VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (answer_id, user_hash) DO UPDATE SET "
                "vote = excluded.vote, created_at = excluded.created_at",
                (answer_id, _hash(self._salt(db), user_id), vote, *row, time.time()),
            )
        return True

    def votes(self, answer_id: str) -> list[dict]:
        """The stored feedback rows of one answer (what a vote recorded)."""
        with self._connect() as db:
            db.row_factory = sqlite3.Row
            rows = db.execute(
                "SELECT * FROM feedback WHERE answer_id = ? ORDER BY created_at", (answer_id,)
            ).fetchall()
        return [dict(r) for r in rows]

    def summary(self, recent: int = 5) -> FeedbackSummary:
        if not self.path.exists():
            return FeedbackSummary()
        with self._connect() as db:
            answers = db.execute("SELECT COUNT(*) FROM answers").fetchone()[0]
            up, down = db.execute(
                "SELECT COALESCE(SUM(vote = 1), 0), COALESCE(SUM(vote = -1), 0) FROM feedback"
            ).fetchone()
            down_rows = db.execute(
                "SELECT question, answer FROM feedback WHERE vote = -1 "
                "ORDER BY created_at DESC LIMIT ?",
                (recent,),
            ).fetchall()
        return FeedbackSummary(answers, up, down, [(q, a) for q, a in down_rows])


def _hash(salt: bytes, user_id: int) -> str:
    return hmac.new(salt, str(user_id).encode(), hashlib.sha256).hexdigest()
