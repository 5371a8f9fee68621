"""``qabot backends``: the answering backends, whether they can run here, and what they need.

Also :func:`stream_answer`, which prints an answer as the model writes it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from answering.pipeline import History, Pipeline
    from qabot.types import Answer

console = Console()


def backend_rows() -> list[tuple[str, str, str, str, str]]:
    """(prefix, example, status, needs, summary) for every registered backend."""
    from answering.backends import parse, specs
    from qabot.settings import Settings

    current, _ = parse(Settings().qabot_llm)
    rows = []
    for prefix, spec in specs().items():
        ok, why = spec.available()
        status = "available" if ok else f"missing: {why}"
        if prefix == current:
            status += " (selected)"
        needs = [*spec.packages, *spec.env, *spec.optional]
        if spec.extra:
            needs.append(f"pip install -e '.[{spec.extra}]'")
        rows.append((prefix, spec.example, status, ", ".join(needs) or "-", spec.summary))
    return rows


def stream_answer(
    pipeline: Pipeline,
    question: str,
    *,
    history: History = (),
    k: int | None = None,
    out: Console = console,
) -> Answer:
    """Print the answer's text as it streams, then return the final verified Answer.

    If the verified text differs from what was streamed (claims dropped, markers renumbered,
    offline fallback), the final text is printed again under a rule, so what stays on screen
    last is always the checked answer; when nothing was streamed it is printed once, plainly.
    Whitespace at the end of the text so far is held back until more text follows it, so the
    streamed answer ends where its last word does.
    """
    streamed = ""
    held = ""  # trailing whitespace not printed yet
    reply = pipeline.ask_stream(question, k=k, history=history)
    for delta in reply:
        text = held + delta if streamed.strip() else (held + delta).lstrip()
        shown = text.rstrip()
        held = text[len(shown) :]
        streamed += delta
        if shown:
            out.print(shown, end="", highlight=False, markup=False, soft_wrap=True)
    answer = reply.result()
    if not streamed.strip():  # no text came before it (the model failed at once)
        out.print(answer.text, highlight=False, markup=False)
        return answer
    out.print()
    if " ".join(answer.text.split()) != " ".join(streamed.split()):
        out.rule("verified answer", style="dim")
        out.print(answer.text, highlight=False, markup=False)
    return answer


def register(app: typer.Typer) -> None:
    @app.command()
    def backends() -> None:
        """List the answering backends (QABOT_LLM), whether each can run, and what it needs."""
        table = Table(title="Answering backends (QABOT_LLM)", show_edge=False)
        for column in ("QABOT_LLM", "status", "needs", "what"):
            table.add_column(column, overflow="fold")
        for _, example, status, needs, summary in backend_rows():
            style = "green" if status.startswith("available") else "yellow"
            table.add_row(escape(example), f"[{style}]{escape(status)}[/]", escape(needs), summary)
        console.print(table)
        console.print(
            "Set QABOT_LLM (and the keys it needs) in the environment or .env; "
            "a plugin adds a backend through the 'qabot.backends' entry-point group.",
            style="dim",
        )
        console.print(embeddings_line(), highlight=False)


def embeddings_line() -> str:
    """Which model embeds (QABOT_EMBEDDINGS), where, and whether it can run here."""
    from qabot.errors import QabotError
    from qabot.settings import Settings
    from retrieval import embedders

    settings = Settings()
    try:
        embedders.check(settings)
        status = "available"
    except QabotError as error:
        status = f"cannot run: {error}"
    return (
        f"Embeddings (QABOT_EMBEDDINGS): {embedders.model_id(settings)} "
        f"({embedders.where(settings)}), {status}. Others: e5 (packaged, the default), "
        "openai:<model> (any /v1/embeddings server), ollama:<model>."
    )
