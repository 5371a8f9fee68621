"""Shared fixtures: one pipeline over the seed articles per test session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from answering.pipeline import Pipeline
from qabot.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
ISS_DOC = "000_47f2f9f2b89161a3.txt"
ROSCOSMOS_DOC = "003_293c8d6e3f4fbd2b.txt"


@pytest.fixture(scope="session")
def seeds_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Pipeline:
    """A pipeline with the two seed articles ingested into a temporary data directory."""
    data = tmp_path_factory.mktemp("qabot-data")
    docs = tmp_path_factory.mktemp("docs")
    shutil.copytree(SEEDS, docs / "seeds")
    pipeline = Pipeline(Settings(qabot_data_dir=data, _env_file=None))
    report = pipeline.ingest([docs / "seeds"])
    assert len(report.added) == 2
    return pipeline


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(qabot_data_dir=tmp_path / "data", _env_file=None)
