"""Admin slash commands: ``/ingest``, ``/reindex``, ``/sources``, ``/stats``.

Only members with Manage Server (or the configured admin role) may use them; anyone else is
told so, politely and privately.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord import render
from bot.discord.render import NO_MENTIONS
from qabot.errors import QabotError
from qabot.types import IngestReport
from retrieval.loaders import SUPPORTED_SUFFIXES

if TYPE_CHECKING:
    from bot.discord.app import QabotBot

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 25 * 1024 * 1024
REFUSAL = "Sorry, only members with the Manage Server permission{role} can use this command."


class NotAdmin(app_commands.CheckFailure):
    """The member may not use admin commands."""


def is_admin(interaction: discord.Interaction[QabotBot]) -> bool:
    """Manage Server in this channel, or the configured admin role (by name or id)."""
    if interaction.guild is None or not isinstance(interaction.user, discord.Member):
        return False
    if interaction.permissions.manage_guild:
        return True
    wanted = interaction.client.settings.discord_admin_role
    if not wanted:
        return False
    return any(str(role.id) == wanted or role.name == wanted for role in interaction.user.roles)


def admin_only():
    async def predicate(interaction: discord.Interaction[QabotBot]) -> bool:
        if not is_admin(interaction):
            raise NotAdmin()
        return True

    return app_commands.check(predicate)


def describe_report(report: IngestReport) -> str:
    counts = (
        f"Added {len(report.added)}, updated {len(report.updated)}, "
        f"unchanged {len(report.unchanged)}, removed {len(report.removed)}; "
        f"{report.chunks_written} passages written."
    )
    skipped = [f"- skipped `{render.source_name(p)}`: {why}" for p, why in report.skipped.items()]
    return "\n".join([counts, *skipped])


class Admin(commands.Cog):
    """Manage the document collection and look at the bot's numbers."""

    def __init__(self, bot: QabotBot) -> None:
        self.bot = bot

    @property
    def uploads(self) -> Path:
        return self.bot.settings.data_dir / "discord" / "uploads"

    async def cog_app_command_error(
        self, interaction: discord.Interaction, error: app_commands.AppCommandError
    ) -> None:
        if isinstance(error, NotAdmin):
            role = self.bot.settings.discord_admin_role
            text = REFUSAL.format(role=f" or the {role} role" if role else "")
        else:
            log.error("Admin command failed", exc_info=error)
            text = "That didn't work, sorry. The details are in the bot's log."
        await _reply(interaction, text)

    @app_commands.command(
        name="ingest", description="Add a document (txt, md, rst, html, pdf) or a web page."
    )
    @app_commands.describe(
        file="The document to add or update",
        url="A web page or sitemap (http:// or https://) to add or update",
        crawl="With url: also follow its links on the same site (up to QABOT_WEB_MAX_PAGES)",
    )
    @admin_only()
    async def ingest(
        self,
        interaction: discord.Interaction,
        file: discord.Attachment | None = None,
        url: str | None = None,
        crawl: bool = False,
    ) -> None:
        if (file is None) == (url is None):
            await _reply(interaction, "Give either a file or a url (one of the two).")
            return
        if url is not None:
            await self._ingest_url(interaction, url, crawl)
            return
        assert file is not None
        name = PurePath(file.filename).name
        suffix = PurePath(name).suffix.lower()
        if suffix not in SUPPORTED_SUFFIXES:
            kinds = ", ".join(sorted(SUPPORTED_SUFFIXES))
            await _reply(interaction, f"I can't read `{name}`: send one of {kinds}.")
            return
        if file.size > MAX_UPLOAD_BYTES:
            await _reply(interaction, f"`{name}` is too large (the limit is 25 MB).")
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        path = self.uploads / name
        path.parent.mkdir(parents=True, exist_ok=True)
        await file.save(path)
        try:
            report = await asyncio.to_thread(self.bot.pipeline.ingest, [path])
        except QabotError as exc:
            await _reply(interaction, str(exc))
            return
        await _reply(interaction, f"`{name}`: {describe_report(report)}")

    async def _ingest_url(self, interaction: discord.Interaction, url: str, crawl: bool) -> None:
        from retrieval.web import WebRequest, check_url

        try:
            address = check_url(url)
        except QabotError as exc:
            await _reply(interaction, str(exc))
            return
        await interaction.response.defer(ephemeral=True, thinking=True)
        request = WebRequest((address,), crawl, self.bot.settings.qabot_web_max_pages)
        try:
            report = await asyncio.to_thread(self.bot.pipeline.ingest, [], web=request)
        except QabotError as exc:
            await _reply(interaction, str(exc))
            return
        await _reply(interaction, f"<{address}>: {describe_report(report)}")

    @app_commands.command(name="reindex", description="Re-read every document in the collection.")
    @admin_only()
    async def reindex(self, interaction: discord.Interaction) -> None:
        await interaction.response.defer(ephemeral=True, thinking=True)
        from retrieval.web import WebRequest, is_url

        sources = await asyncio.to_thread(self.bot.pipeline.sources)
        urls = tuple(s for s in sources if is_url(s))  # re-fetched (conditionally), one by one
        files = [s for s in sources if not is_url(s)]
        present = [Path(s) for s in files if Path(s).exists()]
        missing = [s for s in files if not Path(s).exists()]
        web = WebRequest(urls, max_pages=max(len(urls), 1)) if urls else None
        try:
            report = await asyncio.to_thread(self.bot.pipeline.ingest, present, web=web)
        except QabotError as exc:
            await _reply(interaction, str(exc))
            return
        text = describe_report(report)
        if missing:
            text += f"\n{len(missing)} document(s) no longer on disk were kept as they were."
        await _reply(interaction, text)

    @app_commands.command(name="sources", description="List the documents and their passages.")
    @admin_only()
    async def sources(self, interaction: discord.Interaction) -> None:
        sources = await asyncio.to_thread(self.bot.pipeline.sources)
        if not sources:
            await _reply(interaction, "The collection is empty: add a document with /ingest.")
            return
        lines = [f"**{len(sources)} documents**"] + [
            f"- `{render.source_name(s)}`: {n} passages" for s, n in sorted(sources.items())
        ]
        await _reply(interaction, "\n".join(lines))

    @app_commands.command(name="stats", description="Questions answered, abstentions, latency.")
    @admin_only()
    async def stats(self, interaction: discord.Interaction) -> None:
        s = self.bot.stats.snapshot()
        rate = f"{s.abstention_rate:.0%}" if s.abstention_rate is not None else "n/a"
        p50 = f"{s.p50_ms:.0f} ms" if s.p50_ms is not None else "n/a"
        p95 = f"{s.p95_ms:.0f} ms" if s.p95_ms is not None else "n/a"
        text = (
            f"Since start ({s.uptime_s / 3600:.1f} h ago):\n"
            f"- questions answered: {s.answered}\n"
            f"- abstention rate: {rate}\n"
            f"- latency p50 / p95: {p50} / {p95}\n"
            f"- failures: {s.failed}"
        )
        await _reply(interaction, text)


async def _reply(interaction: discord.Interaction, text: str) -> None:
    """An ephemeral reply, split to fit, whether or not the interaction was answered yet."""
    parts = render.split_text(text)
    for part in parts:
        if interaction.response.is_done():
            await interaction.followup.send(part, ephemeral=True, allowed_mentions=NO_MENTIONS)
        else:
            await interaction.response.send_message(
                part, ephemeral=True, allowed_mentions=NO_MENTIONS
            )


async def setup(bot: QabotBot) -> None:
    await bot.add_cog(Admin(bot))
