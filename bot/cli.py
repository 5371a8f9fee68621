"""The ``qabot`` command line (Typer + Rich). Thin: every command calls the pipeline."""

from __future__ import annotations

import importlib
import pkgutil

import typer

from bot import commands
from bot.commands import core

app = typer.Typer(
    help="Answer questions about your documents, with verified, verbatim citations.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
core.register(app)
for module in sorted(m.name for m in pkgutil.iter_modules(commands.__path__)):
    if module != "core":
        importlib.import_module(f"bot.commands.{module}").register(app)


def main() -> None:  # pragma: no cover - console entry point
    app()
