"""The core commands: ``ingest``, ``ask``, ``chat`` and ``sources``.

With a model backend that streams, ``ask`` (not ``--json``) and ``chat`` print the answer as
it is written, then the verified answer (again, under a rule, if it differs) and its sources.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bot.cli.backends import stream_answer
from qabot.errors import QabotError

if TYPE_CHECKING:
    from answering.pipeline import Pipeline
    from qabot.types import Answer, IngestReport

console = Console()
errors = Console(stderr=True, soft_wrap=True)

CollectionOpt = Annotated[
    str | None, typer.Option("--collection", "-c", help="Collection (corpus) to use.")
]


def fail(message: str) -> typer.Exit:
    """Print a one-line error and return the exit to raise."""
    errors.print(f"[bold red]Error:[/] {message}", highlight=False, markup=True)
    return typer.Exit(1)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn qabot's errors into a one-line message and exit code 1, never a traceback."""
    try:
        yield
    except QabotError as exc:
        raise fail(str(exc)) from None
    except KeyboardInterrupt:
        raise fail("Interrupted.") from None


def make_pipeline(collection: str | None) -> Pipeline:
    from answering.pipeline import Pipeline
    from qabot.settings import Settings

    return Pipeline(Settings(), collection=collection)


def ingest_with_progress(pipeline: Pipeline, run: Callable[[Any], IngestReport]) -> IngestReport:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[source]}"),
        console=errors,
        transient=True,
    ) as bar:
        task = bar.add_task("Ingesting", total=None, source="")

        def progress(source: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, source=source[-60:])

        return run(progress)


def print_report(report: IngestReport) -> None:
    table = Table(title="Ingest", show_edge=False)
    for column in ("added", "unchanged", "updated", "removed", "skipped"):
        table.add_column(column, justify="right")
    table.add_row(
        *(str(len(getattr(report, c))) for c in ("added", "unchanged", "updated", "removed")),
        str(len(report.skipped)),
    )
    console.print(table)
    for path, reason in report.skipped.items():
        errors.print(f"[yellow]Skipped[/] {path}: {reason}", highlight=False)


def print_answer(answer: Answer, *, text_shown: bool = False) -> None:
    """The answer, its notice and its sources; ``text_shown``: the text is on screen already
    (it was streamed), so only what follows it is printed."""
    if not text_shown:
        console.print(answer.text, highlight=False, markup=False)
    if answer.notice:
        errors.print(f"[yellow]{answer.notice}[/]", highlight=False)
    if answer.abstained:
        if answer.retrieved:
            closest = dict.fromkeys(h.chunk.source for h in answer.retrieved[:3])
            console.print(
                "Closest sources (not an answer): " + ", ".join(closest),
                style="dim",
                highlight=False,
                markup=False,
            )
        return
    console.print()
    for c in answer.citations:
        console.print(
            f"[bold][{c.n}][/] [cyan]{c.source}[/] [dim]chars {c.start}-{c.end}[/]", highlight=False
        )
        console.print(f"    “{' '.join(c.excerpt.split())}”", highlight=False, markup=False)


def register(app: typer.Typer) -> None:
    @app.command()
    def ingest(
        paths: Annotated[
            list[str], typer.Argument(help="Files, directories, web pages or sitemaps (URLs).")
        ],
        collection: CollectionOpt = None,
        crawl: Annotated[
            bool, typer.Option("--crawl", help="Follow links from the URLs (same site only).")
        ] = False,
        max_pages: Annotated[
            int | None,
            typer.Option("--max-pages", min=1, help="Pages one run may fetch (default 200)."),
        ] = None,
        rebuild: Annotated[
            bool, typer.Option("--rebuild", help="Empty the collection first, then ingest.")
        ] = False,
    ) -> None:
        """Add, update and remove documents so the collection matches PATHS."""
        from retrieval.web import split_sources

        with user_errors():
            pipeline = make_pipeline(collection)
            files, web = split_sources(
                paths, crawl, max_pages, pipeline.settings.qabot_web_max_pages
            )
            report = ingest_with_progress(
                pipeline, lambda p: pipeline.ingest(files, p, web=web, rebuild=rebuild)
            )
        print_report(report)

    @app.command()
    def ask(
        question: Annotated[str, typer.Argument(help="The question to answer.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        collection: CollectionOpt = None,
        k: Annotated[
            int | None, typer.Option("--k", min=1, max=50, help="Passages to retrieve.")
        ] = None,
    ) -> None:
        """Answer QUESTION from the documents, with verified citations."""
        with user_errors():
            pipeline = make_pipeline(collection)
            from answering.pipeline import clean_question

            clean_question(question, pipeline.settings.qabot_max_question_chars)
            if pipeline.store.count() == 0:
                ingest_with_progress(pipeline, pipeline.ensure_seeded)
            if not as_json and pipeline.streams():
                answer = stream_answer(pipeline, question, k=k, out=console)
                print_answer(answer, text_shown=True)
                return
            answer = pipeline.ask(question, k=k)
        if as_json:
            sys.stdout.write(json.dumps(answer.to_dict(), ensure_ascii=False) + "\n")
        else:
            print_answer(answer)

    @app.command()
    def chat(collection: CollectionOpt = None) -> None:
        """Ask questions interactively; follow-ups use the earlier questions as context."""
        with user_errors():
            pipeline = make_pipeline(collection)
            if pipeline.store.count() == 0:
                ingest_with_progress(pipeline, pipeline.ensure_seeded)
            streams = pipeline.streams()
        history: list[str] = []
        console.print("Ask a question (empty line or Ctrl-D to quit).", style="dim")
        while True:
            try:
                question = console.input("[bold green]?[/] ")
            except (EOFError, KeyboardInterrupt):
                break
            if not question.strip():
                break
            try:
                if streams:  # printed as the model writes it, then the verified answer
                    answer = stream_answer(pipeline, question, history=history[-3:], out=console)
                else:
                    answer = pipeline.ask(question, history=history[-3:])
            except QabotError as exc:
                errors.print(f"[bold red]Error:[/] {exc}", highlight=False)
                continue
            print_answer(answer, text_shown=streams)
            history.append(question)

    @app.command()
    def sources(collection: CollectionOpt = None) -> None:
        """List the documents in the collection with their chunk counts."""
        with user_errors():
            found = make_pipeline(collection).sources()
        table = Table(title="Sources", show_edge=False)
        table.add_column("document")
        table.add_column("chunks", justify="right")
        for source, count in found.items():
            table.add_row(source, str(count))
        console.print(table)
        console.print(f"{len(found)} documents, {sum(found.values())} chunks", style="dim")
