"""SQuAD v2 to a gold set: each paragraph becomes a document, each question a gold item."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

from evaluation.gold import GoldItem
from qabot.errors import InputError


@dataclass(frozen=True, slots=True)
class SquadSet:
    """The paragraphs to ingest (file name -> text) and the gold items that refer to them."""

    documents: dict[str, str]
    items: list[GoldItem]
    digest: str

    def cache_dir(self, data_dir: Path) -> Path:
        """Where the paragraphs of this file live in a data directory (never the repository)."""
        return data_dir / "eval" / f"squad-{self.digest}"

    @property
    def collection(self) -> str:
        return f"squad-{self.digest}"

    def write_documents(self, directory: Path) -> Path:
        """Write every paragraph as ``directory/<name>``; unchanged files are left alone."""
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in self.documents.items():
            path = directory / name
            if not path.exists() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
        return directory


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")[:40] or "article"


def _alternatives(answers: list[dict]) -> str:
    """The distinct answer texts as one ``A|B`` expect item ('|' inside an answer is dropped)."""
    seen: list[str] = []
    for a in answers:
        text = " ".join(str(a.get("text", "")).split())
        if text and "|" not in text and text.lower() not in (s.lower() for s in seen):
            seen.append(text)
    return "|".join(seen)


def convert(data: dict) -> tuple[dict[str, str], list[GoldItem]]:
    """Convert decoded SQuAD v2 JSON; answerable items expect any of their answer texts."""
    documents: dict[str, str] = {}
    items: list[GoldItem] = []
    try:
        for article in data["data"]:
            slug = _slug(str(article.get("title", "article")))
            for p, paragraph in enumerate(article["paragraphs"]):
                name = f"{slug}_{p:03d}.txt"
                documents[name] = paragraph["context"]
                for qa in paragraph["qas"]:
                    impossible = bool(qa.get("is_impossible", False))
                    expect = "" if impossible else _alternatives(qa.get("answers", []))
                    if not impossible and not expect:
                        continue
                    items.append(
                        GoldItem(
                            id=str(qa["id"]),
                            question=qa["question"],
                            expect=[expect] if expect else [],
                            sources=[] if impossible else [name],
                            answerable=not impossible,
                        )
                    )
    except (KeyError, TypeError) as exc:
        raise InputError(f"Not SQuAD v2 JSON: missing or malformed field {exc}.") from exc
    return documents, items


def load_squad(path: Path) -> SquadSet:
    """Read a SQuAD v2 JSON file."""
    try:
        raw = path.read_bytes()
        data = json.loads(raw)
    except OSError as exc:
        raise InputError(f"Cannot read {path}: {exc.strerror or exc}.") from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"{path} is not valid JSON ({exc.msg}).") from exc
    documents, items = convert(data)
    if not items:
        raise InputError(f"{path} holds no questions.")
    return SquadSet(documents, items, hashlib.sha1(raw).hexdigest()[:12])
