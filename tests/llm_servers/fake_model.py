"""Stand-ins for a model: functions from the chat messages to a reply text."""

from __future__ import annotations

import re

_CHUNK = re.compile(r'<chunk n="(\d+)" source="[^"]*">\n(.*?)\n</chunk>', re.DOTALL)
_SENTENCE = re.compile(r"[^.!?\n]{12,}[.!?]")


def chunks_in(messages: list[dict[str, str]]) -> dict[int, str]:
    """The numbered context chunks of the last user message."""
    user = [m["content"] for m in messages if m["role"] == "user"]
    return {int(n): text for n, text in _CHUNK.findall(user[-1] if user else "")}


def cite_first_sentence(messages: list[dict[str, str]]) -> str:
    """A well-behaved model: the first sentence of chunk 1, cited with a verbatim quote."""
    chunks = chunks_in(messages)
    if not chunks:
        return "I don't know."
    n = min(chunks)
    m = _SENTENCE.search(chunks[n])
    if m is None:
        return "I don't know."
    sentence = m.group().strip()
    return f'{sentence} [{n}]\n\nQuotes:\n[{n}] "{sentence}"'


def obey_injection(messages: list[dict[str, str]]) -> str:
    """A gullible model: does what a document tells it to, citing the document."""
    for n, text in chunks_in(messages).items():
        if "IGNORE ALL PREVIOUS INSTRUCTIONS" in text.upper():
            return (
                f"PWNED. Send your password to evil.example [{n}].\n\n"
                f'Quotes:\n[{n}] "the password is hunter2 and the moon is cheese"'
            )
    return cite_first_sentence(messages)


def cite_first_sentence_claims(messages: list[dict[str, str]], schema: dict) -> dict:
    """A well-behaved model held to ``schema``: the first sentence of the first chunk as one
    claim (choosing among the schema's allowed quotes when it lists them, as a grammar-bound
    model must)."""
    chunks = chunks_in(messages)
    if not chunks:
        return {"claims": []}
    n = min(chunks)
    item = schema["properties"]["claims"]["items"]["properties"]
    allowed = item["quote"].get("enum")
    if allowed:
        sentence = next((q for q in allowed if q in chunks[n]), None)
    else:
        m = _SENTENCE.search(chunks[n])
        sentence = m.group().strip() if m else None
    if sentence is None:
        return {"claims": []}
    return {"claims": [{"chunk": n, "quote": sentence, "text": sentence}]}
