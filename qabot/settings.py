"""All configuration, read once from the environment and ``.env`` (see ``.env.example``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from qabot.errors import SettingsError

#: The project's own seed documents, used when the store is empty and no path is given.
PACKAGED_SEEDS = Path(__file__).resolve().parent.parent / "seeds"


class Settings(BaseSettings):
    """qabot's settings. Environment variables are the field names in upper case."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    qabot_data_dir: Path = Field(Path(".qabot"), description="Where the store and caches live.")
    qabot_collection: str = Field("default", description="Collection (corpus) name.")
    qabot_seeds: Path | None = Field(
        None, description="Documents ingested automatically when the collection is empty."
    )
    qabot_top_k: int = Field(5, ge=1, le=50, description="Passages retrieved per question.")
    qabot_chunk_tokens: int = Field(180, ge=32, le=1000)
    qabot_chunk_overlap: int = Field(30, ge=0, le=500)
    qabot_max_question_chars: int = Field(
        2000, ge=10, description="Longer questions are cut to this length for retrieval."
    )
    qabot_llm: str = Field("offline", description="Answering backend: offline | openai:<model> ...")
    # ---- LLM backends (see docs/backends.md)
    openai_api_key: SecretStr | None = Field(None, description="Key for openai:<model>.")
    openai_base_url: str | None = Field(
        None, description="Any OpenAI-compatible server (vLLM, llama.cpp server, LM Studio)."
    )
    anthropic_api_key: SecretStr | None = Field(None, description="Key for anthropic:<model>.")
    anthropic_base_url: str | None = Field(None, description="Anthropic API address override.")
    ollama_base_url: str | None = Field(None, description="Ollama server (default :11434).")
    qabot_llm_timeout: float = Field(60.0, gt=0, description="Seconds per model request.")
    qabot_llm_retries: int = Field(2, ge=0, le=10, description="Retries after a failed call.")
    qabot_llm_backoff: float = Field(1.0, ge=0, description="First retry delay (s), doubling.")
    qabot_llm_context_tokens: int = Field(8192, ge=512, description="Model context window.")
    qabot_llm_answer_tokens: int = Field(512, ge=32, description="Tokens kept for the answer.")
    qabot_llm_temperature: float = Field(0.0, ge=0, le=2)
    qabot_llm_condense: bool = Field(True, description="Rewrite follow-ups as standalone.")
    qabot_llm_structured: Literal["auto", "on", "off"] = Field(
        "auto",
        description="Ask for a JSON reply through the provider's structured output: auto "
        "(fall back to free text when the server refuses it), on (always), off (free text).",
    )
    qabot_llm_threads: int = Field(
        0, ge=0, le=256, description="CPU threads for llamacpp (0: half the CPUs, at least 1)."
    )
    # ---- end LLM backends
    qabot_embed_threads: int = Field(2, ge=1, le=64)
    qabot_chunk_vectors: Literal["sentence-mean", "embedded"] = Field(
        "sentence-mean",
        description="How a new collection makes chunk vectors: the mean of its sentences' "
        "vectors (about half the embedding work) or one embedding each.",
    )
    # ---- embeddings (see docs/backends.md)
    qabot_embeddings: str = Field(
        "e5", description="Embedding model: e5 (packaged) | openai:<model> | ollama:<model>."
    )
    qabot_embeddings_base_url: str | None = Field(
        None, description="Embedding server; default OPENAI_BASE_URL / OLLAMA_BASE_URL."
    )
    qabot_embeddings_api_key: SecretStr | None = Field(
        None, description="Key for the embedding server; default OPENAI_API_KEY."
    )
    qabot_embeddings_batch: int = Field(64, ge=1, le=2048, description="Texts per request.")
    qabot_embeddings_timeout: float = Field(60.0, gt=0, description="Seconds per request.")
    qabot_embeddings_retries: int = Field(3, ge=0, le=10, description="Retries on 429/5xx.")
    qabot_embeddings_backoff: float = Field(1.0, ge=0, description="First retry delay (s).")
    qabot_embeddings_query_prefix: str = Field("", description="Prepended to questions.")
    qabot_embeddings_passage_prefix: str = Field("", description="Prepended to passages.")
    # ---- end embeddings
    # ---- web pages
    qabot_web_timeout: float = Field(20.0, gt=0, description="Seconds per page request.")
    qabot_web_max_pages: int = Field(200, ge=1, description="Page budget of one crawl.")
    qabot_discord_web_private: bool = Field(
        False,
        description="Let /ingest url: fetch from private, loopback and link-local addresses.",
    )
    # ---- end web pages
    qabot_chroma_url: str | None = Field(
        None, description="A Chroma server (http://host:port) instead of the embedded store."
    )

    discord_token: SecretStr | None = Field(None, description="Discord bot token (never logged).")
    # ---- Discord
    discord_channels: Annotated[list[int], NoDecode] = Field(
        default_factory=list, description="Channel ids to answer in (comma-separated); empty: all."
    )
    discord_allow_dms: bool = Field(True, description="Answer direct messages.")
    discord_cooldown_seconds: float = Field(
        10.0, ge=0, description="A user's questions come back one per this many seconds."
    )
    discord_cooldown_burst: int = Field(
        3, ge=1, le=100, description="Questions a user may ask in a row before waiting."
    )
    discord_collections: str = Field(
        "",
        description="Operator mappings: guild:<id>=<name>, guild:*=<name>, channel:<id>=<name>.",
    )
    discord_dm_collection: str | None = Field(
        None, description="Collection that answers direct messages (default: QABOT_COLLECTION)."
    )
    discord_open_collections: int = Field(
        32, ge=1, le=10_000, description="Knowledge bases kept open in memory (least recent out)."
    )
    discord_ingest_workers: int = Field(
        1, ge=1, le=16, description="Ingests run at once (of different knowledge bases)."
    )
    discord_ingest_threads: int = Field(
        1, ge=1, le=64, description="CPU threads of the embedding model that ingests use."
    )
    discord_max_in_flight: int = Field(4, ge=1, le=64, description="Questions answered at once.")
    discord_max_waiting: int = Field(
        100, ge=0, le=10_000, description="Questions waiting for a turn; beyond: 'try again'."
    )
    discord_admin_role: str | None = Field(
        None, description="Role (name or id) allowed to use admin commands besides Manage Server."
    )
    discord_open_threads: bool = Field(True, description="Answer channel questions in a thread.")
    discord_sync_commands: bool = Field(True, description="Sync slash commands on start.")
    qabot_shards: str | None = Field(
        None, description="Unset: one gateway connection; auto: Discord picks; N: N shards."
    )

    @field_validator("discord_channels", mode="before")
    @classmethod
    def _split_channels(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [part for part in value.replace(" ", ",").split(",") if part]
            if not all(part.isascii() and part.isdigit() for part in parts):
                raise ValueError("it takes channel ids (numbers), separated by commas")
            return [int(part) for part in parts]
        return value

    @field_validator("qabot_shards", mode="before")
    @classmethod
    def _check_shards(cls, value: object) -> object:
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        text = str(value).strip().lower()
        if text == "auto":
            return text
        if text.isascii() and text.isdigit() and int(text) >= 1:
            return str(int(text))
        raise ValueError("QABOT_SHARDS must be 'auto' or a whole number of shards (1 or more)")

    # ---- end Discord

    @property
    def dm_collection(self) -> str:
        """The collection that answers direct messages in Discord."""
        return self.discord_dm_collection or self.qabot_collection

    @property
    def data_dir(self) -> Path:
        return self.qabot_data_dir.expanduser()

    @property
    def seeds(self) -> Path | None:
        """The seed path to auto-ingest: the configured one, else ``seeds/`` if it exists."""
        if self.qabot_seeds is not None:
            return self.qabot_seeds
        for candidate in (Path("seeds"), PACKAGED_SEEDS):
            if candidate.is_dir():
                return candidate
        return None


def load_settings(**overrides: object) -> Settings:
    """The settings, or :class:`SettingsError` naming each bad setting and what it accepts."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise SettingsError(describe(exc)) from None


_KINDS = {int: "a whole number", float: "a number", bool: "true or false", Path: "a path"}


def describe(exc: ValidationError) -> str:
    """One line for a validation error: ``Invalid setting QABOT_TOP_K=0: it takes ...``."""
    parts = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "?"
        field = Settings.model_fields.get(name)
        shown = "" if _is_secret(field) else f"={error.get('input')!s}"
        parts.append(f"Invalid setting {name.upper()}{shown}: {_accepts(field, error)}")
    return "; ".join(parts) + "."


def _is_secret(field: object) -> bool:
    return field is None or "SecretStr" in str(getattr(field, "annotation", ""))


def _accepts(field: object, error: Any) -> str:
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if error.get("type") != "value_error" and field is not None:
        annotation = getattr(field, "annotation", None)
        kind = next((v for t, v in _KINDS.items() if annotation in (t, t | None)), None)
        bounds = {}
        for item in getattr(field, "metadata", []):
            for key in ("ge", "gt", "le", "lt"):
                if getattr(item, key, None) is not None:
                    bounds[key] = getattr(item, key)
        if kind:
            low = f"at least {bounds['ge']}" if "ge" in bounds else ""
            low = f"more than {bounds['gt']}" if "gt" in bounds else low
            high = f"at most {bounds['le']}" if "le" in bounds else ""
            high = f"less than {bounds['lt']}" if "lt" in bounds else high
            limits = " and ".join(p for p in (low, high) if p)
            return f"it takes {kind}" + (f", {limits}" if limits else "")
    return message.rstrip(".")
