"""Load documents from files and directories: .txt, .md, .html/.htm (visible text), .pdf."""

from __future__ import annotations

import os
import stat
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
_READ_BLOCK = 1024 * 1024

#: What a file was when it was read: (device, inode, size, mtime in ns). A different
#: signature later means the file changed (or was replaced) since.
Signature = tuple[int, int, int, int]


class LoadError(Exception):
    """A file that cannot be read; ``str()`` is the reason, for the skip report."""


@dataclass(frozen=True, slots=True)
class LoadResult:
    path: str  # for messages: as the user named it
    document: Document | None
    error: str | None = None
    source: str = ""  # the stored identity (see source_id)
    signature: Signature | None = None
    missing: bool = False  # the file is gone (deleted since it was listed)


def display_path(path: Path) -> str:
    """The path as the user gave it: relative stays relative, normalised, with '/' separators."""
    return as_text(Path(os.path.normpath(path)).as_posix())


def as_text(name: str) -> str:
    """A file name as valid text: bytes that are not UTF-8 become ``\\xNN`` escapes.

    Python keeps such bytes as lone surrogates, which cannot be stored, printed or encoded.
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def source_id(path: Path, root: Path | None = None) -> str:
    """A document's identity in the store: its absolute path, with '/' separators.

    The directory named on the command line (``root``; for a single file, its parent) is
    resolved, so a folder ingested by a relative and by an absolute path, or from another
    working directory, is one folder; the part below it is kept as found, so a file under
    ``root`` stays under it even when it is a symlink to somewhere else.
    """
    if root is None:
        root, path = path.parent, Path(path.name)
    else:
        path = path.relative_to(root)
    base = Path(os.path.abspath(root)).resolve()
    return as_text((base / path).as_posix())


def root_id(path: Path) -> str:
    """The identity of a path named on the command line (directory or file)."""
    return as_text(Path(os.path.abspath(path)).resolve().as_posix())


def display_source(source: str, cwd: Path | None = None) -> str:
    """How a stored source is shown: relative to the working directory when under it.

    Sources stored by older versions (relative paths) are shown as they are.
    """
    if not source.startswith("/"):
        return source
    try:
        base = as_text((cwd or Path.cwd()).resolve().as_posix()).rstrip("/") + "/"
    except OSError:  # the working directory was deleted
        return source
    return source[len(base) :] if source.startswith(base) and len(source) > len(base) else source


def iter_files(paths: Iterable[Path]) -> Iterator[tuple[Path, str]]:
    """``(path, identity)`` of the supported files under ``paths`` (directories walked
    recursively, sorted). Entries that are not directories are all yielded, FIFOs and devices
    too, so that the load names them as skipped instead of passing over them in silence."""
    for path in paths:
        if path.is_dir():
            for child in sorted(path.rglob("*")):
                hidden = any(part.startswith(".") for part in child.relative_to(path).parts)
                if hidden or child.suffix.lower() not in SUPPORTED_SUFFIXES or child.is_dir():
                    continue
                yield child, source_id(child, path)
        else:
            yield path, source_id(path)


_KINDS = (
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
    (stat.S_ISDIR, "a directory"),
)


def _not_regular(mode: int) -> LoadError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return LoadError(f"not a regular file ({kind})")


def signature(st: os.stat_result) -> Signature:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def read_regular(path: Path, limit: int = MAX_FILE_BYTES) -> tuple[bytes, Signature]:
    """The bytes of a regular file, at most ``limit`` of them, and its signature.

    A FIFO or device is refused before it is opened (opening a FIFO blocks until a writer
    comes; /dev/zero never ends). The file is opened non-blocking and checked again on the
    open descriptor, in case it was swapped since; the size cap counts the bytes read, since
    ``st_size`` says nothing for special files and can be outgrown while reading.
    """
    try:
        st = os.stat(path)
    except OSError as exc:
        raise LoadError(exc.strerror or "cannot be read") from exc
    if not stat.S_ISREG(st.st_mode):
        raise _not_regular(st.st_mode)
    too_big = LoadError(f"larger than {limit // (1024 * 1024)} MB")
    if st.st_size > limit:
        raise too_big
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0))
    except OSError as exc:
        raise LoadError(exc.strerror or "cannot be read") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _not_regular(st.st_mode)
        parts: list[bytes] = []
        total = 0
        while block := os.read(fd, min(_READ_BLOCK, limit + 1 - total)):
            parts.append(block)
            total += len(block)
            if total > limit:
                raise too_big
    except OSError as exc:
        raise LoadError(exc.strerror or "cannot be read") from exc
    finally:
        os.close(fd)
    return b"".join(parts), signature(st)


def load_file(path: Path, source: str | None = None) -> tuple[Document, Signature]:
    """Load one file into a :class:`Document` (and the signature of what was read), or raise
    :class:`LoadError` with the reason."""
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES and suffix != "":
        raise LoadError(f"unsupported file type '{suffix}'")
    data, sig = read_regular(path)
    if suffix in PDF_SUFFIXES:
        text = _pdf_text(data)
    elif suffix in HTML_SUFFIXES:
        text = _html_text(decode_text(data).lstrip("\ufeff"))
    else:
        text = decode_text(data)
    text = normalise_text(text)
    if not text.strip():
        raise LoadError("no text found")
    return Document(source=source or source_id(path), text=text), sig


def load_path(path: Path) -> Document:
    """Load one file into a :class:`Document`, or raise :class:`LoadError` with the reason."""
    return load_file(path)[0]


def load_one(path: Path, source: str) -> LoadResult:
    """Load one listed file; a failure is reported in the result, never raised."""
    try:
        document, sig = load_file(path, source)
    except LoadError as exc:
        return LoadResult(display_path(path), None, str(exc), source, missing=not _exists(path))
    return LoadResult(display_path(path), document, None, source, sig)


def _exists(path: Path) -> bool:
    return os.path.exists(path)


def load_paths(paths: Iterable[Path]) -> Iterator[LoadResult]:
    """Load every supported file under ``paths``; failures are reported, never raised."""
    for file, source in iter_files(paths):
        yield load_one(file, source)


def decode_text(data: bytes) -> str:
    """Decode bytes as text: UTF-8, else a confident detection.

    A UTF-8 BOM is kept, as U+FEFF, just as ``open(path, encoding="utf-8").read()`` keeps it:
    offsets then count the same characters as that text does. A file that is UTF-8 but for a
    few bad bytes (more valid multi-byte characters than invalid sequences) is decoded as
    UTF-8 with U+FFFD for the bad bytes, as ``errors="replace"`` does, rather than read in
    some legacy code page: legacy 8-bit text almost never forms valid UTF-8 sequences by
    chance, so valid ones outnumbering the errors says "UTF-8, damaged", not "Latin-1".
    Binary data (NUL bytes, or no encoding that explains the bytes) raises LoadError.
    """
    if b"\x00" in data[:8192] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise LoadError("binary file, not text")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    replaced = data.decode("utf-8", "replace")
    bad = replaced.count("\ufffd")
    non_ascii = len(replaced) - len(replaced.encode("ascii", "ignore"))
    if non_ascii - bad > bad:
        return replaced
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
    """Unify line endings as `open()` does (universal newlines): offsets match its text."""
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
