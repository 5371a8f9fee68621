"""The core commands: ``ingest``, ``ask``, ``chat`` and ``sources``.

With a model backend that streams, ``ask`` (not ``--json``) and ``chat`` print the answer as
it is written, then the verified answer (again, under a rule, if it differs) and its sources.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from bot.cli.backends import stream_answer
from qabot.errors import InputError, QabotError
from qabot.types import Turn
from retrieval.collection_record import ALONE
from retrieval.loaders import display_source

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
    errors.print(f"[bold red]Error:[/] {escape(message)}", highlight=False, markup=True)
    return typer.Exit(1)


def from_argv(text: str) -> str:
    """Command-line text as valid Unicode: bytes that are not UTF-8 become U+FFFD.

    Python keeps such bytes of argv as lone surrogates, which cannot be printed, encoded or
    embedded; the rest of the question is still worth answering.
    """
    try:
        return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    except UnicodeEncodeError:  # a surrogate that no byte made
        return text.encode("utf-8", "replace").decode("utf-8")


def check_k(k: int | None) -> None:
    if k is not None and not 1 <= k <= 50:
        raise InputError(f"--k must be between 1 and 50, not {k}.")


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
    from qabot.settings import load_settings
    from retrieval.store import validate_collection_name

    if collection is not None:  # -c "" is a mistake, not a request for the default
        validate_collection_name(collection)
    return Pipeline(load_settings(), collection=collection)


def ingest_with_progress(pipeline: Pipeline, run: Callable[[Any], IngestReport]) -> IngestReport:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    if not errors.is_terminal:  # a log or a pipe: plain lines, at most one a second
        return run(progress_lines())
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[source]}", markup=False),
        console=errors,
        transient=True,
    ) as bar:
        task = bar.add_task("Ingesting", total=None, source="")

        def progress(source: str, done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, source=source[-60:])

        return run(progress)


def progress_lines(interval: float = 1.0) -> Callable[[str, int, int], None]:
    """A progress callback printing ``Ingesting 3/12 docs/a.txt`` lines to stderr."""
    last = 0.0

    def progress(label: str, done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        if label and now - last >= interval:
            last = now
            errors.print(f"Ingesting {done}/{total} {label}", highlight=False, markup=False)

    return progress


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
        errors.print(f"[yellow]Skipped[/] {escape(path)}: {escape(reason)}", highlight=False)


def print_answer(answer: Answer, *, text_shown: bool = False) -> None:
    """The answer, its notice and its sources; ``text_shown``: the text is on screen already
    (it was streamed), so only what follows it is printed."""
    if not text_shown:
        console.print(answer.text, highlight=False, markup=False)
    if answer.notice:
        errors.print(f"[yellow]{escape(answer.notice)}[/]", highlight=False)
    if answer.abstained:
        if answer.retrieved:
            closest = dict.fromkeys(display_source(h.chunk.source) for h in answer.retrieved[:3])
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
            f"[bold][{c.n}][/] [cyan]{escape(display_source(c.source))}[/] "
            f"[dim]chars {c.start}-{c.end}[/]",
            highlight=False,
        )
        console.print(f"    “{' '.join(c.excerpt.split())}”", highlight=False, markup=False)


def shown_sources(data: dict) -> dict:
    """An answer's JSON with each source as displayed (relative to here when under it)."""
    for key in ("citations", "retrieved"):
        for item in data.get(key) or []:
            item["source"] = display_source(item["source"])
    return data


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
        if pipeline.store.leaning_sentences == ALONE:
            # Kept on purpose (mixing two ways would rank documents by when they were
            # ingested), so the user is the one to know that a rebuild finds more.
            console.print(
                "This collection was built by an earlier version, which embedded each sentence "
                'alone: "His predecessor, ..." is not found by whose predecessor. '
                "`qabot ingest --rebuild PATH...` embeds it again the current way.",
                style="dim",
            )

    @app.command()
    def ask(
        question: Annotated[str, typer.Argument(help="The question to answer.")],
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
        collection: CollectionOpt = None,
        k: Annotated[int | None, typer.Option("--k", help="Passages to retrieve (1-50).")] = None,
    ) -> None:
        """Answer QUESTION from the documents, with verified citations."""
        question = from_argv(question)
        with user_errors():
            check_k(k)
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
            sys.stdout.write(json.dumps(shown_sources(answer.to_dict()), ensure_ascii=False) + "\n")
        else:
            print_answer(answer)

    @app.command()
    def chat(collection: CollectionOpt = None) -> None:
        """Ask questions interactively; follow-ups use the earlier questions and answers."""
        with user_errors():
            pipeline = make_pipeline(collection)
            if pipeline.store.count() == 0:
                ingest_with_progress(pipeline, pipeline.ensure_seeded)
            streams = pipeline.streams()
        # Each turn keeps its answer: a follow-up ("when should it be operational?") is
        # answered in the context of what was asked and answered before.
        history: list[Turn] = []
        console.print("Ask a question (empty line or Ctrl-D to quit).", style="dim")
        while True:
            try:
                question = console.input("[bold green]?[/] ")
            except (EOFError, KeyboardInterrupt):
                break
            if not question.strip():
                break
            question = from_argv(question)
            try:
                if streams:  # printed as the model writes it, then the verified answer
                    answer = stream_answer(pipeline, question, history=history[-3:], out=console)
                else:
                    answer = pipeline.ask(question, history=history[-3:])
            except QabotError as exc:
                errors.print(f"[bold red]Error:[/] {escape(str(exc))}", highlight=False)
                continue
            print_answer(answer, text_shown=streams)
            history.append(Turn(question, "" if answer.abstained else answer.text))

    @app.command()
    def sources(collection: CollectionOpt = None) -> None:
        """List the documents in the collection with their chunk counts."""
        with user_errors():
            pipeline = make_pipeline(collection)
            found = pipeline.sources()
        table = Table(title="Sources", show_edge=False)
        table.add_column("document")
        table.add_column("chunks", justify="right")
        for source, count in found.items():
            table.add_row(Text(display_source(source)), str(count))
        console.print(table)
        console.print(f"{len(found)} documents, {sum(found.values())} chunks", style="dim")
        if not found:  # say so when the store was emptied or lost, not just "0 documents"
            from retrieval.seeding import needs_seeds

            try:
                needs_seeds(pipeline.store, pipeline.settings.data_dir, pipeline.collection)
            except QabotError as exc:
                errors.print(f"[yellow]{escape(str(exc))}[/]", highlight=False)
