"""End to end: the real discord.py client against a fake Discord (gateway + REST) on 127.0.0.1.

One pipeline (seeds plus two small documents) is shared by the session; each test starts a
fresh bot against a fresh fake and checks what the bot actually sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from answering.pipeline import Pipeline
from bot.discord.app import QabotBot, create_bot
from qabot.settings import PACKAGED_SEEDS, Settings
from qabot.types import Answer
from tests.fake_discord import FakeDiscord, Request
from tests.fake_discord.harness import all_released, pings_nobody

ISS_QUESTION = "When does Russia plan to leave the ISS?"
FOLLOW_UP = "and when was it launched?"
ZEPHYR_DOC = (
    "Zephyr relay operations notes.\n\n"
    "The Zephyr relay maintenance window is announced to @everyone and to <@&987654321> "
    "every Tuesday, and it runs from 09:00 to 11:00 UTC.\n"
)
PELICAN_DOC = (
    "# Pelicans\n\nBrown pelicans dive from heights of up to twenty metres to catch fish, "
    "and they are the only pelicans that hunt by plunge diving.\n"
)


# ---- fixtures ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    docs = tmp_path_factory.mktemp("docs")
    (docs / "zephyr.txt").write_text(ZEPHYR_DOC, encoding="utf-8")
    data = tmp_path_factory.mktemp("qabot-data")
    pipe = Pipeline(Settings(_env_file=None, qabot_data_dir=data, qabot_seeds=PACKAGED_SEEDS))
    pipe.ingest([PACKAGED_SEEDS, docs / "zephyr.txt"])
    return pipe


StartBot = Callable[..., Awaitable[QabotBot]]


@pytest.fixture
async def start_bot(
    fake: FakeDiscord, pipeline: Pipeline, tmp_path: Path
) -> AsyncIterator[StartBot]:
    running: list[tuple[QabotBot, asyncio.Task[None]]] = []

    async def start(pipe: Any = None, **overrides: Any) -> QabotBot:
        values: dict[str, Any] = {"discord_cooldown_seconds": 0, "discord_token": fake.token}
        values.update(overrides)
        settings = Settings(_env_file=None, qabot_data_dir=tmp_path / "bot-data", **values)
        bot = create_bot(settings, pipeline=pipe or pipeline)
        bot._connection.guild_ready_timeout = 0.1  # don't wait 2 s for more guilds
        task = asyncio.create_task(bot.start(fake.token))
        running.append((bot, task))
        ready = asyncio.create_task(bot.wait_until_ready())
        done, _ = await asyncio.wait({task, ready}, timeout=30, return_when="FIRST_COMPLETED")
        if ready not in done:
            ready.cancel()
            if task in done:
                task.result()  # raise why the bot stopped
            raise TimeoutError("the bot did not become ready")
        return bot

    yield start
    for bot, task in running:
        await bot.close()
        await asyncio.wait_for(task, 10)


def is_post_to(channel_id: str) -> Callable[[Request], bool]:
    return lambda r: r.method == "POST" and r.path == f"/channels/{channel_id}/messages"


def is_followup_of(interaction: dict[str, Any]) -> Callable[[Request], bool]:
    """A new message the bot posted in answer to ``interaction`` (not its first reply)."""
    path = f"/webhooks/{interaction['application_id']}/{interaction['token']}"
    return lambda r: r.method == "POST" and r.path == path


def custom_ids(request: Request) -> list[str]:
    rows = (request.data or {}).get("components") or []
    return [c["custom_id"] for row in rows for c in row.get("components", [])]


def message_of(fake: FakeDiscord, request: Request, index: int = -1) -> dict[str, Any]:
    """The message object the fake created for ``request`` (matched by content)."""
    mine = [m for m in fake.messages.values() if m["author"]["id"] == fake.app_id]
    return [m for m in mine if m["content"] == request.content][index]


# ---- asking ----------------------------------------------------------------------------------
async def test_mention_opens_a_thread_and_answers_with_sources(
    fake: FakeDiscord, start_bot: StartBot
) -> None:
    await start_bot()
    question = await fake.say(ISS_QUESTION)

    (thread_req,) = await fake.wait_for(lambda r: r.path.endswith("/threads"))
    assert thread_req.path == f"/channels/{fake.channel_id}/messages/{question['id']}/threads"
    assert thread_req.body["name"] == ISS_QUESTION
    thread_id = question["id"]
    (reply,) = await fake.wait_for(is_post_to(thread_id))

    assert "2028" in reply.content and "[1]" in reply.content
    assert len(reply.content) <= 2000
    (embed,) = reply.data["embeds"]
    assert embed["title"] == "Sources"
    assert embed["fields"][0]["name"].startswith("[1] ")
    assert embed["fields"][0]["name"].endswith(".txt")
    assert embed["fields"][0]["value"].startswith("> ")
    assert "2028" in embed["fields"][0]["value"]
    ids = custom_ids(reply)
    assert [i.split(":")[1] for i in ids] == ["src", "vote", "vote"]
    typing = [r for r in fake.requests if r.path == f"/channels/{thread_id}/typing"]
    assert typing and typing[0].at <= reply.at


async def test_thread_follow_up_uses_the_earlier_question(
    fake: FakeDiscord, start_bot: StartBot, pipeline: Pipeline
) -> None:
    await start_bot()
    question = await fake.say(ISS_QUESTION)
    thread_id = question["id"]
    await fake.wait_for(is_post_to(thread_id))

    await fake.say(FOLLOW_UP, channel_id=thread_id, mention_bot=False)
    first, second = await fake.wait_for(is_post_to(thread_id), count=2)

    with_history = await asyncio.to_thread(pipeline.ask, FOLLOW_UP, history=[ISS_QUESTION])
    alone = await asyncio.to_thread(pipeline.ask, FOLLOW_UP)
    assert second.content.startswith(with_history.text.split("[1]")[0].strip())
    assert with_history.text != alone.text  # the context changed the answer
    assert len([r for r in fake.requests if r.path.endswith("/threads")]) == 1


async def test_direct_message_is_answered_as_a_reply(
    fake: FakeDiscord, start_bot: StartBot
) -> None:
    await start_bot()
    question = await fake.direct_message(ISS_QUESTION)
    (reply,) = await fake.wait_for(is_post_to(question["channel_id"]))
    assert "2028" in reply.content
    assert str(reply.data["message_reference"]["message_id"]) == question["id"]
    assert not any(r.path.endswith("/threads") for r in fake.requests)


async def test_slash_ask_is_deferred_then_followed_up(
    fake: FakeDiscord, start_bot: StartBot
) -> None:
    await start_bot()
    assert {c["name"] for c in fake.commands} == {
        "ask",
        "ingest",
        "reindex",
        "sources",
        "stats",
        "knowledge",
    }
    sent_at = time.monotonic()
    interaction = await fake.slash("ask", {"question": ISS_QUESTION})
    await fake.wait_for(lambda r: r.path.startswith(f"/webhooks/{fake.app_id}/"))
    callback, followup = fake.for_interaction(interaction)
    assert callback.path.endswith("/callback") and callback.body["type"] == 5  # deferred
    assert callback.at - sent_at < 3.0
    assert followup.query.get("wait") in ("1", "true")  # the message is returned
    assert "2028" in followup.content
    assert followup.data["embeds"][0]["title"] == "Sources"
    assert len(custom_ids(followup)) == 3


async def test_abstention_is_plain_without_sources(fake: FakeDiscord, start_bot: StartBot) -> None:
    await start_bot()
    question = await fake.direct_message("What is the recipe for banana bread?")
    (reply,) = await fake.wait_for(is_post_to(question["channel_id"]))
    assert reply.content == "I couldn't find that in the documents."
    assert not reply.data.get("embeds")
    assert not any(i.startswith("qabot:src:") for i in custom_ids(reply))


# ---- buttons and feedback -----------------------------------------------------------------
async def test_sources_and_vote_buttons(fake: FakeDiscord, start_bot: StartBot) -> None:
    bot = await start_bot()
    question = await fake.direct_message(ISS_QUESTION)
    (reply,) = await fake.wait_for(is_post_to(question["channel_id"]))
    message = message_of(fake, reply)
    src, up, down = custom_ids(reply)

    click = await fake.click(message, src)
    await fake.wait_for(lambda r: r.path.endswith(f"/{click['token']}/callback"))
    (callback,) = fake.for_interaction(click)
    assert callback.body["type"] == 4 and callback.ephemeral
    assert "**[1]" in callback.content and "2028" in callback.content
    assert len(callback.content) <= 2000

    vote = await fake.click(message, down, actor=fake.bob)
    await fake.wait_for(lambda r: r.path.endswith(f"/{vote['token']}/callback"))
    (callback,) = fake.for_interaction(vote)
    assert callback.ephemeral and "Thanks" in callback.content

    answer_id = src.rsplit(":", 1)[1]
    (row,) = bot.feedback.votes(answer_id)
    assert row["vote"] == -1
    assert row["question"] == ISS_QUESTION and "2028" in row["answer"]
    assert "2028" in row["citations"]
    assert fake.bob.id not in row["user_hash"] and len(row["user_hash"]) == 64
    summary = bot.feedback.summary()
    assert (summary.answers, summary.up, summary.down) == (1, 0, 1)


# ---- long answers -------------------------------------------------------------------------
class LongAnswers:
    """The real pipeline, with its answer text made long (as an LLM backend's can be)."""

    QUOTED = '"' + "a quoted passage that must stay whole " * 4 + '"'
    CODE = "```python\n" + "\n".join(f"print({i})" for i in range(30)) + "\n```"

    def __init__(self, inner: Pipeline) -> None:
        self.inner = inner
        self.last_text = ""

    def ensure_seeded(self) -> None:
        return None

    def ask(self, question: str, history: list[str] | None = None) -> Answer:
        answer = self.inner.ask(question, history=history or [])
        # The offline answer leads with a short span; its excerpts make it long.
        paragraph = " ".join([*(c.excerpt for c in answer.citations), answer.text] * 3)
        answer.text = "\n\n".join([paragraph, self.QUOTED, self.CODE, paragraph, paragraph])
        self.last_text = answer.text
        return answer


async def test_long_answer_is_split_under_2000_characters(
    fake: FakeDiscord, start_bot: StartBot, pipeline: Pipeline
) -> None:
    long_answers = LongAnswers(pipeline)
    await start_bot(pipe=long_answers)
    question = await fake.direct_message(ISS_QUESTION)
    channel = question["channel_id"]
    await fake.wait_for(is_post_to(channel), count=2)
    await asyncio.sleep(0.3)
    parts = [r for r in fake.requests if is_post_to(channel)(r)]
    assert len(parts) >= 2
    assert all(len(r.content) <= 2000 for r in parts)
    assert all(r.content.count("```") % 2 == 0 for r in parts)
    assert all(r.content.count('"') % 2 == 0 for r in parts)
    assert len(long_answers.last_text) > 2000
    joined = " ".join(r.content for r in parts)
    assert joined.split() == long_answers.last_text.split()  # nothing lost, nothing cut
    assert any(LongAnswers.QUOTED in r.content for r in parts)  # the quote stayed whole
    assert any(LongAnswers.CODE in r.content for r in parts)  # so did the code block
    # only the last part carries the sources and the buttons
    assert parts[-1].data.get("embeds") and custom_ids(parts[-1])
    assert not any(r.data.get("embeds") for r in parts[:-1])
    for r in parts[:-1]:
        assert r.content[-1] in '.!?"`)]' or r.content.endswith("```"), r.content[-40:]


# ---- admin ----------------------------------------------------------------------------------
async def test_admin_commands_are_refused_politely_to_members(
    fake: FakeDiscord, start_bot: StartBot
) -> None:
    await start_bot(discord_admin_role="qabot-admins")
    for name in ("sources", "stats", "reindex"):
        interaction = await fake.slash(name, actor=fake.alice)
        await fake.wait_for(lambda r, i=interaction: r.path.endswith(f"/{i['token']}/callback"))
        (callback,) = fake.for_interaction(interaction)
        assert callback.ephemeral
        assert "only members with the Manage Server permission" in callback.content

    fake.bob.roles.append(fake.admin_role_id)  # bob has the configured role
    interaction = await fake.slash("sources", actor=fake.bob)
    await fake.wait_for(lambda r: r.path.endswith(f"/{interaction['token']}/callback"))
    (callback,) = fake.for_interaction(interaction)
    assert "documents**" in callback.content and "zephyr.txt" in callback.content


async def test_admin_ingest_then_ask_then_stats(
    fake: FakeDiscord, start_bot: StartBot, pipeline: Pipeline
) -> None:
    await start_bot()
    attachment = fake.add_attachment("pelicans.md", PELICAN_DOC.encode())
    interaction = await fake.slash("ingest", actor=fake.owner, attachment=attachment)
    (followup,) = await fake.wait_for(is_followup_of(interaction))
    callback = fake.for_interaction(interaction)[0]
    # answered at once ("Indexing ..."), privately; the result follows when it is done
    assert callback.body["type"] == 4 and callback.body["data"]["flags"] & 64
    assert "Indexing `pelicans.md`" in callback.content
    assert "pelicans.md" in followup.content and "Added 1" in followup.content
    assert followup.ephemeral
    assert any(s.endswith("pelicans.md") for s in pipeline.sources())

    ask = await fake.slash("ask", {"question": "How high do brown pelicans dive from?"})
    await fake.wait_for(lambda r: r.path.startswith(f"/webhooks/{fake.app_id}/{ask['token']}"))
    answer = fake.for_interaction(ask)[-1]
    assert "twenty metres" in answer.content
    assert answer.data["embeds"][0]["fields"][0]["name"].endswith("pelicans.md")

    stats = await fake.slash("stats", actor=fake.owner)
    await fake.wait_for(lambda r: r.path.endswith(f"/{stats['token']}/callback"))
    text = fake.for_interaction(stats)[0].content
    assert "questions answered: 1" in text and "abstention rate: 0%" in text
    assert "p50 / p95" in text

    reindex = await fake.slash("reindex", actor=fake.owner)
    (done,) = await fake.wait_for(is_followup_of(reindex))
    assert "Added 0, updated 0" in done.content and done.ephemeral

    bad = fake.add_attachment("tool.exe", b"MZ")
    refused = await fake.slash("ingest", actor=fake.owner, attachment=bad)
    await fake.wait_for(lambda r: r.path.endswith(f"/{refused['token']}/callback"))
    assert "can't read `tool.exe`" in fake.for_interaction(refused)[0].content


# ---- limits --------------------------------------------------------------------------------
async def test_cooldown_and_channel_allowlist(fake: FakeDiscord, start_bot: StartBot) -> None:
    await start_bot(
        discord_cooldown_seconds=60,
        discord_cooldown_burst=1,
        discord_channels=[int(fake.other_channel_id)],
    )
    first = await fake.direct_message(ISS_QUESTION)
    await fake.wait_for(is_post_to(first["channel_id"]))
    await fake.direct_message("And who said that?")
    _, second = await fake.wait_for(is_post_to(first["channel_id"]), count=2)
    assert "you can ask again in" in second.content

    interaction = await fake.slash("ask", {"question": ISS_QUESTION}, actor=fake.bob)
    await fake.wait_for(lambda r: r.path.endswith(f"/{interaction['token']}/callback"))
    (callback,) = fake.for_interaction(interaction)
    assert callback.ephemeral and "this channel" in callback.content

    await fake.say(ISS_QUESTION, actor=fake.bob)  # general: not on the allowlist
    await fake.say(ISS_QUESTION, actor=fake.bob, channel_id=fake.other_channel_id)
    await fake.wait_for(lambda r: r.path.endswith("/threads"))
    threads = [r for r in fake.requests if r.path.endswith("/threads")]
    assert [r.path.split("/")[2] for r in threads] == [fake.other_channel_id]


# ---- Discord misbehaving -------------------------------------------------------------------
async def test_rest_429_is_waited_out_and_retried(fake: FakeDiscord, start_bot: StartBot) -> None:
    await start_bot()
    fake.rate_limit_once("POST", r"/channels/\d+/messages", retry_after=0.5)
    question = await fake.direct_message(ISS_QUESTION)
    await fake.wait_for(lambda r: is_post_to(question["channel_id"])(r) and r.status == 200)
    limited, ok = [r for r in fake.requests if is_post_to(question["channel_id"])(r)]
    assert limited.status == 429 and ok.status == 200
    assert ok.at - limited.at >= 0.45
    assert ok.content == limited.content and "2028" in ok.content


async def test_gateway_close_4000_resumes_and_still_answers(
    fake: FakeDiscord, start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    bot = await start_bot()
    session = fake.gateway.session_id
    await fake.gateway.close(code=4000)
    # sent while the bot is disconnected: must be replayed on RESUME
    question = await fake.direct_message(ISS_QUESTION)
    await asyncio.wait_for(fake.gateway.resumed.wait(), 30)
    (reply,) = await fake.wait_for(is_post_to(question["channel_id"]))
    assert "2028" in reply.content

    (resume,) = fake.gateway.ops(6)
    assert resume["d"]["session_id"] == session and resume["token_ok"]
    assert len(fake.gateway.ops(2)) == 1  # resumed, not identified again
    assert fake.gateway.connections == 2
    assert not bot.is_closed()
    assert fake.token not in caplog.text


async def test_everyone_in_a_question_pings_nobody(fake: FakeDiscord, start_bot: StartBot) -> None:
    await start_bot()
    # @everyone without mentioning the bot: not a question for it
    await fake.say("@everyone lunch?", mention_bot=False, mention_everyone=True)
    question = await fake.say(
        "@everyone when is the Zephyr relay maintenance window?", mention_everyone=True
    )
    (reply,) = await fake.wait_for(is_post_to(question["id"]))
    threads = [r for r in fake.requests if r.path.endswith("/threads")]
    assert len(threads) == 1 and question["id"] in threads[0].path
    shown = reply.content + str(reply.data.get("embeds"))
    assert "@everyone" in shown  # the document's own @everyone is quoted ...
    assert reply.data["allowed_mentions"] == {"parse": []}  # ... and pings nobody
    assert all(pings_nobody(r.data.get("allowed_mentions")) for r in fake.sent_messages())


async def test_thread_context_survives_a_restart(
    fake: FakeDiscord, start_bot: StartBot, pipeline: Pipeline
) -> None:
    first_bot = await start_bot()
    question = await fake.say(ISS_QUESTION)
    thread_id = question["id"]
    await fake.wait_for(is_post_to(thread_id))
    await first_bot.close()

    await start_bot()  # a new process: the thread's questions are read back from Discord
    await fake.say(FOLLOW_UP, channel_id=thread_id, mention_bot=False)
    _, second = await fake.wait_for(is_post_to(thread_id), count=2)
    with_history = await asyncio.to_thread(pipeline.ask, FOLLOW_UP, history=[ISS_QUESTION])
    assert second.content.startswith(with_history.text.split("[1]")[0].strip())
    assert any(
        r.method == "GET" and r.path == f"/channels/{fake.channel_id}/messages/{thread_id}"
        for r in fake.requests
    )


class SlowAnswers:
    """The real pipeline, one second slower per question (a blocking call, like a big model)."""

    def __init__(self, inner: Pipeline, seconds: float = 1.0) -> None:
        self.inner = inner
        self.seconds = seconds

    def ensure_seeded(self) -> None:
        return None

    def ask(self, question: str, history: list[str] | None = None) -> Answer:
        time.sleep(self.seconds)
        return self.inner.ask(question, history=history or [])


async def test_slow_answers_keep_the_heartbeat_going_and_in_flight_is_capped(
    fake: FakeDiscord, start_bot: StartBot, pipeline: Pipeline
) -> None:
    fake.gateway.heartbeat_interval_ms = 150
    await start_bot(pipe=SlowAnswers(pipeline), discord_max_in_flight=1, discord_max_waiting=0)
    first = await fake.direct_message(ISS_QUESTION)
    await fake.wait_for(lambda r: r.path == f"/channels/{first['channel_id']}/typing")
    beats_before = len(fake.gateway.ops(1))
    second = await fake.direct_message(ISS_QUESTION, actor=fake.bob)
    (busy,) = await fake.wait_for(is_post_to(second["channel_id"]))
    assert "answering a lot of questions" in busy.content
    (answer,) = await fake.wait_for(is_post_to(first["channel_id"]))
    assert "2028" in answer.content
    # the event loop stayed free during the blocking second: heartbeats kept flowing
    assert len(fake.gateway.ops(1)) - beats_before >= 4


async def test_a_question_waits_its_turn_when_every_slot_is_taken(
    fake: FakeDiscord, start_bot: StartBot, pipeline: Pipeline
) -> None:
    bot = await start_bot(
        pipe=SlowAnswers(pipeline), discord_max_in_flight=1, discord_max_waiting=1
    )
    first = await fake.direct_message(ISS_QUESTION)
    await fake.wait_for(lambda r: r.path == f"/channels/{first['channel_id']}/typing")
    second = await fake.direct_message(ISS_QUESTION, actor=fake.bob)
    await fake.wait_for(lambda r: r.path == f"/channels/{second['channel_id']}/typing")
    assert bot.admitted == 2 and bot.in_flight == 1  # one answering, one waiting its turn
    (answer_1,) = await fake.wait_for(is_post_to(first["channel_id"]))
    (answer_2,) = await fake.wait_for(is_post_to(second["channel_id"]))
    assert "2028" in answer_1.content and "2028" in answer_2.content
    await all_released(bot)
    assert bot.admitted == 0 and bot.in_flight == 0
