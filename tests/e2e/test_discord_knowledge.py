"""A knowledge base per server, background ingests, follow-ups and the token, end to end:
the real bot from ``create_bot`` (no pipeline given) against a fake Discord with two servers.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from answering.pipeline import Pipeline
from bot.discord.app import QabotBot, create_bot
from bot.discord.knowledge import server_collection
from qabot.settings import PACKAGED_SEEDS, Settings
from qabot.types import Turn
from retrieval.ingest_lock import IngestLock
from tests.fake_discord import Actor, FakeDiscord, FakeGuild, Request
from tests.fake_discord.harness import custom_ids, is_post_to, running_bot

PELICANS = (
    "# Pelicans\n\nBrown pelicans dive from heights of up to twenty metres to catch fish, "
    "and they are the only pelicans that hunt by plunge diving.\n"
)
OTTERS = (
    "# Otters\n\nSea otters hold hands while they sleep so that they do not drift apart, "
    "and a group of resting otters is called a raft.\n"
)
PELICAN_QUESTION = "How high do brown pelicans dive from?"
OTTER_QUESTION = "Why do sea otters hold hands while they sleep?"
ISS_QUESTION = "When does Russia plan to leave the ISS?"
ABSTAIN = "I couldn't find that in the documents."
EMPTY = "No documents yet: an admin can add some with /ingest."
REFUSAL = "only members with the Manage Server permission"


def long_document(paragraphs: int) -> str:
    """A document of many distinct sentences (slow to embed: a long ingest)."""
    lines = [
        f"Harbour log entry {i}: the tug Marigold {i} moved barge {i * 7} from pier {i % 9} "
        f"to the grain terminal at {6 + i % 12}:00, and the pilot noted a {i % 5} knot tide."
        for i in range(paragraphs)
    ]
    return "# Harbour log\n\n" + "\n\n".join(lines) + "\n"


# ---- helpers -------------------------------------------------------------------------------
@contextlib.contextmanager
def another_ingest(data_dir: Path, collection: str) -> Iterator[None]:
    """Hold ``collection``'s ingest lock, as a `qabot ingest` elsewhere would, for the block:
    the bot's own ingests of it wait meanwhile, however fast the machine embeds."""
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with IngestLock(data_dir, collection).hold():
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert held.wait(10)
        yield
    finally:
        release.set()
        holder.join()


@pytest.fixture
async def two_servers(fake: FakeDiscord) -> FakeGuild:
    return fake.add_guild("Second Server")


StartBot = Callable[..., Awaitable[QabotBot]]


@pytest.fixture
async def start_bot(fake: FakeDiscord, tmp_path: Path) -> AsyncIterator[StartBot]:
    """Start the bot in knowledge-base mode (no pipeline given): the seeds go to the DMs'."""
    stack: list[Any] = []

    async def start(**overrides: Any) -> QabotBot:
        values: dict[str, Any] = {"qabot_seeds": PACKAGED_SEEDS}
        values.update(overrides)
        context = running_bot(fake, None, tmp_path / "data", **values)
        stack.append(context)
        return await context.__aenter__()

    yield start
    for context in reversed(stack):
        await context.__aexit__(None, None, None)


def callback_of(fake: FakeDiscord, interaction: dict[str, Any]) -> Callable[[Request], bool]:
    return lambda r: r.path.endswith(f"/{interaction['token']}/callback")


def followup_of(interaction: dict[str, Any]) -> Callable[[Request], bool]:
    path = f"/webhooks/{interaction['application_id']}/{interaction['token']}"
    return lambda r: r.method == "POST" and r.path == path


async def command(
    fake: FakeDiscord, name: str, actor: Actor, channel_id: str, **kwargs: Any
) -> Request:
    """Use ``/name`` and return the bot's first reply to it."""
    interaction = await fake.slash(name, actor=actor, channel_id=channel_id, **kwargs)
    (callback,) = await fake.wait_for(callback_of(fake, interaction))
    return callback


async def ingest(fake: FakeDiscord, actor: Actor, channel_id: str, name: str, text: str) -> str:
    """``/ingest`` a document and wait for its result; returns the result's text."""
    attachment = fake.add_attachment(name, text.encode())
    interaction = await fake.slash(
        "ingest", actor=actor, channel_id=channel_id, attachment=attachment
    )
    (result,) = await fake.wait_for(followup_of(interaction), timeout=120)
    return result.content


async def ask(fake: FakeDiscord, question: str, actor: Actor, channel_id: str) -> Request:
    """Mention the bot in a channel; returns the answer posted in the thread it opens."""
    message = await fake.say(question, actor=actor, channel_id=channel_id)
    (reply,) = await fake.wait_for(is_post_to(message["id"]), timeout=60)
    return reply


def cited(reply: Request) -> list[str]:
    embeds = (reply.data or {}).get("embeds") or []
    return [f["name"] for e in embeds for f in e.get("fields", [])]


# ---- isolation -------------------------------------------------------------------------------
async def test_a_servers_documents_stay_in_that_server(
    fake: FakeDiscord, two_servers: FakeGuild, start_bot: StartBot
) -> None:
    b = two_servers
    await start_bot()
    assert "Added 1" in await ingest(fake, fake.owner, fake.channel_id, "pelicans.md", PELICANS)

    in_a = await ask(fake, PELICAN_QUESTION, fake.alice, fake.channel_id)
    assert "twenty metres" in in_a.content and cited(in_a)[0].endswith("pelicans.md")

    # B has no documents yet: it says so, and shows neither A's documents nor the seeds
    empty = await ask(fake, PELICAN_QUESTION, b.member, b.channel_id)
    assert empty.content == EMPTY and not cited(empty)
    empty_iss = await ask(fake, ISS_QUESTION, b.member, b.channel_id)
    assert empty_iss.content == EMPTY

    assert "Added 1" in await ingest(fake, b.owner, b.channel_id, "otters.md", OTTERS)
    otters = await ask(fake, OTTER_QUESTION, b.member, b.channel_id)
    assert "drift apart" in otters.content and cited(otters)[0].endswith("otters.md")
    about_a = await ask(fake, PELICAN_QUESTION, b.member, b.channel_id)
    assert about_a.content == ABSTAIN and not cited(about_a)  # abstains: A's doc is not there

    # a DM is answered from the seeds, never from a server's documents
    dm = await fake.direct_message(PELICAN_QUESTION, actor=fake.bob)
    (dm_reply,) = await fake.wait_for(is_post_to(dm["channel_id"]))
    assert "pelican" not in dm_reply.content.lower() and not cited(dm_reply)
    dm_iss = await fake.direct_message(ISS_QUESTION, actor=b.member)
    (iss_reply,) = await fake.wait_for(is_post_to(dm_iss["channel_id"]))
    assert "2028" in iss_reply.content

    # B's admin lists, counts and re-reads B's documents only
    listed = await command(fake, "sources", b.owner, b.channel_id)
    assert "otters.md" in listed.content and "pelicans.md" not in listed.content
    assert server_collection(int(b.id)) in listed.content
    stats = await command(fake, "stats", b.owner, b.channel_id)
    assert "questions answered: 2" in stats.content  # the two asked once B had documents
    reindex = await fake.slash("reindex", actor=b.owner, channel_id=b.channel_id)
    (reindexed,) = await fake.wait_for(followup_of(reindex), timeout=60)
    assert "Added 0, updated 0, unchanged 1, removed 0" in reindexed.content
    listed_a = await command(fake, "sources", fake.owner, fake.channel_id)
    assert "pelicans.md" in listed_a.content and "otters.md" not in listed_a.content
    stats_a = await command(fake, "stats", fake.owner, fake.channel_id)
    assert "questions answered: 1" in stats_a.content

    # every message the bot sent in B, or in a DM, is free of A's document
    a_channels = {fake.channel_id} | {
        t for t, th in fake.threads.items() if th["guild_id"] == fake.guild_id
    }
    for request in fake.sent_messages():
        channel = request.path.split("/")[2] if request.path.startswith("/channels/") else ""
        if channel and channel not in a_channels:
            assert "twenty metres" not in request.content + str(request.data.get("embeds"))


async def test_an_admin_cannot_reach_another_servers_knowledge_base(
    fake: FakeDiscord, two_servers: FakeGuild, start_bot: StartBot
) -> None:
    b = two_servers
    bot = await start_bot()
    assert "Added 1" in await ingest(fake, fake.owner, fake.channel_id, "pelicans.md", PELICANS)

    # A's admin gives A's off-topic channel a collection of its own
    mapped = await command(
        fake,
        "knowledge",
        fake.owner,
        fake.channel_id,
        options={"channel": fake.other_channel_id, "collection": "staff"},
    )
    assert "now answer from `staff`" in mapped.content
    assert "Added 1" in await ingest(fake, fake.owner, fake.other_channel_id, "otters.md", OTTERS)
    staff = await command(fake, "sources", fake.owner, fake.other_channel_id)
    assert "otters.md" in staff.content and "pelicans.md" not in staff.content

    # B's admin can point B's channel neither at A's knowledge base nor at A's "staff" ...
    for name, why in (
        (server_collection(int(fake.guild_id)), "another server's"),
        ("staff", "belongs to another server"),
    ):
        refused = await command(
            fake,
            "knowledge",
            b.owner,
            b.channel_id,
            options={"channel": b.channel_id, "collection": name},
        )
        assert why in refused.content, refused.content
    # ... nor at the DMs' collection, nor map a channel of A's
    operator = await command(
        fake,
        "knowledge",
        b.owner,
        b.channel_id,
        options={"channel": b.channel_id, "collection": "default"},
    )
    assert "managed by the bot's operator" in operator.content
    foreign = await command(
        fake,
        "knowledge",
        b.owner,
        b.channel_id,
        options={"channel": fake.channel_id, "collection": "mine"},
    )
    assert "not one of this server's" in foreign.content

    # so B's /sources and /reindex still see B's own (empty) knowledge base only
    listed = await command(fake, "sources", b.owner, b.channel_id)
    assert "is empty" in listed.content and "pelicans" not in listed.content
    reindex = await fake.slash("reindex", actor=b.owner, channel_id=b.channel_id)
    (done,) = await fake.wait_for(followup_of(reindex), timeout=60)
    assert "Added 0, updated 0, unchanged 0, removed 0" in done.content
    # the mapping is kept in the bot's SQLite database (it survives a restart)
    assert (bot.settings.data_dir / "discord" / "knowledge.sqlite3").exists()


async def test_members_of_either_server_are_refused_every_admin_command(
    fake: FakeDiscord, two_servers: FakeGuild, start_bot: StartBot
) -> None:
    b = two_servers
    await start_bot()
    for member, channel in ((fake.alice, fake.channel_id), (b.member, b.channel_id)):
        attachment = fake.add_attachment("pelicans.md", PELICANS.encode())
        for name, kwargs in (
            ("ingest", {"attachment": attachment}),
            ("reindex", {}),
            ("sources", {}),
            ("stats", {}),
            ("knowledge", {"options": {"channel": channel, "collection": "mine"}}),
        ):
            reply = await command(fake, name, member, channel, **kwargs)
            assert reply.ephemeral and REFUSAL in reply.content, (name, reply.content)
    assert not any(r.method == "GET" and "/cdn/" in r.path for r in fake.requests)


async def test_a_shared_operator_collection_cannot_be_changed_from_a_server(
    fake: FakeDiscord, two_servers: FakeGuild, start_bot: StartBot
) -> None:
    b = two_servers
    await start_bot(discord_collections="guild:*=public-docs")
    attachment = fake.add_attachment("pelicans.md", PELICANS.encode())
    refused = await command(fake, "ingest", b.owner, b.channel_id, attachment=attachment)
    assert (
        "`public-docs`" in refused.content
        and "qabot ingest --collection public-docs" in refused.content
    )
    again = await command(fake, "reindex", fake.owner, fake.channel_id)
    assert "cannot change" in again.content


# ---- background ingest -------------------------------------------------------------------
@pytest.mark.slow
async def test_answers_keep_flowing_in_both_servers_during_a_long_ingest(
    fake: FakeDiscord, two_servers: FakeGuild, start_bot: StartBot
) -> None:
    b = two_servers
    bot = await start_bot()
    assert "Added 1" in await ingest(fake, fake.owner, fake.channel_id, "pelicans.md", PELICANS)
    assert "Added 1" in await ingest(fake, b.owner, b.channel_id, "otters.md", OTTERS)

    # Another ingest of server A's collection (a `qabot ingest` elsewhere) holds the
    # collection's ingest lock until both answers are in, so the bot's ingest is still
    # under way while they are asked, however fast the machine embeds.
    collection = server_collection(int(fake.guild_id))
    with another_ingest(bot.settings.data_dir, collection):
        attachment = fake.add_attachment("harbour.md", long_document(400).encode())
        long_ingest = await fake.slash(
            "ingest", actor=fake.owner, channel_id=fake.channel_id, attachment=attachment
        )
        (first,) = await fake.wait_for(callback_of(fake, long_ingest))
        assert first.body["type"] == 4 and "Indexing `harbour.md`" in first.content  # at once
        await fake.wait_until(lambda: bot.ingests.busy(collection))

        in_a = await ask(fake, PELICAN_QUESTION, fake.alice, fake.channel_id)
        in_b = await ask(fake, OTTER_QUESTION, b.member, b.channel_id)
        assert "twenty metres" in in_a.content and "drift apart" in in_b.content
        # both answered while the ingest was still running: nothing of harbour.md yet
        assert not any(followup_of(long_ingest)(r) for r in fake.requests)
        assert not any("harbour" in name for name in cited(in_a))

    (result,) = await fake.wait_for(followup_of(long_ingest), timeout=300)
    assert "`harbour.md`: Added 1" in result.content and result.ephemeral
    assert in_a.at < result.at and in_b.at < result.at
    edits = [r for r in fake.for_interaction(long_ingest) if r.method == "PATCH"]
    assert any("Indexing `harbour.md`:" in r.content and " s…" in r.content for r in edits)
    assert edits[-1].content == "`harbour.md`: done."
    times = [r.at for r in edits[:-1]]  # the progress edits, at most one per 2 s
    assert all(b - a >= 1.5 for a, b in zip(times, times[1:], strict=False))

    # once it is complete, the new document answers
    harbour = await ask(fake, "Which tug moved barge 21?", fake.alice, fake.channel_id)
    assert any(name.endswith("harbour.md") for name in cited(harbour))


@pytest.mark.slow
async def test_two_ingests_of_one_knowledge_base_queue(
    fake: FakeDiscord, start_bot: StartBot
) -> None:
    bot = await start_bot()
    # A `qabot ingest` elsewhere holds the collection until the second /ingest has queued, so
    # the first is still under way then, however fast the machine embeds.
    with another_ingest(bot.settings.data_dir, server_collection(int(fake.guild_id))):
        first = await fake.slash(
            "ingest",
            actor=fake.owner,
            attachment=fake.add_attachment("harbour.md", long_document(12).encode()),
        )
        await fake.wait_for(callback_of(fake, first))
        second = await fake.slash(
            "ingest",
            actor=fake.owner,
            attachment=fake.add_attachment("pelicans.md", PELICANS.encode()),
        )
        (waiting,) = await fake.wait_for(
            lambda r: r.method == "PATCH" and second["token"] in r.path and "waiting" in r.content,
            timeout=60,
        )
    (done_1,) = await fake.wait_for(followup_of(first), timeout=300)
    (done_2,) = await fake.wait_for(followup_of(second), timeout=300)
    assert done_1.at < done_2.at and "Added 1" in done_1.content and "Added 1" in done_2.content


# ---- follow-ups --------------------------------------------------------------------------
async def test_a_quick_follow_up_in_the_bots_thread_is_answered(
    fake: FakeDiscord, start_bot: StartBot
) -> None:
    await start_bot(
        discord_cooldown_seconds=60, discord_cooldown_burst=1, discord_collections="guild:*=default"
    )
    question = await fake.say(ISS_QUESTION)
    thread = question["id"]
    await fake.wait_for(is_post_to(thread))
    await fake.say("and when was it launched?", channel_id=thread, mention_bot=False)
    _, follow_up = await fake.wait_for(is_post_to(thread), count=2)
    assert "you can ask again" not in follow_up.content and custom_ids(follow_up)

    # a new question elsewhere is still under the cooldown (one token, used up)
    other = await fake.say(ISS_QUESTION, channel_id=fake.other_channel_id)
    (refused,) = await fake.wait_for(
        lambda r: r.method == "POST" and "you can ask again in" in r.content
    )
    assert str(refused.data["message_reference"]["message_id"]) == other["id"]


class Recording:
    """The real pipeline, recording the history each question came with."""

    def __init__(self, inner: Pipeline) -> None:
        self.inner = inner
        self.histories: list[list[Any]] = []

    def ensure_seeded(self) -> None:
        return None

    def ask(self, question: str, history: Any = ()) -> Any:
        self.histories.append(list(history))
        return self.inner.ask(question, history=history)


async def test_the_threads_questions_and_answers_survive_a_restart(
    fake: FakeDiscord, seeds_pipeline: Pipeline, tmp_path: Path
) -> None:
    recording = Recording(seeds_pipeline)
    async with running_bot(fake, recording, tmp_path / "data"):
        question = await fake.say(ISS_QUESTION)
        thread = question["id"]
        (first,) = await fake.wait_for(is_post_to(thread))
    async with running_bot(fake, recording, tmp_path / "data"):  # a new process
        await fake.say("and when was it launched?", channel_id=thread, mention_bot=False)
        await fake.wait_for(is_post_to(thread), count=2)
    [turn] = recording.histories[-1]
    assert isinstance(turn, Turn) and turn.question == ISS_QUESTION
    assert turn.answer == first.content and "2028" in turn.answer


# ---- secrets -----------------------------------------------------------------------------
async def test_the_token_never_reaches_a_log_when_the_bot_is_started_directly(
    fake: FakeDiscord, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    lines: list[str] = []
    handler = logging.StreamHandler()
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]
    settings = Settings(
        _env_file=None,
        qabot_data_dir=tmp_path / "data",
        discord_token=fake.token,
        qabot_seeds=PACKAGED_SEEDS,
    )
    bot = create_bot(settings)  # no `qabot discord`: nothing else installs a filter
    logging.getLogger().addHandler(handler)  # a handler added after the bot was made
    try:
        async with running_bot(fake, None, tmp_path / "data", bot=bot):
            question = await fake.direct_message(ISS_QUESTION)
            await fake.wait_for(is_post_to(question["channel_id"]))
            # what an HTTP library or a careless extension might log
            logging.getLogger("discord.http").debug("Authorization: Bot %s", fake.token)
            try:
                raise RuntimeError(f"request failed with token {fake.token}")
            except RuntimeError:
                logging.getLogger("some.extension").exception("it failed")
    finally:
        logging.getLogger().removeHandler(handler)
    assert any("Authorization: Bot [redacted]" in line for line in lines)
    assert any("it failed" in line and "[redacted]" in line for line in lines)
    assert len(caplog.records) > 20  # discord.py's own debug logging was captured too
    assert fake.token not in caplog.text
    assert not any(fake.token in line for line in lines)
