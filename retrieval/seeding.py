"""Whether a collection was ever initialised: the seed documents are for a new store only.

An ingest marks its collection as initialised (a file ``<collection>.initialised`` in the data
directory) before it writes anything. A collection that is empty and was never marked gets
the seeds; one that is empty but marked was emptied, lost (a damaged or deleted Chroma file)
or is being filled by a first ingest right now, and seeding it would hide that or mix the
seeds into the user's documents, so that is an error saying how to rebuild it. A store made
before this marker existed and holding documents is marked on first use; an empty one is
treated as new, as before.
"""

from __future__ import annotations

import os
from pathlib import Path

from qabot.errors import StoreError
from retrieval.store import Store


def marker_path(data_dir: Path, collection: str) -> Path:
    return data_dir / f"{collection}.initialised"


def mark_initialised(data_dir: Path, collection: str) -> None:
    """Record (once) that ``collection`` has been ingested into."""
    path = marker_path(data_dir, collection)
    if path.exists():
        return
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        tmp.write_text("initialised by the first ingest; see retrieval/seeding.py\n")
        os.replace(tmp, path)
    except OSError as exc:
        raise StoreError(f"Cannot write to the data directory {data_dir}: {exc.strerror}.") from exc


def needs_seeds(store: Store, data_dir: Path, collection: str) -> bool:
    """True for a collection never initialised and empty; False when it holds documents.

    An empty collection that was initialised raises :class:`StoreError`.
    """
    if store.count() > 0:
        mark_initialised(data_dir, collection)
        return False
    if not marker_path(data_dir, collection).exists():
        return True
    raise StoreError(
        f"The collection {collection!r} ({store.location}) has no documents, though documents "
        "were ingested into it: the store was emptied or lost, or a first ingest is still "
        "running. Run qabot ingest with your documents to rebuild it."
    )
