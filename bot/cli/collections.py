"""``qabot copy-collection``: copy a collection, e.g. into a Discord server's knowledge base."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from bot.cli.core import user_errors

console = Console()


def copy_collection(
    source: Annotated[str, typer.Argument(help="The collection to copy.")],
    target: Annotated[str, typer.Argument(help="The new collection, e.g. guild-<server id>.")],
) -> None:
    """Copy SOURCE into the new collection TARGET (vectors included, nothing re-embedded).

    To give a Discord server the documents of an existing collection: copy it to
    guild-<server id>, the server's own knowledge base.
    """
    from qabot.settings import Settings
    from retrieval import embedders
    from retrieval.copying import copy_collection as copy
    from retrieval.store import open_client, validate_collection_name

    with user_errors():
        validate_collection_name(source)
        validate_collection_name(target)
        settings = Settings()
        url = settings.qabot_chroma_url
        client = open_client(settings.data_dir, url)
        embedder = embedders.select_embedder(settings)
        location = url or str(settings.data_dir)
        chunks = copy(client, source, target, settings.data_dir, location, embedder)
    console.print(f"Copied {chunks} chunks from {source} to {target}.", highlight=False)


def register(app: typer.Typer) -> None:
    app.command("copy-collection")(copy_collection)
