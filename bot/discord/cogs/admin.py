"""Admin slash commands: ``/ingest``, ``/reindex``, ``/sources``, ``/stats``, ``/knowledge``.

Only members with Manage Server (or the configured admin role) may use them; anyone else is
told so, politely and privately. Each acts on the knowledge base of the channel it is used
in (:mod:`bot.discord.knowledge`), never on another server's. ``/ingest`` and ``/reindex``
answer at once and run in the background (:mod:`bot.discord.ingests`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot.discord import render
from bot.discord.ingests import ProgressMessage
from bot.discord.knowledge import Place, Route
from bot.discord.render import NO_MENTIONS
from qabot.errors import QabotError
from qabot.types import IngestReport
from retrieval.loaders import SUPPORTED_SUFFIXES

if TYPE_CHECKING:
    from bot.discord.app import QabotBot
    from retrieval.web import WebRequest

log = logging.getLogger(__name__)

MAX_UPLOAD_BYTES = 25 * 1024 * 1024
REFUSAL = "Sorry, only members with the Manage Server permission{role} can use this command."
FAILED = "that didn't work, sorry. The details are in the bot's log."


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


def read_only(route: Route) -> str:
    return (
        f"This channel answers from `{route.collection}`, which this server cannot change: "
        f"{route.why_not}. The bot's operator adds documents to it with "
        f"`qabot ingest --collection {route.collection}`."
    )


class Admin(commands.Cog):
    """Manage this server's knowledge base and look at its numbers."""

    def __init__(self, bot: QabotBot) -> None:
        self.bot = bot

    def _web(self, urls: tuple[str, ...], crawl: bool, max_pages: int) -> WebRequest:
        """A web request made from Discord: public hosts only, unless the operator allows
        others (``QABOT_DISCORD_WEB_PRIVATE``, see ``retrieval/web_addresses.py``)."""
        from retrieval.web import WebRequest

        public_only = not self.bot.settings.qabot_discord_web_private
        return WebRequest(urls, crawl, max_pages, public_only=public_only)

    def uploads(self, collection: str) -> Path:
        """Where a knowledge base's uploads are kept (one folder each: two servers' files of
        one name never overwrite each other)."""
        return self.bot.settings.data_dir / "discord" / "uploads" / collection

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
        route = self.bot.knowledge.route(Place.of_interaction(interaction))
        if not route.writable:
            await _reply(interaction, read_only(route))
            return
        await _reply(interaction, f"Indexing `{name}`…")
        path = self.uploads(route.collection) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            await file.save(path)
        except discord.HTTPException as exc:
            await _reply(interaction, f"I could not download `{name}` ({exc.status}).")
            return
        self.bot.ingests.start(self._ingest(interaction, route.collection, [path], f"`{name}`"))

    async def _ingest_url(self, interaction: discord.Interaction, url: str, crawl: bool) -> None:
        from retrieval.web import check_url

        try:
            address = check_url(url)
        except QabotError as exc:
            await _reply(interaction, str(exc))
            return
        route = self.bot.knowledge.route(Place.of_interaction(interaction))
        if not route.writable:
            await _reply(interaction, read_only(route))
            return
        await _reply(interaction, f"Indexing <{address}>…")
        request = self._web((address,), crawl, self.bot.settings.qabot_web_max_pages)
        self.bot.ingests.start(
            self._ingest(interaction, route.collection, [], f"<{address}>", web=request)
        )

    @app_commands.command(name="reindex", description="Re-read every document in the collection.")
    @admin_only()
    async def reindex(self, interaction: discord.Interaction) -> None:
        route = self.bot.knowledge.route(Place.of_interaction(interaction))
        if not route.writable:
            await _reply(interaction, read_only(route))
            return
        await _reply(interaction, f"Re-reading the documents of `{route.collection}`…")
        from retrieval.web import is_url

        pipeline = await asyncio.to_thread(self.bot.knowledge.pipeline, route.collection)
        sources = await asyncio.to_thread(pipeline.sources)
        urls = tuple(s for s in sources if is_url(s))  # re-fetched (conditionally), one by one
        files = [s for s in sources if not is_url(s)]
        present = [Path(s) for s in files if Path(s).exists()]
        missing = [s for s in files if not Path(s).exists()]
        web = self._web(urls, False, max(len(urls), 1)) if urls else None
        note = (
            f"\n{len(missing)} document(s) no longer on disk were kept as they were."
            if missing
            else ""
        )
        self.bot.ingests.start(
            self._ingest(
                interaction, route.collection, present, f"`{route.collection}`", note, web=web
            )
        )

    async def _ingest(
        self,
        interaction: discord.Interaction,
        collection: str,
        paths: Sequence[Path],
        label: str,
        note: str = "",
        web: WebRequest | None = None,
    ) -> None:
        """Run one ingest in the background: progress in the first reply, result after."""
        progress = ProgressMessage(
            lambda text: interaction.edit_original_response(
                content=text, allowed_mentions=NO_MENTIONS
            )
        )
        loop = asyncio.get_running_loop()
        started = time.monotonic()
        counts = ""

        def show() -> None:
            elapsed = time.monotonic() - started
            done = f"{counts}, " if counts else ""
            progress.update(f"Indexing {label}: {done}{elapsed:.0f} s…")

        def on_progress(source: str, done: int, total: int) -> None:  # on the ingest thread
            nonlocal counts
            counts = f"{done} of {total} documents"
            loop.call_soon_threadsafe(show)

        async def tick() -> None:  # a long document gives no progress until it is done
            while True:
                await asyncio.sleep(progress.interval)
                show()

        def waiting() -> None:
            progress.update(f"{label}: waiting for the ingest before it to finish…")

        ticker: asyncio.Task[None] | None = None

        def work() -> IngestReport:
            loop.call_soon_threadsafe(start_ticking)
            return self.bot.knowledge.ingest(collection, paths, on_progress, web=web)

        def start_ticking() -> None:
            nonlocal ticker
            ticker = asyncio.ensure_future(tick())

        try:
            report = await self.bot.ingests.run(collection, work, on_wait=waiting)
            text = f"{label}: {describe_report(report)}{note}"
        except QabotError as exc:
            text = f"{label}: {exc}"
        except Exception:
            log.exception("Ingest of %s failed", collection)
            text = f"{label}: {FAILED}"
        finally:
            if ticker is not None:
                ticker.cancel()
        await progress.close()
        await self._post_result(interaction, progress, label, text)

    async def _post_result(
        self, interaction: discord.Interaction, progress: ProgressMessage, label: str, text: str
    ) -> None:
        """The result as a new (private) message, and the first reply marked done. After 15
        minutes Discord no longer takes replies to the command: then it comes as a DM."""
        try:
            if not progress.failed:
                await interaction.edit_original_response(
                    content=f"{label}: done.",
                    allowed_mentions=NO_MENTIONS,
                )
            await _reply(interaction, text)
        except discord.HTTPException as exc:
            log.info("Could not answer the ingest command (%s); sending a DM", exc.status)
            try:
                for part in render.split_text(text):
                    await interaction.user.send(part, allowed_mentions=NO_MENTIONS)
            except discord.HTTPException as again:
                log.warning("Could not send the ingest's result (%s)", again.status)

    @app_commands.command(name="sources", description="List the documents and their passages.")
    @admin_only()
    async def sources(self, interaction: discord.Interaction) -> None:
        route = self.bot.knowledge.route(Place.of_interaction(interaction))
        pipeline = await asyncio.to_thread(self.bot.knowledge.pipeline, route.collection)
        sources = await asyncio.to_thread(pipeline.sources)
        if not sources:
            await _reply(
                interaction,
                f"`{route.collection}` is empty: add a document with /ingest.",
            )
            return
        lines = [f"**{len(sources)} documents** in `{route.collection}`"] + [
            f"- `{render.source_name(s)}`: {n} passages" for s, n in sorted(sources.items())
        ]
        if self.bot.ingests.busy(route.collection):
            lines.append("An ingest is under way: this list is changing.")
        await _reply(interaction, "\n".join(lines))

    @app_commands.command(name="stats", description="Questions answered, abstentions, latency.")
    @admin_only()
    async def stats(self, interaction: discord.Interaction) -> None:
        route = self.bot.knowledge.route(Place.of_interaction(interaction))
        s = self.bot.stats_for(route.collection).snapshot()
        rate = f"{s.abstention_rate:.0%}" if s.abstention_rate is not None else "n/a"
        p50 = f"{s.p50_ms:.0f} ms" if s.p50_ms is not None else "n/a"
        p95 = f"{s.p95_ms:.0f} ms" if s.p95_ms is not None else "n/a"
        text = (
            f"`{route.collection}`, since start ({s.uptime_s / 3600:.1f} h ago):\n"
            f"- questions answered: {s.answered}\n"
            f"- abstention rate: {rate}\n"
            f"- latency p50 / p95: {p50} / {p95}\n"
            f"- failures: {s.failed}"
        )
        await _reply(interaction, text)

    @app_commands.command(
        name="knowledge",
        description="Answer in a channel from a collection of its own (none: the server's).",
    )
    @app_commands.describe(
        channel="A channel of this server (its threads follow it)",
        collection="A name: letters, digits, - and _ (leave it out: back to the server's)",
    )
    @admin_only()
    async def knowledge(
        self,
        interaction: discord.Interaction,
        channel: app_commands.AppCommandChannel,
        collection: str | None = None,
    ) -> None:
        guild = interaction.guild
        map_channel = getattr(self.bot.knowledge, "map_channel", None)
        if map_channel is None:
            await _reply(interaction, "This bot answers everywhere from one collection.")
            return
        if guild is None or guild.get_channel(channel.id) is None:
            await _reply(interaction, "That channel is not one of this server's.")
            return
        try:
            text = await asyncio.to_thread(map_channel, guild.id, channel.id, collection)
        except QabotError as exc:
            text = str(exc)
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
