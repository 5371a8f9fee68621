"""A fake Discord (gateway websocket + REST API) for driving the real discord.py client."""

from .gateway import FakeGateway
from .server import Actor, FakeDiscord, FakeGuild, Request

__all__ = ["Actor", "FakeDiscord", "FakeGateway", "FakeGuild", "Request"]
