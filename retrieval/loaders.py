"""Load documents from files and directories: .txt, .md, .html/.htm (visible text), .pdf."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from qabot.types import Document

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
HTML_SUFFIXES = {".html", ".htm"}
PDF_SUFFIXES = {".pdf"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | PDF_SUFFIXES

#: Documents above this size are refused rather than risking memory on a stray dump.
MAX_FILE_BYTES = 50 * 1024 * 1024


class LoadError(Exception):
    """A file that cannot be read; ``str()`` is the reason, for the skip report."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    path: str
    document: Document | None
    error: str | None = None


def display_path(path: Path) -> str:
    """The path as the user gave it: relative stays relative, normalised, with '/' separators."""
    return Path(os.path.normpath(path)).as_posix()


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Yield supported files under ``paths`` (directories walked recursively, sorted)."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                hidden = any(part.startswith(".") for part in child.relative_to(path).parts)
                if child.is_file() and child.suffix.lower() in SUPPORTED_SUFFIXES and not hidden:
                    yield child
        else:
            yield path


def load_path(path: Path) -> Document:
    """Load one file into a :class:`Document`, or raise :class:`LoadError` with the reason."""
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise LoadError(exc.strerror or "cannot be read") from exc
    if size > MAX_FILE_BYTES:
        raise LoadError(f"larger than {MAX_FILE_BYTES // (1024 * 1024)} MB")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LoadError(exc.strerror or "cannot be read") from exc
    if suffix in PDF_SUFFIXES:
        text = _pdf_text(data)
    elif suffix in HTML_SUFFIXES:
        text = _html_text(decode_text(data))
    elif suffix in TEXT_SUFFIXES or suffix == "":
        text = decode_text(data)
    else:
        raise LoadError(f"unsupported file type '{suffix}'")
    text = normalise_text(text)
    if not text.strip():
        raise LoadError("no text found")
    return Document(source=display_path(path), text=text)


def load_paths(paths: Iterable[Path]) -> Iterator[LoadResult]:
    """Load every supported file under ``paths``; failures are reported, never raised."""
    for file in iter_files(paths):
        try:
            yield LoadResult(display_path(file), load_path(file))
        except LoadError as exc:
            yield LoadResult(display_path(file), None, str(exc))


def decode_text(data: bytes) -> str:
    """Decode bytes as text: UTF-8 (with or without BOM), else a confident detection.

    Binary data (NUL bytes, or no encoding that explains the bytes) raises LoadError.
    """
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoadError("binary file, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(data)
    # Short legacy text fits several code pages equally well; Windows-1252 is by far the most
    # common (WHATWG maps Latin-1 to it), so it wins whenever it is a plausible reading.
    best = next((m for m in matches if m.encoding == "cp1252" and m.chaos <= 0.2), None)
    best = best or matches.best()
    # chaos is the share of "mess" in the decoded text and coherence how well its letters
    # match some language: a mess, or text in no language, means the decoding is a guess,
    # and indexing a guess would put garbage into answers.
    if best is not None and best.chaos <= 0.2 and best.coherence > 0:
        return str(best)
    raise LoadError("unknown text encoding")


def normalise_text(text: str) -> str:
    """Unify line endings so that offsets are stable across platforms."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _html_text(html: str) -> str:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(["script", "style", "noscript", "template", "head", "svg"]):
        tag.decompose()
    lines = (line.strip() for line in soup.get_text("\n").splitlines())
    return "\n".join(line for line in lines if line)


def _pdf_text(data: bytes) -> str:
    import io

    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(io.BytesIO(data))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, TypeError) as exc:
        raise LoadError(f"unreadable PDF ({exc.__class__.__name__})") from exc
    return "\n\n".join(p.strip() for p in pages if p.strip())
