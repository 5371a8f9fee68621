"""The Typer application: every command module registers its commands on it."""

from __future__ import annotations

import typer

from bot.cli import backends, collections, core, discord_bot, eval

app = typer.Typer(
    help="Answer questions about your documents, with verified, verbatim citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
for module in (core, collections, backends, discord_bot, eval):
    module.register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()
