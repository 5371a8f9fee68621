"""All configuration, read once from the environment and ``.env`` (see ``.env.example``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

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
    qabot_embed_threads: int = Field(2, ge=1, le=64)

    discord_token: SecretStr | None = Field(None, description="Discord bot token (never logged).")

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
