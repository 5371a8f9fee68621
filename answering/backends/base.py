"""The registry that maps ``QABOT_LLM`` to an answering backend.

``QABOT_LLM`` is ``<prefix>`` or ``<prefix>:<model>``. Each prefix has a :class:`BackendSpec`:
the built-ins are listed in :data:`BUILTINS` (the offline extractive answerer among them,
registered like every other); a plugin adds one through the ``qabot.backends`` entry-point
group, whose entries point at a ``BackendSpec`` (or a function returning one)::

    [project.entry-points."qabot.backends"]
    mybackend = "my_package.qabot_backend:SPEC"
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points

from answering.answerer import Answerer
from answering.llm.chat import ChatBackend, Message
from qabot.errors import BackendError
from qabot.settings import Settings

__all__ = ["Answerer", "BackendSpec", "ChatBackend", "Message", "create", "resolve", "specs"]

ENTRY_POINT_GROUP = "qabot.backends"


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """What a backend family is, what it needs, and how to build it.

    ``packages`` must be installed (their import names in ``module_names`` when they differ),
    ``env`` are the settings it reads, ``optional`` what it can use besides. ``check`` raises
    :class:`BackendError` with a one-line message when the backend cannot run with these
    settings (missing key or file). ``build`` returns an :class:`Answerer`, or a
    :class:`ChatBackend` (a model), which :func:`create` wraps in the model answerer.
    """

    prefix: str
    summary: str
    example: str
    build: Callable[[str, Settings], Answerer | ChatBackend]
    packages: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    extra: str = ""
    check: Callable[[str, Settings], None] | None = None
    optional: tuple[str, ...] = ()
    module_names: tuple[str, ...] = field(default=())

    def missing_packages(self) -> list[str]:
        """The required distributions whose import module is absent."""
        modules = self.module_names or tuple(p.replace("-", "_") for p in self.packages)
        return [
            pkg
            for pkg, mod in zip(self.packages, modules, strict=True)
            if importlib.util.find_spec(mod) is None
        ]

    def available(self) -> tuple[bool, str]:
        """(installed?, why not) — configuration such as keys is checked by :meth:`validate`."""
        missing = self.missing_packages()
        if missing:
            hint = (
                f"pip install 'qabot[{self.extra}]'"
                if self.extra
                else "pip install " + " ".join(missing)
            )
            return False, f"needs {', '.join(missing)} ({hint})"
        return True, ""

    def validate(self, model: str, settings: Settings) -> None:
        ok, why = self.available()
        if not ok:
            raise BackendError(f"QABOT_LLM={self.prefix}:{model} {why}.")
        if self.check is not None:
            self.check(model, settings)


#: Built-in backends: prefix -> "module:attribute" of its spec, imported only when needed.
BUILTINS: dict[str, str] = {
    "offline": "answering.backends.offline:SPEC",
    "openai": "answering.backends.openai:SPEC",
    "anthropic": "answering.backends.anthropic:SPEC",
    "ollama": "answering.backends.ollama:SPEC",
    "llamacpp": "answering.backends.llamacpp:SPEC",
}


def _load(target: str) -> BackendSpec:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def _plugin_specs() -> dict[str, BackendSpec]:
    out: dict[str, BackendSpec] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            spec = obj() if callable(obj) and not isinstance(obj, BackendSpec) else obj
        except Exception:  # noqa: BLE001 - a broken plugin must not break qabot
            continue
        if isinstance(spec, BackendSpec):
            out.setdefault(spec.prefix, spec)
    return out


def specs() -> dict[str, BackendSpec]:
    """Every known backend by prefix: built-ins first, then plugins (which cannot shadow them)."""
    out = {prefix: _load(target) for prefix, target in BUILTINS.items()}
    for prefix, spec in _plugin_specs().items():
        out.setdefault(prefix, spec)
    return out


def parse(value: str) -> tuple[str, str]:
    """``"openai:gpt-4o"`` -> ``("openai", "gpt-4o")``; ``"offline"`` -> ``("offline", "")``."""
    prefix, _, model = (value or "offline").strip().partition(":")
    return prefix.strip().lower(), model.strip()


def resolve(settings: Settings) -> tuple[BackendSpec, str]:
    """The spec and model named by ``settings.qabot_llm``, validated: raises BackendError."""
    prefix, model = parse(settings.qabot_llm)
    known = specs()
    spec = known.get(prefix)
    if spec is None:
        raise BackendError(
            f"Unknown QABOT_LLM backend {prefix!r}: use one of {', '.join(sorted(known))}."
        )
    spec.validate(model, settings)
    return spec, model


def create(settings: Settings) -> Answerer:
    """The answerer that ``settings.qabot_llm`` names, built (raises :class:`BackendError`)."""
    spec, model = resolve(settings)
    try:
        built = spec.build(model, settings)
    except BackendError:
        raise
    except Exception as error:
        raise BackendError(f"QABOT_LLM={settings.qabot_llm} could not start: {error}") from error
    if isinstance(built, Answerer):
        return built
    from answering.llm.answerer import ModelAnswerer

    return ModelAnswerer(built, settings)
