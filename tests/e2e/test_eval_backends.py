"""``qabot eval --llm``: one gold set through several backends, same retrieval, one report."""

from __future__ import annotations

import pytest

from answering.pipeline import Pipeline
from evaluation.gold import GoldItem
from evaluation.runner import evaluate, with_backend
from tests.llm_servers import FakeLLM, settings_for

pytestmark = pytest.mark.usefixtures("fresh")  # tests/conftest.py

ITEMS = [
    GoldItem("stay", "Until when does Russia intend to stay on the ISS?", ["2028"], ["x.txt"]),
    GoldItem("moon", "Who was the first person to walk on the Moon?", answerable=False),
]


def test_backends_share_the_store_and_answer_side_by_side(
    seeds_pipeline: Pipeline, server: FakeLLM
) -> None:
    settings = settings_for("openai", server.url)
    settings = settings.model_copy(update={"qabot_data_dir": seeds_pipeline.settings.data_dir})
    base = Pipeline(settings, store=seeds_pipeline.store, embedder=seeds_pipeline.embedder)
    specs = ["offline", settings.qabot_llm]
    pipelines = [with_backend(base, spec) for spec in specs]
    assert all(p.store is seeds_pipeline.store for p in pipelines)
    runs = [evaluate(p, ITEMS, backend=spec) for spec, p in zip(specs, pipelines, strict=True)]
    assert [r.name for r in runs] == [f"hybrid {spec}" for spec in specs]
    # The same retrieval: identical rankings, whichever backend answered.
    assert runs[0].results[0].retrieved == runs[1].results[0].retrieved
    assert runs[0].results[0].backend == "offline"
    assert runs[1].results[0].backend != "offline"  # the fake model wrote (and cited) it
    for run in runs:
        assert run.summary["token_f1"] is not None and run.summary["answer_words"] is not None
