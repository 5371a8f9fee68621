"""Anthropic's Claude models through the Messages API."""

from __future__ import annotations

from typing import Any

from answering.backends.base import BackendSpec, ChatBackend
from answering.backends.langchain import LangChainBackend
from qabot.errors import BackendError
from qabot.settings import Settings


def _check(model: str, settings: Settings) -> None:
    if not model:
        raise BackendError(
            "QABOT_LLM=anthropic needs a model name, e.g. anthropic:claude-3-5-haiku-latest."
        )
    if settings.anthropic_api_key is None:
        raise BackendError("QABOT_LLM=anthropic:... needs ANTHROPIC_API_KEY.")


def bind_tool(model: Any, schema: dict) -> Any:
    """Anthropic has no JSON mode: one tool whose input is the reply, and the model is made
    to call it (``tool_choice``), so the tool input is held to the schema."""
    from answering.llm.structured import DESCRIPTION, NAME

    tool = {"name": NAME, "description": DESCRIPTION, "input_schema": schema}
    return model.bind_tools([tool], tool_choice={"type": "tool", "name": NAME})


def _build(model: str, settings: Settings) -> ChatBackend:
    import anthropic
    from langchain_anthropic import ChatAnthropic

    assert settings.anthropic_api_key is not None
    kwargs = {"base_url": settings.anthropic_base_url} if settings.anthropic_base_url else {}
    chat = ChatAnthropic(
        model=model,
        api_key=settings.anthropic_api_key,
        timeout=settings.qabot_llm_timeout,
        max_retries=0,
        temperature=settings.qabot_llm_temperature,
        max_tokens=settings.qabot_llm_answer_tokens,
        **kwargs,
    )
    transient = (anthropic.APIConnectionError, anthropic.APIResponseValidationError)
    return LangChainBackend(f"anthropic:{model}", chat, transient, bind_tool)


SPEC = BackendSpec(
    prefix="anthropic",
    summary="Anthropic Claude models (Messages API).",
    example="anthropic:claude-3-5-haiku-latest",
    build=_build,
    packages=("langchain-anthropic",),
    env=("ANTHROPIC_API_KEY", "ANTHROPIC_BASE_URL (optional)"),
    extra="llm",
    check=_check,
)
