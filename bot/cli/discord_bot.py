"""``qabot discord`` (run the bot) and ``qabot feedback`` (summarise the votes)."""

from __future__ import annotations

import json
import logging
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

console = Console()
errors = Console(stderr=True)


def run_discord(
    log_level: Annotated[
        str, typer.Option("--log-level", help="debug, info, warning or error.")
    ] = "info",
) -> None:
    """Start the Discord bot (DISCORD_TOKEN and the other settings from the environment/.env)."""
    import discord

    from bot.cli.core import user_errors
    from bot.discord.app import RedactSecrets, create_bot
    from qabot.settings import load_settings

    with user_errors():
        settings = load_settings()
    if settings.discord_token is None or not settings.discord_token.get_secret_value().strip():
        errors.print(
            "[bold red]Error:[/] DISCORD_TOKEN is not set: put it in the environment or .env "
            '(see "Run it in Discord" in the README).',
            highlight=False,
        )
        raise typer.Exit(2)
    token = settings.discord_token.get_secret_value().strip()
    handler = logging.StreamHandler()
    handler.addFilter(RedactSecrets(token))
    level = getattr(logging, log_level.upper(), logging.INFO)
    with user_errors():
        bot = create_bot(settings)
        try:
            bot.run(token, log_handler=handler, log_level=level, root_logger=True)
        except discord.LoginFailure:
            errors.print(
                "[bold red]Error:[/] Discord refused DISCORD_TOKEN (LoginFailure): copy the bot's "
                "token again from the Developer Portal (Bot, Reset Token).",
                highlight=False,
            )
            raise typer.Exit(1) from None


def feedback(
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    recent: Annotated[int, typer.Option("--recent", min=0, help="Thumbs-down shown.")] = 5,
) -> None:
    """Summarise the thumbs-up / thumbs-down votes given in Discord."""
    from bot.cli.core import user_errors
    from bot.discord.feedback_store import FeedbackStore
    from qabot.settings import load_settings

    with user_errors():
        path = load_settings().data_dir / "discord" / "feedback.sqlite3"
    summary = FeedbackStore(path).summary(recent=recent)
    if as_json:
        typer.echo(json.dumps(summary.to_dict(), ensure_ascii=False))
        return
    helpful = f"{summary.up / summary.votes:.0%}" if summary.votes else "n/a"
    console.print(
        f"Answers posted: {summary.answers}   votes: {summary.votes}   "
        f"👍 {summary.up}   👎 {summary.down}   helpful: {helpful}",
        highlight=False,
    )
    if summary.recent_down:
        table = Table("Question", "Answer", title="Latest thumbs-down", show_lines=True)
        for question, answer in summary.recent_down:
            table.add_row(question, answer if len(answer) <= 300 else answer[:299] + "…")
        console.print(table)


def register(app: typer.Typer) -> None:
    app.command("discord")(run_discord)
    app.command("feedback")(feedback)
