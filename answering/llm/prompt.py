"""Prompt templates (``prompts/*.md``) and packing retrieved chunks into a token budget.

Templates use ``string.Template`` placeholders (``$question``): only the template is parsed,
so braces or dollars inside documents and questions are inserted as they are.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from string import Template

from answering.llm.chat import Message
from qabot.types import Chunk, Hit
from retrieval.tokens import count_tokens, encoding

#: Tokens kept free besides the answer: chat-format overhead and tokenizer mismatch
#: (budgets are counted with tiktoken, the model may tokenize differently).
SAFETY_TOKENS = 64
#: A chunk that does not fit whole is cut to fit only if at least this many tokens remain.
MIN_PARTIAL_TOKENS = 48

# A document must not be able to close or open a chunk tag and pose as the prompt.
_TAG = re.compile(r"<(/?)(chunk)", re.IGNORECASE)


@cache
def template(name: str) -> Template:
    """The template ``prompts/<name>.md``."""
    text = resources.files("prompts").joinpath(f"{name}.md").read_text(encoding="utf-8")
    return Template(text.strip("\n"))


def render(name: str, **values: object) -> str:
    return template(name).substitute({k: str(v) for k, v in values.items()})


@dataclass(frozen=True, slots=True)
class PackedChunk:
    """A chunk as numbered and shown to the model (its text may be a cut prefix)."""

    n: int
    chunk: Chunk


def _neutralise(text: str) -> str:
    return _TAG.sub(lambda m: f"<{m.group(1)}\u200b{m.group(2)}", text)


def chunk_block(n: int, chunk: Chunk) -> str:
    return render("chunk", n=n, source=chunk.source, text=_neutralise(chunk.text))


def _cut(chunk: Chunk, max_tokens: int) -> Chunk:
    """The longest prefix of ``chunk`` within ``max_tokens`` tokens, ended at a word."""
    tokens = encoding().encode(chunk.text, disallowed_special=())
    prefix = encoding().decode(tokens[:max_tokens])
    while prefix and not chunk.text.startswith(prefix):  # a split multi-byte character
        prefix = prefix[:-1]
    cut = prefix.rsplit(" ", 1)[0] if " " in prefix else prefix
    return Chunk(chunk.id, chunk.source, chunk.start, chunk.start + len(cut), cut)


def pack(hits: Sequence[Hit], budget: int) -> list[PackedChunk]:
    """Best hits first, whole while they fit; the first that does not is cut, then stop."""
    packed: list[PackedChunk] = []
    left = budget
    for hit in sorted(hits, key=lambda h: h.rank):
        n = len(packed) + 1
        cost = count_tokens(chunk_block(n, hit.chunk)) + 2
        if cost <= left:
            packed.append(PackedChunk(n, hit.chunk))
            left -= cost
            continue
        overhead = cost - count_tokens(hit.chunk.text)
        room = left - overhead
        if room >= MIN_PARTIAL_TOKENS:
            cut = _cut(hit.chunk, room)
            if cut.text:
                packed.append(PackedChunk(n, cut))
        break
    return packed


def answer_messages(
    question: str,
    hits: Sequence[Hit],
    *,
    context_tokens: int,
    answer_tokens: int,
    system_prompt: str = "answer.system",
) -> tuple[list[Message], list[PackedChunk]]:
    """The answering prompt with as many chunks as the window minus the answer allows.

    ``system_prompt`` names the system template: ``answer.system`` (the free-text reply
    format) or ``answer.structured.system`` (a JSON reply held to a schema).
    """
    system = render(system_prompt)
    frame = render("answer.user", context="", question=question)
    budget = context_tokens - answer_tokens - SAFETY_TOKENS
    budget -= count_tokens(system) + count_tokens(frame)
    packed = pack(hits, max(0, budget))
    context = "\n\n".join(chunk_block(p.n, p.chunk) for p in packed)
    user = render("answer.user", context=context, question=question)
    return [("system", system), ("human", user)], packed


def condense_messages(question: str, history: Sequence[str]) -> list[Message]:
    """The prompt that rewrites a follow-up into a standalone question."""
    earlier = "\n".join(f"- {h}" for h in history)
    return [
        ("system", render("condense.system")),
        ("human", render("condense.user", history=earlier, question=question)),
    ]
