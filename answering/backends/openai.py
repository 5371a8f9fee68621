"""OpenAI and every OpenAI-compatible server (vLLM, llama.cpp server, LM Studio)."""

from __future__ import annotations

from typing import Any

from answering.backends.base import BackendSpec, ChatBackend
from answering.backends.langchain import LangChainBackend
from qabot.errors import BackendError
from qabot.settings import Settings

#: Local OpenAI-compatible servers accept any key; the SDK insists on having one.
PLACEHOLDER_KEY = "not-needed"


def _check(model: str, settings: Settings) -> None:
    if not model:
        raise BackendError("QABOT_LLM=openai needs a model name, e.g. openai:gpt-4o-mini.")
    if settings.openai_api_key is None and not settings.openai_base_url:
        raise BackendError(
            "QABOT_LLM=openai:... needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)."
        )


def bind_json_schema(model: Any, schema: dict) -> Any:
    """OpenAI structured outputs: ``response_format`` of type ``json_schema``, strict."""
    from answering.llm.structured import NAME

    response_format = {
        "type": "json_schema",
        "json_schema": {"name": NAME, "schema": schema, "strict": True},
    }
    return model.bind(response_format=response_format)


def _build(model: str, settings: Settings) -> ChatBackend:
    import openai
    from langchain_openai import ChatOpenAI

    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    chat = ChatOpenAI(
        model=model,
        api_key=key or PLACEHOLDER_KEY,
        base_url=settings.openai_base_url,
        timeout=settings.qabot_llm_timeout,
        max_retries=0,
        temperature=settings.qabot_llm_temperature,
        max_tokens=settings.qabot_llm_answer_tokens,
        use_responses_api=False,
    )
    transient = (openai.APIConnectionError, openai.APIResponseValidationError)
    return LangChainBackend(f"openai:{model}", chat, transient, bind_json_schema)


SPEC = BackendSpec(
    prefix="openai",
    summary="OpenAI chat models, or any OpenAI-compatible server via OPENAI_BASE_URL.",
    example="openai:gpt-4o-mini",
    build=_build,
    packages=("langchain-openai",),
    env=("OPENAI_API_KEY", "OPENAI_BASE_URL (optional)"),
    extra="llm",
    check=_check,
)
