"""Routing questions to knowledge bases, who may change them, and the follow-up allowance."""

from __future__ import annotations

from pathlib import Path

import pytest

from answering.pipelines import PipelinePool
from bot.discord.cogs.ask import TokenBucket, answer_of
from bot.discord.kb_store import KnowledgeStore
from bot.discord.knowledge import KnowledgeBases, Place, parse_mappings, server_collection
from qabot.errors import InputError
from qabot.settings import Settings

A, B = 1111, 2222  # two servers
A_STAFF, A_GENERAL, B_GENERAL = 31, 32, 41  # channels


def bases(tmp_path: Path, mappings: str = "", **settings: object) -> KnowledgeBases:
    s = Settings(
        _env_file=None, qabot_data_dir=tmp_path / "data", discord_collections=mappings, **settings
    )
    channels = {A_STAFF: A, A_GENERAL: A, B_GENERAL: B}
    store = KnowledgeStore(tmp_path / "data" / "discord" / "knowledge.sqlite3")
    return KnowledgeBases(s, store, PipelinePool(s), channels.get)


def test_mappings_parse() -> None:
    parsed = parse_mappings("guild:1=public-docs, channel:2=staff guild:*=everyone")
    assert parsed.guilds == {1: "public-docs"} and parsed.channels == {2: "staff"}
    assert parsed.every_guild == "everyone"
    assert parse_mappings("") == parse_mappings("  ")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("guild:abc=x", "'guild:abc=x' is not guild:<id>=<collection>"),
        ("channel:*=x", "is not guild:<id>=<collection>"),
        ("server:1=x", "is not guild:<id>=<collection>"),
        ("guild:1=no/slashes", "Invalid collection name"),
        ("guild:1=a,guild:1=b", "guild:1 is given twice"),
    ],
)
def test_bad_mappings_are_one_line(text: str, says: str) -> None:
    with pytest.raises(InputError) as error:
        parse_mappings(text)
    assert says in str(error.value) and "\n" not in str(error.value)
    assert str(error.value).startswith("DISCORD_COLLECTIONS: ")


def test_each_server_has_its_own_and_dms_have_theirs(tmp_path: Path) -> None:
    kb = bases(tmp_path, discord_dm_collection="dm-docs")
    a, b = kb.route(Place(A, A_GENERAL)), kb.route(Place(B, B_GENERAL))
    assert (a.collection, a.writable) == (server_collection(A), True)
    assert (b.collection, b.writable) == (server_collection(B), True)
    dm = kb.route(Place(None))
    assert dm.collection == "dm-docs" and not dm.writable


def test_operator_mappings_and_who_may_change_them(tmp_path: Path) -> None:
    kb = bases(tmp_path, f"guild:*=public, channel:{A_STAFF}=staff, guild:{B}=b-docs")
    assert kb.route(Place(A, A_GENERAL)).collection == "public"
    assert not kb.route(Place(A, A_GENERAL)).writable  # every server reads it
    staff = kb.route(Place(A, 999, parent_id=A_STAFF))  # a thread in the staff channel
    assert (staff.collection, staff.writable) == ("staff", True)
    assert kb.route(Place(B, B_GENERAL)) == kb.route(Place(B, B_GENERAL, None))
    assert (kb.route(Place(B, B_GENERAL)).collection, kb.route(Place(B, 5)).writable) == (
        "b-docs",
        True,
    )


def test_a_collection_shared_by_two_servers_is_the_operators(tmp_path: Path) -> None:
    kb = bases(tmp_path, f"guild:{B}=shared, channel:{A_STAFF}=shared, channel:77=lone")
    assert not kb.route(Place(B, B_GENERAL)).writable
    assert "other servers" in kb.route(Place(A, A_STAFF)).why_not
    assert not kb.route(Place(A, 77)).writable  # a channel the bot cannot place: not A's


def test_admin_mappings_stay_within_their_server(tmp_path: Path) -> None:
    kb = bases(tmp_path, f"channel:{A_STAFF}=staff")
    assert "now answer from `private`" in kb.map_channel(A, A_GENERAL, "private")
    assert kb.route(Place(A, A_GENERAL)).collection == "private"
    assert kb.route(Place(A, 12345, parent_id=A_GENERAL)).collection == "private"  # threads
    refusals = {
        "private": "belongs to another server",  # A claimed it first
        server_collection(A): "another server's knowledge base",
        "staff": "managed by the bot's operator",
        "default": "managed by the bot's operator",
        "bad name": "Invalid collection name",
    }
    for name, says in refusals.items():
        with pytest.raises(InputError, match=says):
            kb.map_channel(B, B_GENERAL, name)
    with pytest.raises(InputError, match="The bot's operator has mapped that channel"):
        kb.map_channel(A, A_STAFF, "mine")
    # another server cannot route a channel id of A's through its own mapping
    assert kb.route(Place(B, A_GENERAL)).collection == server_collection(B)
    # the mapping and the claim survive a restart (a new store over the same file)
    again = bases(tmp_path, f"channel:{A_STAFF}=staff")
    assert again.route(Place(A, A_GENERAL)).collection == "private"
    with pytest.raises(InputError, match="belongs to another server"):
        again.map_channel(B, B_GENERAL, "private")
    assert "answers from `guild-1111`" in again.map_channel(A, A_GENERAL, None)
    assert again.route(Place(A, A_GENERAL)).collection == server_collection(A)


def test_a_collection_that_already_exists_cannot_be_claimed(tmp_path: Path) -> None:
    kb = bases(tmp_path)
    kb.pool.get("legacy")  # created by someone else (the CLI, say)
    with pytest.raises(InputError, match="already exists"):
        kb.map_channel(B, B_GENERAL, "legacy")


def test_token_bucket_lets_a_burst_through_then_one_per_period(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr("bot.discord.cogs.ask.time.monotonic", lambda: now[0])
    bucket = TokenBucket(10, burst=3)
    assert [bucket.retry_after(7) for _ in range(3)] == [0, 0, 0]
    assert bucket.retry_after(7) == pytest.approx(10)
    assert bucket.retry_after(8) == 0  # another user has their own
    now[0] += 5
    assert bucket.retry_after(7) == pytest.approx(5)
    now[0] += 5
    assert bucket.retry_after(7) == 0 and bucket.retry_after(7) == pytest.approx(10)
    assert TokenBucket(0).retry_after(7) == 0  # no cooldown


def test_answer_of_reads_the_bots_own_message() -> None:
    assert answer_of("Until 2028. [1]\n\n-# The model was unavailable") == "Until 2028. [1]"
    assert answer_of("Give me a moment: you can ask again in 5 s.") == ""
    assert answer_of("I couldn't find that in the documents.") == ""


def test_qabot_discord_names_a_bad_mapping_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from bot.cli import app

    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("QABOT_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DISCORD_TOKEN", "not-a-real-token")
    monkeypatch.setenv("DISCORD_COLLECTIONS", "guild:123=docs,guild:abc=x")
    result = CliRunner().invoke(app, ["discord"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: DISCORD_COLLECTIONS: 'guild:abc=x' is not guild:<id>=<collection>, "
        "guild:*=<collection> or channel:<id>=<collection>."
    ]
