"""``qabot discord`` and ``qabot feedback`` from the command line."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bot.cli import app
from bot.discord.feedback_store import FeedbackStore
from qabot.types import Answer, Citation
from tests.fake_discord import FakeDiscord

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("QABOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("DISCORD_TOKEN", raising=False)
    return tmp_path / "data"


def test_discord_without_a_token_explains_and_exits(data_dir: Path) -> None:
    result = runner.invoke(app, ["discord"])
    assert result.exit_code == 2
    assert "DISCORD_TOKEN is not set" in result.output


def test_feedback_summarises_votes(data_dir: Path) -> None:
    store = FeedbackStore(data_dir / "discord" / "feedback.sqlite3")
    cited = Citation(1, "iss.txt", 0, 10, "Until 2028")
    good = store.save_answer(Answer("When?", "Until 2028. [1]", [cited]))
    bad = store.save_answer(Answer("Who?", "Nobody. [1]", [cited]))
    assert store.vote(good, 111, 1) and store.vote(good, 222, 1)
    assert store.vote(bad, 111, 1) and store.vote(bad, 111, -1)  # a changed vote counts once
    assert not store.vote("unknown", 111, 1)

    result = runner.invoke(app, ["feedback", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary == {
        "answers": 2,
        "votes": 3,
        "up": 2,
        "down": 1,
        "recent_down": [{"question": "Who?", "answer": "Nobody. [1]"}],
    }
    text = runner.invoke(app, ["feedback"]).output
    assert "Answers posted: 2" in text and "Who?" in text


# Ctrl+C reaches the bot as it would from a terminal: a test run started as a background job
# (``pytest &``) ignores SIGINT, and its children would inherit that and never stop.
LAUNCH = """
import signal, sys, yarl, discord.gateway, discord.http
signal.signal(signal.SIGINT, signal.default_int_handler)
discord.http.Route.BASE = sys.argv[1]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(sys.argv[2])
from bot.cli import app
app(["discord", "--log-level", "debug"])
"""


async def test_qabot_discord_starts_the_bot_and_never_logs_the_token(
    data_dir: Path, tmp_path: Path
) -> None:
    """The real command in its own process, against the fake Discord, with debug logging."""
    fake = FakeDiscord()
    await fake.start()
    (tmp_path / "no-seeds").mkdir()
    env = {
        **os.environ,
        "DISCORD_TOKEN": fake.token,
        "QABOT_DATA_DIR": str(data_dir),
        "QABOT_SEEDS": str(tmp_path / "no-seeds"),
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        LAUNCH,
        fake.rest_base,
        fake.gateway_url,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    seen: list[bytes] = []

    async def logged_in() -> None:
        assert proc.stderr is not None
        while not any(b"Logged in as qabot" in line for line in seen):
            line = await proc.stderr.readline()
            if not line:
                raise AssertionError("the bot stopped: " + b"".join(seen).decode()[-2000:])
            seen.append(line)

    try:
        await asyncio.wait_for(logged_in(), 90)
    finally:
        proc.send_signal(signal.SIGINT)  # Ctrl+C: a clean shutdown
        out, err = await asyncio.wait_for(proc.communicate(), 30)
        await fake.stop()
    assert proc.returncode == 0
    err = b"".join(seen) + err
    logs = (out + err).decode()
    (identify,) = fake.gateway.ops(2)
    assert identify["token_ok"]  # the bot did send its token, to the gateway only
    assert identify["d"]["intents"] & (1 << 15)  # message content
    assert "Synced 6 application commands" in logs and "has connected to Gateway" in logs
    assert fake.token not in logs
