"""Shared fixtures: one pipeline over the seed articles per test session."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from answering.pipeline import Pipeline
from qabot.settings import Settings
from tests.fake_discord import FakeDiscord
from tests.fake_discord.harness import discord_pointed_at, pings_nobody
from tests.llm_servers import PROVIDERS, FakeLLM, cite_first_sentence, cite_first_sentence_claims
from tests.paths import SEEDS


@pytest.fixture(scope="session")
def seeds_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """A pipeline with the two seed articles ingested into a temporary data directory."""
    data = tmp_path_factory.mktemp("qabot-data")
    docs = tmp_path_factory.mktemp("docs")
    shutil.copytree(SEEDS, docs / "seeds")
    pipeline = Pipeline(Settings(qabot_data_dir=data, _env_file=None))
    report = pipeline.ingest([docs / "seeds"])
    assert len(report.added) == 2
    return pipeline


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(qabot_data_dir=tmp_path / "data", _env_file=None)


# ---- a fake model server (tests/llm_servers) for the generative-backend tests ---------------
# A module that uses these marks itself with ``pytestmark = pytest.mark.usefixtures("fresh")``
# so that every test starts from the server's default reply and an empty request log.


@pytest.fixture(scope="module")
def server() -> Iterator[FakeLLM]:
    """One fake model server per test module, speaking the OpenAI, Anthropic and Ollama APIs."""
    with FakeLLM() as fake:
        yield fake


@pytest.fixture
def fresh(server: FakeLLM) -> None:
    server.script.clear()
    server.requests.clear()
    server.responder = cite_first_sentence
    server.structured_responder = cite_first_sentence_claims
    server.structured = True
    server.piece_delay = 0.0


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> str:
    """Each test that asks for it runs once per protocol."""
    return request.param


# ---- a fake Discord (tests/fake_discord) for the bot's tests --------------------------------


@pytest.fixture
async def fake() -> AsyncIterator[FakeDiscord]:
    """A fake Discord gateway and REST API on 127.0.0.1, with discord.py pointed at it.

    Whatever the test did, no message the bot sent or edited may be over 2,000 characters or
    ping anyone: that is checked for every test that uses it.
    """
    server = FakeDiscord()
    await server.start()
    with discord_pointed_at(server):
        yield server
    await server.stop()
    for request in server.sent_messages():
        assert len(request.content) <= 2000, request
        assert pings_nobody((request.data or {}).get("allowed_mentions")), request
