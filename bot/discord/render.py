"""Render answers for Discord: message text, a sources embed, and limit-aware splitting.

Nothing here talks to Discord; it only turns an :class:`~qabot.types.Answer` into what a
message can carry (2,000 characters of content, an embed within Discord's embed limits).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PurePath

import discord

from qabot.types import Answer, Citation

MESSAGE_LIMIT = 2000
EMBED_TOTAL = 6000
EMBED_TITLE = 256
EMBED_DESCRIPTION = 4096
EMBED_FIELDS = 25
FIELD_NAME = 256
FIELD_VALUE = 1024
EMBED_FOOTER = 2048

SOURCES_COLOUR = discord.Colour.blurple()
#: Every message the bot sends uses this: no question or document can ping anyone.
NO_MENTIONS = discord.AllowedMentions.none()
_FENCE = "```"
_ELLIPSIS = "…"


@dataclass(slots=True)
class Rendered:
    """What to send: one or more message texts; the embed goes with the last one."""

    contents: list[str]
    embed: discord.Embed | None = None


def source_name(source: str) -> str:
    """The document's file name (``/data/docs/iss.txt`` -> ``iss.txt``); a web page's URL."""
    if source.startswith(("http://", "https://")):
        return trim(source, 200)
    return PurePath(source).name or source


def trim(text: str, limit: int) -> str:
    """Shorten ``text`` to at most ``limit`` characters at a word boundary, adding ``…``."""
    text = text.strip()
    if len(text) <= limit:
        return text
    if limit <= 1:
        return _ELLIPSIS[:limit]
    head = text[: limit - 1]
    cut = head.rsplit(None, 1)[0] if re.search(r"\s", head) else head
    return cut.rstrip(" ,;:") + _ELLIPSIS


def quote(text: str) -> str:
    """A Markdown block quote of ``text`` with its Markdown escaped."""
    body = discord.utils.escape_markdown(text.strip())
    return "\n".join("> " + line if line.strip() else ">" for line in body.splitlines())


def render_answer(answer: Answer) -> Rendered:
    """The answer text (split to fit) and, unless it abstained, a sources embed."""
    text = answer.text.strip() or "(no answer)"
    if answer.notice:
        text = f"{text}\n\n-# {answer.notice}"
    if answer.abstained or not answer.citations:
        return Rendered(split_text(text))
    return Rendered(split_text(text), sources_embed(answer.citations))


def sources_embed(citations: list[Citation]) -> discord.Embed:
    """One field per citation: ``[n] document`` and its quoted excerpt, within embed limits."""
    embed = discord.Embed(title="Sources", colour=SOURCES_COLOUR)
    shown = citations[:EMBED_FIELDS]
    names = [trim(f"[{c.n}] {source_name(c.source)}", FIELD_NAME) for c in shown]
    footer = ""
    if len(citations) > len(shown):
        footer = f"and {len(citations) - len(shown)} more: press Sources to see them all."
    budget = EMBED_TOTAL - len(embed.title or "") - len(footer) - sum(map(len, names)) - 50
    per_field = max(40, min(FIELD_VALUE, budget // max(1, len(shown))))
    for name, citation in zip(names, shown, strict=True):
        embed.add_field(name=name, value=_quoted_excerpt(citation.excerpt, per_field), inline=False)
    if footer:
        embed.set_footer(text=footer)
    return embed


def _quoted_excerpt(excerpt: str, limit: int) -> str:
    """Quote ``excerpt`` trimmed so that the quoted, escaped form fits ``limit``."""
    size = limit
    while size > 0:
        value = quote(trim(excerpt, size))
        if len(value) <= limit:
            return value
        size -= max(1, len(value) - limit)
    return _ELLIPSIS


def render_sources(citations: list[Citation], limit: int = MESSAGE_LIMIT) -> list[str]:
    """The full excerpts with their documents, as messages of at most ``limit`` characters."""
    if not citations:
        return ["This answer has no sources."]
    blocks = [
        f"**[{c.n}] {discord.utils.escape_markdown(source_name(c.source))}** "
        f"(characters {c.start}-{c.end})\n{quote(c.excerpt)}"
        for c in citations
    ]
    return split_text("\n\n".join(blocks), limit)


# ---- splitting -----------------------------------------------------------------------------
_OPEN_QUOTES = {'"': '"', "“": "”"}
_CLOSERS = "\"')]”’*_"
_LANG = re.compile(r"[\w+#.-]{0,20}")


def split_text(text: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Split ``text`` into parts of at most ``limit`` characters.

    Parts end at a line break or a sentence end that is outside code blocks and quotes. Only
    when no such boundary exists does it fall back to a space (never inside a word), and only
    a single word longer than ``limit`` is cut. A code block that has to be split is closed
    at the end of one part and reopened at the start of the next.
    """
    if limit < 20:
        raise ValueError("limit must be at least 20 characters")
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut, fence = _best_cut(rest, limit)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        if fence is not None:
            head = f"{head}\n{_FENCE}"
            rest = f"{_FENCE}{fence}\n{rest}"
        if head.strip():
            parts.append(head)
    if rest.strip():
        parts.append(rest)
    return parts or [""]


def _ends_sentence(text: str, i: int) -> bool:
    """Whether ``text[:i]`` ends with sentence punctuation (closing quotes allowed after it)."""
    j = i - 1
    while j >= 0 and text[j] in _CLOSERS:
        j -= 1
    return j >= 0 and text[j] in ".!?…"


def _best_cut(text: str, limit: int) -> tuple[int, str | None]:
    """Where to end the next part, and the open code block's language if the cut is inside one.

    The best cut is the last boundary (line break or sentence end) outside code and quotes;
    then a line break inside a code block; then the last space outside quotes; then any space.
    """
    boundary = code_line = space_outside = space_any = 0
    code_lang = lang = ""
    in_code = False
    quote_close: str | None = None
    reserve = len(_FENCE) + 1  # room for the closing fence when cutting inside code
    i = 0
    while i < len(text) and i <= limit:
        if text.startswith(_FENCE, i):
            if in_code:
                in_code = False
                i += len(_FENCE)
                continue
            in_code = True
            line_end = text.find("\n", i)
            line_end = len(text) if line_end == -1 else line_end
            match = _LANG.fullmatch(text[i + len(_FENCE) : line_end].strip())
            lang = match.group(0) if match else ""
            i = line_end + 1  # a cut is never on the fence's own line
            continue
        ch = text[i]
        if in_code:
            if ch == "\n" and i + reserve <= limit:
                code_line, code_lang = i, lang
        elif quote_close is not None and ch == quote_close:
            quote_close = None
        elif quote_close is None and ch in _OPEN_QUOTES:
            quote_close = _OPEN_QUOTES[ch]
        elif ch.isspace():
            space_any = i
            if quote_close is None:
                space_outside = i
                if ch == "\n" or _ends_sentence(text, i):
                    boundary = i
        i += 1
    if boundary:
        return boundary, None
    if code_line:
        return code_line, code_lang
    if space_outside:
        return space_outside, None
    if space_any:
        return space_any, None
    if in_code:
        return limit - reserve, lang
    return limit, None
