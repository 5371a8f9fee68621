"""Settings that point each provider's real LangChain client at a :class:`FakeLLM`."""

from __future__ import annotations

from typing import Any

from qabot.settings import Settings

PROVIDERS = ("openai", "anthropic", "ollama")
#: Fast failure handling for tests: short timeout, two retries, near-zero backoff.
FAST = {"qabot_llm_timeout": 0.5, "qabot_llm_retries": 2, "qabot_llm_backoff": 0.01}


def settings_for(provider: str, url: str, **overrides: Any) -> Settings:
    """Settings selecting ``provider`` with a fake model served at ``url``.

    Replies are asked for in free text (``QABOT_LLM_STRUCTURED=off``) unless ``overrides``
    say otherwise: the structured forms have their own tests.
    """
    values: dict[str, Any] = {"_env_file": None, **FAST, "qabot_llm_structured": "off"}
    if provider == "openai":
        values |= {"qabot_llm": "openai:fake-gpt", "openai_base_url": f"{url}/v1"}
    elif provider == "anthropic":
        values |= {
            "qabot_llm": "anthropic:fake-claude",
            "anthropic_api_key": "test-key",
            "anthropic_base_url": url,
        }
    elif provider == "ollama":
        values |= {"qabot_llm": "ollama:fake-llama", "ollama_base_url": url}
    else:
        raise ValueError(provider)
    return Settings(**(values | overrides))
