"""``qabot eval``: run a gold set (or SQuAD v2) through the bot's pipeline and score it."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from qabot.errors import QabotError

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

    from answering.pipeline import Pipeline
    from evaluation.gold import GoldItem
    from evaluation.runner import EvalRun
    from qabot.settings import Settings

console = Console()
errors = Console(stderr=True)


def parse_bars(values: list[str], option: str) -> dict[str, float]:
    """``["hit@5=0.9", ...]`` to ``{"hit@5": 0.9}``; unknown metric names are rejected."""
    from evaluation.metrics import LATENCY, METRICS, SIZE

    known = (*METRICS, *SIZE, *LATENCY)
    bars: dict[str, float] = {}
    for value in values:
        name, sep, number = value.partition("=")
        name = name.strip()
        if not sep or name not in known:
            raise typer.BadParameter(
                f"{value!r}: use METRIC=VALUE with METRIC one of {', '.join(known)}",
                param_hint=option,
            )
        try:
            bars[name] = float(number)
        except ValueError:
            raise typer.BadParameter(
                f"{value!r}: {number!r} is not a number", param_hint=option
            ) from None
    return bars


def _retrievers(values: list[str]) -> list[str]:
    from retrieval.search import MODES

    out: list[str] = []
    for value in values:
        for mode in MODES if value == "all" else [value]:
            if mode not in MODES:
                raise typer.BadParameter(
                    f"{value!r}: use hybrid, dense, lexical or all", param_hint="--retriever"
                )
            if mode not in out:
                out.append(mode)
    return out


def _ingest(pipeline: Pipeline, paths: list[Path]) -> None:
    from bot.cli.core import ingest_with_progress

    ingest_with_progress(pipeline, lambda progress: pipeline.ingest(paths, progress))


def _prepare(
    settings: Settings,
    gold: Path | None,
    squad: Path | None,
    docs: Path | None,
    collection: str | None,
) -> tuple[Pipeline, list[GoldItem], str]:
    """The pipeline (collection ingested) and the gold items."""
    from evaluation.gold import load_gold
    from evaluation.runner import docs_collection, open_pipeline
    from evaluation.squad import load_squad
    from retrieval.seeding import needs_seeds

    if (gold is None) == (squad is None):
        raise typer.BadParameter("give either a GOLD.jsonl file or --squad FILE.json")
    if squad is not None:
        if docs is not None:
            raise typer.BadParameter("--docs cannot be combined with --squad")
        data = load_squad(squad)
        # Paragraphs go to a cache directory in the data directory (never the repository),
        # named by the file's hash, so a second run finds them already ingested.
        directory = data.write_documents(data.cache_dir(settings.data_dir))
        pipeline = open_pipeline(settings, collection or data.collection)
        _ingest(pipeline, [directory])
        return pipeline, data.items, squad.name
    assert gold is not None
    items = load_gold(gold)
    if docs is not None:
        pipeline = open_pipeline(settings, collection or docs_collection([docs]))
        _ingest(pipeline, [docs])
    else:
        pipeline = open_pipeline(settings, collection or settings.qabot_collection)
        if settings.seeds is not None and needs_seeds(
            pipeline.store, settings.data_dir, pipeline.collection
        ):
            _ingest(pipeline, [settings.seeds])
    return pipeline, items, gold.name


def _advance(bar: Progress, task: TaskID, done: int, _total: int) -> None:
    bar.update(task, completed=done)


def _run_all(
    pipeline: Pipeline,
    items: list[GoldItem],
    modes: list[str],
    k: int | None,
    llms: list[str] | None = None,
) -> list[EvalRun]:
    """One run per retriever and backend; every backend answers from the same retrieval
    (one store and embedder), so their columns differ only in the answers."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    from evaluation.runner import evaluate, with_backend

    pipelines = [(s, with_backend(pipeline, s)) for s in llms] if llms else [("", pipeline)]
    runs = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=errors,
        transient=True,
    ) as bar:
        for mode in modes:
            for spec, answering in pipelines:
                task = bar.add_task(f"Asking ({mode} {spec})".strip(), total=len(items))
                runs.append(
                    evaluate(
                        answering,
                        items,
                        mode=mode,
                        k=k,
                        progress=partial(_advance, bar, task),
                        backend=spec,
                    )
                )
    return runs


def print_summary(runs: list[EvalRun], title: str) -> None:
    from evaluation.metrics import LATENCY, METRICS, SIZE
    from evaluation.report import LABELS, fmt

    table = Table(title=title)
    table.add_column("metric")
    for run in runs:
        table.add_column(run.name, justify="right")
    for name in ("questions", "answerable", "unanswerable", *METRICS, *SIZE, *LATENCY):
        if all(r.summary.get(name) is None for r in runs) and name == "model_answered":
            continue
        table.add_row(LABELS.get(name, name), *(fmt(r.summary.get(name), name) for r in runs))
    console.print(table)
    for run in runs:
        failing = [r for r in run.results if r.passed is False]
        for r in failing[:10]:
            console.print(
                f"[red]✗[/] {run.name} [bold]{r.item.id}[/]: {'; '.join(r.reasons)}",
                highlight=False,
            )
        if len(failing) > 10:
            console.print(f"  … and {len(failing) - 10} more failing ({run.name})", style="dim")


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        gold: Annotated[
            Path | None, typer.Argument(help="Gold set (JSONL).", show_default=False)
        ] = None,
        squad: Annotated[
            Path | None, typer.Option("--squad", help="Evaluate on a SQuAD v2 JSON file.")
        ] = None,
        docs: Annotated[
            Path | None,
            typer.Option("--docs", help="Ingest this directory into its own collection first."),
        ] = None,
        collection: Annotated[
            str | None, typer.Option("--collection", "-c", help="Collection to evaluate.")
        ] = None,
        retriever: Annotated[
            list[str] | None,
            typer.Option("--retriever", "-r", help="hybrid, dense, lexical or all (repeatable)."),
        ] = None,
        k: Annotated[
            int | None, typer.Option("--k", min=1, max=50, help="Passages per question.")
        ] = None,
        limit: Annotated[
            int | None, typer.Option("--limit", min=1, help="Only the first N questions.")
        ] = None,
        report: Annotated[
            Path | None, typer.Option("--report", help="Write the JSON report here.")
        ] = None,
        html: Annotated[
            Path | None, typer.Option("--html", help="Write the HTML report here.")
        ] = None,
        minimum: Annotated[
            list[str] | None,
            typer.Option("--min", help="METRIC=VALUE: exit 1 when METRIC is below VALUE."),
        ] = None,
        llm: Annotated[
            list[str] | None,
            typer.Option(
                "--llm",
                help="Answering backend (a QABOT_LLM value, repeatable): one column each, "
                "same retrieval.",
            ),
        ] = None,
        maximum: Annotated[
            list[str] | None,
            typer.Option("--max", help="METRIC=VALUE: exit 1 when METRIC is above VALUE."),
        ] = None,
    ) -> None:
        """Ask every gold question as the bot would; report retrieval, answers and latency."""
        from evaluation.report import write_html, write_json
        from evaluation.runner import check_bars
        from qabot.settings import load_settings

        mins = parse_bars(minimum or [], "--min")
        maxs = parse_bars(maximum or [], "--max")
        modes = _retrievers(retriever or ["hybrid"])
        try:
            settings = load_settings()
            pipeline, items, name = _prepare(settings, gold, squad, docs, collection)
            items = items[:limit] if limit else items
            runs = _run_all(pipeline, items, modes, k, list(dict.fromkeys(llm or [])))
        except QabotError as exc:
            errors.print(f"[bold red]Error:[/] {exc}", highlight=False)
            raise typer.Exit(2) from None
        meta = {"gold": name, "collection": pipeline.collection, "questions": len(items)}
        if llm:
            meta["backends"] = list(dict.fromkeys(llm))
        print_summary(runs, f"qabot eval: {name} ({pipeline.collection})")
        if report:
            write_json(runs, meta, report)
            errors.print(f"JSON report: {report}", style="dim")
        if html:
            write_html(runs, meta, html)
            errors.print(f"HTML report: {html}", style="dim")
        failures = [
            f"{run.name}: {msg}" for run in runs for msg in check_bars(run.summary, mins, maxs)
        ]
        for msg in failures:
            errors.print(f"[bold red]Bar failed:[/] {msg}", highlight=False)
        if failures:
            raise typer.Exit(1)
