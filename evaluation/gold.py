"""Gold sets: JSONL files, one question a line, loaded and validated here.

A line is ``{"id", "question", "expect", "sources", "answerable", "forbid"}``:

* ``expect``: texts that must all appear in the answer (case-insensitive, whitespace
  normalised); ``"A|B"`` accepts either alternative;
* ``sources``: file names of the documents that hold the answer;
* ``answerable``: false when the documents do not answer it (the bot must abstain);
* ``forbid``: regular expressions (searched case-insensitively) the answer must not match.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from qabot.errors import InputError

FIELDS = {"id", "question", "expect", "sources", "answerable", "forbid"}


@dataclass(frozen=True, slots=True)
class GoldItem:
    """One gold question."""

    id: str
    question: str
    expect: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    answerable: bool = True
    forbid: list[str] = field(default_factory=list)

    def alternatives(self) -> list[list[str]]:
        """Each ``expect`` item split into its ``|`` alternatives."""
        return [[a.strip() for a in e.split("|") if a.strip()] for e in self.expect]

    def to_dict(self) -> dict:
        return asdict(self)


def _strings(value: object, name: str, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise InputError(f"{where}: {name!r} must be a list of non-empty strings.")
    return [v.strip() for v in value]


def parse_item(data: object, where: str) -> GoldItem:
    """Validate one decoded JSON line; ``where`` names it in error messages."""
    if not isinstance(data, dict):
        raise InputError(f"{where}: each line must be a JSON object.")
    unknown = set(data) - FIELDS
    if unknown:
        raise InputError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}.")
    qid, question = data.get("id"), data.get("question")
    if not isinstance(qid, str | int) or not str(qid).strip():
        raise InputError(f"{where}: 'id' must be a non-empty string.")
    if not isinstance(question, str) or not question.strip():
        raise InputError(f"{where}: 'question' must be a non-empty string.")
    answerable = data.get("answerable", True)
    if not isinstance(answerable, bool):
        raise InputError(f"{where}: 'answerable' must be true or false.")
    expect = _strings(data.get("expect"), "expect", where)
    sources = _strings(data.get("sources"), "sources", where)
    forbid = _strings(data.get("forbid"), "forbid", where)
    for pattern in forbid:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InputError(f"{where}: bad 'forbid' pattern {pattern!r}: {exc}.") from exc
    if answerable and not sources:
        raise InputError(f"{where}: an answerable question needs at least one source.")
    return GoldItem(str(qid).strip(), question, expect, sources, answerable, forbid)


def parse_lines(lines: Iterable[str], name: str = "gold") -> list[GoldItem]:
    """Parse JSONL lines (blank lines and ``#`` comments are skipped); ids must be unique."""
    items: list[GoldItem] = []
    seen: set[str] = set()
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name}:{n}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: invalid JSON ({exc.msg}).") from exc
        item = parse_item(data, where)
        if item.id in seen:
            raise InputError(f"{where}: duplicate id {item.id!r}.")
        seen.add(item.id)
        items.append(item)
    if not items:
        raise InputError(f"{name}: the gold set has no questions.")
    return items


def load_gold(path: Path) -> list[GoldItem]:
    """Read and validate a gold JSONL file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"Cannot read the gold set {path}: {exc.strerror or exc}.") from exc
    return parse_lines(text.splitlines(), str(path))


def dump_gold(items: Iterable[GoldItem], path: Path) -> None:
    """Write items as JSONL (used to save a converted SQuAD set)."""
    with path.open("w", encoding="utf-8") as fh:
        for item in items:
            fh.write(json.dumps(item.to_dict(), ensure_ascii=False) + "\n")
