"""The buttons under an answer: "Sources" (full excerpts, ephemeral) and thumbs up / down.

They are :class:`discord.ui.DynamicItem` buttons whose custom id carries the stored answer's
id, so they keep working after the bot restarts.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import TYPE_CHECKING, Any

import discord
from discord.ext import commands

from bot.discord import render
from bot.discord.render import NO_MENTIONS

if TYPE_CHECKING:
    from bot.discord.app import QabotBot

log = logging.getLogger(__name__)

_EXPIRED = "I no longer have that answer's sources, sorry: please ask again."


class SourcesButton(discord.ui.DynamicItem[discord.ui.Button], template=r"qabot:src:(?P<id>\w+)"):
    """Shows the answer's full excerpts to whoever presses it, privately."""

    def __init__(self, answer_id: str) -> None:
        super().__init__(
            discord.ui.Button(
                label="Sources",
                emoji="📚",
                style=discord.ButtonStyle.secondary,
                custom_id=f"qabot:src:{answer_id}",
            )
        )
        self.answer_id = answer_id

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> SourcesButton:
        return cls(match["id"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: QabotBot = interaction.client
        stored = await asyncio.to_thread(bot.feedback.get_answer, self.answer_id)
        parts = render.render_sources(stored.citations) if stored else [_EXPIRED]
        await interaction.response.send_message(
            parts[0], ephemeral=True, allowed_mentions=NO_MENTIONS
        )
        for part in parts[1:]:
            await interaction.followup.send(part, ephemeral=True, allowed_mentions=NO_MENTIONS)


class VoteButton(
    discord.ui.DynamicItem[discord.ui.Button], template=r"qabot:vote:(?P<vote>up|down):(?P<id>\w+)"
):
    """Records a thumbs-up or thumbs-down on an answer."""

    def __init__(self, answer_id: str, vote: str) -> None:
        super().__init__(
            discord.ui.Button(
                emoji="👍" if vote == "up" else "👎",
                style=discord.ButtonStyle.secondary,
                custom_id=f"qabot:vote:{vote}:{answer_id}",
            )
        )
        self.answer_id = answer_id
        self.vote = vote

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str]
    ) -> VoteButton:
        return cls(match["id"], match["vote"])

    async def callback(self, interaction: discord.Interaction[Any]) -> None:
        bot: QabotBot = interaction.client
        value = 1 if self.vote == "up" else -1
        store = bot.feedback
        known = await asyncio.to_thread(store.vote, self.answer_id, interaction.user.id, value)
        if not known:
            text = "I can't find that answer any more, so the vote wasn't recorded."
        elif value > 0:
            text = "Thanks! Glad it helped."
        else:
            text = "Thanks for telling me. This helps improve the answers."
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=NO_MENTIONS)


def answer_view(answer_id: str, *, sources: bool) -> discord.ui.View:
    """The buttons under an answer (no "Sources" button when it has none)."""
    view = discord.ui.View(timeout=None)
    if sources:
        view.add_item(SourcesButton(answer_id))
    view.add_item(VoteButton(answer_id, "up"))
    view.add_item(VoteButton(answer_id, "down"))
    return view


class Feedback(commands.Cog):
    """Registers the answer buttons so that clicks are handled, even on old messages."""

    def __init__(self, bot: QabotBot) -> None:
        self.bot = bot

    async def cog_load(self) -> None:
        self.bot.add_dynamic_items(SourcesButton, VoteButton)

    async def cog_unload(self) -> None:
        self.bot.remove_dynamic_items(SourcesButton, VoteButton)


async def setup(bot: QabotBot) -> None:
    await bot.add_cog(Feedback(bot))
