"""Models served by a local Ollama (``/api/chat``)."""

from __future__ import annotations

from typing import Any

from answering.backends.base import BackendSpec, ChatBackend
from answering.backends.langchain import LangChainBackend
from qabot.errors import BackendError
from qabot.settings import Settings


def _check(model: str, settings: Settings) -> None:
    if not model:
        raise BackendError("QABOT_LLM=ollama needs a model name, e.g. ollama:llama3.2.")


def bind_format(model: Any, schema: dict) -> Any:
    """Ollama structured outputs: the JSON schema as the request's ``format``."""
    return model.bind(format=schema)


def _build(model: str, settings: Settings) -> ChatBackend:
    from langchain_ollama import ChatOllama

    chat = ChatOllama(
        model=model,
        base_url=settings.ollama_base_url,
        temperature=settings.qabot_llm_temperature,
        num_predict=settings.qabot_llm_answer_tokens,
        num_ctx=settings.qabot_llm_context_tokens,
        client_kwargs={"timeout": settings.qabot_llm_timeout},
    )
    return LangChainBackend(f"ollama:{model}", chat, binder=bind_format, schema_limits=True)


SPEC = BackendSpec(
    prefix="ollama",
    summary="A model served by Ollama (no key; OLLAMA_BASE_URL if not on localhost:11434).",
    example="ollama:llama3.2",
    build=_build,
    packages=("langchain-ollama",),
    env=("OLLAMA_BASE_URL (optional)",),
    extra="llm",
    check=_check,
)
