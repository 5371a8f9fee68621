"""Rendering answers for Discord: limits, splitting and the sources embed."""

from __future__ import annotations

import logging

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.discord.app import RedactSecrets
from bot.discord.render import (
    EMBED_TOTAL,
    FIELD_VALUE,
    MESSAGE_LIMIT,
    render_answer,
    render_sources,
    split_text,
    trim,
)
from qabot.types import Answer, Citation


def citation(n: int, excerpt: str, source: str = "/data/docs/iss.txt") -> Citation:
    return Citation(n=n, source=source, start=0, end=len(excerpt), excerpt=excerpt)


def embed_size(embed) -> int:
    return len(embed)  # discord.Embed.__len__ counts what Discord's 6,000 limit counts


# ---- splitting -----------------------------------------------------------------------------
def test_short_text_is_one_part() -> None:
    assert split_text("Hello there.") == ["Hello there."]


def test_splits_at_sentence_ends_not_inside_words() -> None:
    sentence = "The station orbits the Earth every ninety minutes or so. "
    text = sentence * 60
    parts = split_text(text, 500)
    assert len(parts) > 1
    assert all(len(p) <= 500 for p in parts)
    assert all(p.endswith(".") for p in parts)
    assert " ".join(parts).split() == text.split()


def test_prefers_a_line_break_to_a_space() -> None:
    text = "First line.\n" + "a " * 40 + "end"
    parts = split_text(text, 60)
    assert parts[0] == "First line."
    assert all(len(p) <= 60 for p in parts)


def test_quote_that_fits_is_never_split() -> None:
    quote = '"' + " ".join(["quoted"] * 12) + '."'  # ~90 characters
    text = ("Some text here. " * 5) + quote + (" More text after." * 5)
    for limit in range(100, 200, 7):
        parts = split_text(text, limit)
        assert any(quote in p for p in parts), limit


def test_code_block_is_closed_and_reopened() -> None:
    code = "```python\n" + "\n".join(f"x_{i} = {i}" for i in range(200)) + "\n```"
    parts = split_text("Here is code:\n" + code + "\nDone.", 300)
    assert len(parts) > 2
    for part in parts:
        assert len(part) <= 300
        assert part.count("```") % 2 == 0, part
    code_parts = [p for p in parts if "x_" in p]
    assert all(p.lstrip().startswith("```python") for p in code_parts[1:])


def test_a_word_longer_than_the_limit_is_cut() -> None:
    parts = split_text("a " + "x" * 250 + " b", 100)
    assert all(len(p) <= 100 for p in parts)
    assert "".join(parts).replace(" ", "") == "a" + "x" * 250 + "b"


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.text(alphabet="abcdefg ", min_size=1, max_size=40),
            st.sampled_from([". ", "\n", "\n\n", '"', "```py\n", "```", "! ", "“", "”"]),
        ),
        max_size=120,
    ),
    st.integers(min_value=40, max_value=400),
)
def test_split_properties(pieces: list[str], limit: int) -> None:
    text = "".join(pieces)
    parts = split_text(text, limit)
    assert all(len(p) <= limit for p in parts)
    # nothing lost or reordered but whitespace and the fences added around a cut code block
    strip = lambda s: "".join(s.split()).replace("```py", "").replace("```", "")  # noqa: E731
    assert strip("".join(parts)) == strip(text)


def test_trim_ends_at_a_word() -> None:
    assert trim("one two three four", 12) == "one two…"
    assert len(trim("x" * 50, 10)) == 10
    assert trim("short", 10) == "short"


# ---- answers and sources ---------------------------------------------------------------------
def test_answer_with_sources_embed() -> None:
    answer = Answer(
        question="q",
        text="Russia stays until 2028. [1]",
        citations=[citation(1, "Roscosmos plans to remain until at least 2028.")],
    )
    rendered = render_answer(answer)
    assert rendered.contents == ["Russia stays until 2028. [1]"]
    embed = rendered.embed
    assert embed is not None and embed.title == "Sources"
    assert embed.fields[0].name == "[1] iss.txt"
    assert embed.fields[0].value == "> Roscosmos plans to remain until at least 2028."


def test_abstention_has_no_sources() -> None:
    answer = Answer(question="q", text="I couldn't find that in the documents.", abstained=True)
    rendered = render_answer(answer)
    assert rendered.embed is None
    assert rendered.contents == ["I couldn't find that in the documents."]


def test_embed_stays_within_discord_limits() -> None:
    excerpt = "A very long excerpt with *markdown* and `code` and @everyone. " * 60
    citations = [citation(i, excerpt, f"/docs/{'n' * 300}{i}.txt") for i in range(1, 31)]
    embed = render_answer(Answer(question="q", text="x [1]", citations=citations)).embed
    assert embed is not None
    assert len(embed.fields) == 25
    assert all(len(f.value) <= FIELD_VALUE and len(f.name) <= 256 for f in embed.fields)
    assert embed_size(embed) <= EMBED_TOTAL
    assert "5 more" in (embed.footer.text or "")


def test_full_sources_are_split_into_messages() -> None:
    citations = [citation(i, f"Sentence number {i} is here. " * 40) for i in range(1, 6)]
    parts = render_sources(citations)
    assert len(parts) > 1 and all(len(p) <= MESSAGE_LIMIT for p in parts)
    assert "**[1] iss.txt**" in parts[0]


def test_token_is_redacted_from_logs(caplog: pytest.LogCaptureFixture) -> None:
    token = "MTIzNDU2.secret-token"
    logger = logging.getLogger("qabot.test.redact")
    handler_filter = RedactSecrets(token)
    logger.addFilter(handler_filter)
    try:
        with caplog.at_level(logging.INFO, logger="qabot.test.redact"):
            logger.info("connecting with %s", token)
    finally:
        logger.removeFilter(handler_filter)
    assert token not in caplog.text and "[redacted]" in caplog.text
