"""The ``qabot`` command line (Typer + Rich): one module per group of commands.

Thin: every command calls the answering pipeline. ``bot.cli:app`` is the console script.
"""

from bot.cli.app import app, main

__all__ = ["app", "main"]
