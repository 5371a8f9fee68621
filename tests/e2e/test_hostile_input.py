"""Hostile input at the command line: markup in file names, FIFOs and devices, bad bytes in
argv, bad settings, a damaged store, bad options (issue 14, items 2, 7-12)."""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from bot.cli import app, core
from retrieval.loaders import LoadError, load_one, read_regular, source_id
from tests.fake_discord import FakeDiscord

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("QABOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("QABOT_SEEDS", str(tmp_path / "no-seeds"))
    for name in ("QABOT_TOP_K", "DISCORD_CHANNELS", "DISCORD_TOKEN", "QABOT_COLLECTION"):
        monkeypatch.delenv(name, raising=False)
    (tmp_path / "no-seeds").mkdir()
    return tmp_path


def run(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


def one_line_error(code: int, out: str, err: str, *needles: str) -> None:
    assert code == 1, (out, err)
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err


# ---- 7. Rich markup in file names --------------------------------------------------------


def test_file_names_with_markup_are_shown_as_they_are(env, monkeypatch):
    docs = env / "edge"
    (docs / "archive[").mkdir(parents=True)
    (docs / "archive[" / "]t.txt").write_text("The archive holds maps from 1820.", "utf-8")
    (docs / "[draft] loud.txt").write_text("The loud bell rings at noon.", "utf-8")
    (docs / "[bold]bad.txt").write_bytes(bytes(range(256)) * 8)
    # The live progress bar (a terminal) and the plain progress lines (a pipe) both.
    terminal = Console(file=io.StringIO(), force_terminal=True, width=200)
    monkeypatch.setattr(core, "errors", terminal)
    code, out, err = run("ingest", "edge")
    assert code == 0, (out, err)
    monkeypatch.setattr(core, "errors", Console(stderr=True, soft_wrap=True))
    code, out, err = run("ingest", "edge", "-c", "other")
    assert code == 0, (out, err)
    assert "Skipped edge/[bold]bad.txt" in err
    code, out, err = run("sources")
    assert code == 0, (out, err)
    assert "edge/archive[/]t.txt" in out and "edge/[draft] loud.txt" in out
    code, out, err = run("ask", "When does the loud bell ring?")
    assert code == 0, (out, err)
    assert "edge/[draft] loud.txt" in out
    code, out, err = run("ask", "How old are the maps in the archive?")
    assert code == 0 and "edge/archive[/]t.txt" in out, (out, err)
    code, out, err = run("ingest", "edge/[missing]")
    one_line_error(code, out, err, "edge/[missing]")


# ---- 8. FIFOs and devices ----------------------------------------------------------------


def test_fifos_and_devices_are_skipped_without_opening_them(tmp_path):
    fifo = tmp_path / "f.txt"
    os.mkfifo(fifo)
    results = []
    worker = threading.Thread(
        target=lambda: results.extend(
            load_one(p, source_id(p)) for p in (fifo, Path("/dev/zero"), Path("/dev/null"))
        ),
        daemon=True,
    )
    worker.start()
    worker.join(20)
    assert not worker.is_alive(), "reading a FIFO or a device hung"
    assert [r.error for r in results] == [
        "not a regular file (a FIFO (named pipe))",
        "not a regular file (a character device)",
        "not a regular file (a character device)",
    ]


def test_the_size_cap_counts_bytes_read_not_st_size(tmp_path):
    status = Path("/proc/self/status")  # a regular file whose st_size is 0
    assert status.stat().st_size == 0
    with pytest.raises(LoadError, match="larger than"):
        read_regular(status, limit=64)
    (tmp_path / "ok.txt").write_bytes(b"x" * 64)
    assert read_regular(tmp_path / "ok.txt", limit=64)[0] == b"x" * 64


@pytest.mark.slow
def test_ingest_of_a_fifo_or_dev_zero_finishes(env):
    os.mkfifo(env / "f.txt")
    (env / "docs").mkdir()
    os.mkfifo(env / "docs" / "pipe.md")
    (env / "docs" / "ok.txt").write_text("The tram runs every ten minutes.", "utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "bot", "ingest", "f.txt", "/dev/zero", "docs"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Skipped f.txt: not a regular file (a FIFO" in proc.stderr
    assert "Skipped /dev/zero: not a regular file (a character device)" in proc.stderr
    assert "Skipped docs/pipe.md: not a regular file (a FIFO" in proc.stderr


# ---- 9. invalid UTF-8 in argv ------------------------------------------------------------


@pytest.mark.slow
def test_invalid_utf8_in_argv_is_answered(env):
    (env / "docs").mkdir()
    (env / "docs" / "c.txt").write_text("The cafeteria opens at 7 am on weekdays.", "utf-8")
    base = [sys.executable, "-m", "bot"]
    subprocess.run([*base, "ingest", "docs"], check=True, capture_output=True, cwd=env)
    proc = subprocess.run(
        [*base, "ask", b"\xff\xfe When does the cafeteria open?"],
        capture_output=True,
        timeout=120,
        cwd=env,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert b"7 am" in proc.stdout and b"Traceback" not in proc.stderr


def test_undecodable_argv_text_becomes_replacement_characters():
    assert core.from_argv("\udcff\udcfe When?") == "\ufffd\ufffd When?"
    assert core.from_argv("caf\udce9 ok") == "caf\ufffd ok"


# ---- 10. settings ------------------------------------------------------------------------


def test_bad_settings_are_one_line_naming_the_setting(env, monkeypatch):
    monkeypatch.setenv("QABOT_TOP_K", "0")
    one_line_error(*run("ask", "x"), "QABOT_TOP_K", "at least 1")
    monkeypatch.delenv("QABOT_TOP_K")
    monkeypatch.setenv("DISCORD_CHANNELS", "general")
    monkeypatch.setenv("DISCORD_TOKEN", "x")
    one_line_error(*run("discord"), "DISCORD_CHANNELS", "channel ids")


LAUNCH = """
import sys, yarl, discord.gateway, discord.http
discord.http.Route.BASE = sys.argv[1]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(sys.argv[2])
from bot.cli import app
app(["discord", "--log-level", "warning"], prog_name="qabot")
"""


@pytest.mark.slow
async def test_a_bogus_discord_token_is_one_line(env):
    fake = FakeDiscord()
    await fake.start()
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            LAUNCH,
            fake.rest_base,
            fake.gateway_url,
            env={**os.environ, "DISCORD_TOKEN": "bogus"},
            cwd=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
    finally:
        await fake.stop()
    text = err.decode()
    assert proc.returncode == 1, text
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if "Error:" in line]
    assert len(lines) == 1 and "LoginFailure" in lines[0] and "DISCORD_TOKEN" in lines[0], text
    assert "bogus" not in text


# ---- 11 and 2. a damaged or lost store ---------------------------------------------------


@pytest.mark.slow
def test_a_damaged_or_lost_store_says_so_and_how_to_rebuild(env):
    (env / "docs").mkdir()
    (env / "docs" / "c.txt").write_text("The cafeteria opens at 7 am on weekdays.", "utf-8")
    base = [sys.executable, "-m", "bot"]

    def qabot(*args: str, data: Path) -> subprocess.CompletedProcess:
        environ = {**os.environ, "QABOT_DATA_DIR": str(data)}
        environ.pop("QABOT_SEEDS")  # the packaged seeds are there: they must not be used
        return subprocess.run(
            [*base, *args], capture_output=True, text=True, timeout=120, cwd=env, env=environ
        )

    assert qabot("ingest", "docs", data=env / "data").returncode == 0
    garbage = env / "garbage"
    lost = env / "lost"
    for target in (garbage, lost):
        subprocess.run(["cp", "-r", str(env / "data"), str(target)], check=True)
    sqlite = garbage / "chroma" / "chroma.sqlite3"
    size = sqlite.stat().st_size
    with sqlite.open("r+b") as f:
        f.seek(size // 2)
        f.write(os.urandom(min(200_000, size // 2)))
    (lost / "chroma" / "chroma.sqlite3").write_bytes(b"")

    for args in (("sources",), ("ask", "When does the cafeteria open?")):
        proc = qabot(*args, data=garbage)
        one_line_error(proc.returncode, proc.stdout, proc.stderr, "damaged", "move", "ingest")

    proc = qabot("sources", data=lost)
    assert proc.returncode == 0 and "0 documents" in proc.stdout
    assert "rebuild" in proc.stderr
    proc = qabot("ask", "When was the ISS launched?", data=lost)
    one_line_error(proc.returncode, proc.stdout, proc.stderr, "no documents", "rebuild")
    assert "ISS" not in proc.stdout
    proc = qabot("sources", data=lost)
    assert "0 documents" in proc.stdout  # nothing was seeded


# ---- 12. options -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args,needle",
    [
        (["ask", "When?", "-c", ""], "Invalid collection name"),
        (["sources", "-c", ""], "Invalid collection name"),
        (["ask", "When?", "--k", "0"], "--k must be between 1 and 50"),
        (["ask", "When?", "--k", "51"], "--k must be between 1 and 50"),
    ],
)
def test_bad_options_exit_1(env, args, needle):
    one_line_error(*run(*args), needle)
