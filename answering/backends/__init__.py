"""Pluggable answering backends: one ``QABOT_LLM`` setting picks one (see ``base``)."""

from answering.backends.base import (
    BUILTINS,
    ENTRY_POINT_GROUP,
    Answerer,
    BackendSpec,
    ChatBackend,
    Message,
    create,
    parse,
    resolve,
    specs,
)

__all__ = [
    "BUILTINS",
    "Answerer",
    "ENTRY_POINT_GROUP",
    "BackendSpec",
    "ChatBackend",
    "Message",
    "create",
    "parse",
    "resolve",
    "specs",
]
