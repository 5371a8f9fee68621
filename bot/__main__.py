"""``python -m bot`` runs the ``qabot`` command line."""

from bot.cli import app

app(prog_name="qabot")
