"""The `aggregator` command: serve, worker, ingest, retag, preview, check-config, db upgrade."""

from __future__ import annotations

import functools
import logging
import signal
import sys
from collections.abc import Iterator
from contextlib import closing, contextmanager
from types import FrameType
from typing import Any

import click

from aggregator import config_path, create_app, open_store
from aggregator.collector import freeze_loaded
from aggregator.config import (
    DEFAULT_ANNOUNCE,
    Config,
    explain,
    load_config,
    local_file,
    served_config,
    sqlite_file,
)
from aggregator.errors import AggregatorError
from aggregator.ingest.pipeline import Pipeline, held_back
from aggregator.runtime import topic_specs
from aggregator.scheduler import Scheduler
from aggregator.store.repository import Store
from aggregator.topics.index_query import narrow
from aggregator.topics.match import fingerprints
from aggregator.topics.preview import marked
from aggregator.topics.preview import preview as run_preview
from aggregator.topics.query import QueryError, parse_query
from aggregator.types import ANNOUNCE_TYPES, SourceOutcome


class _State:
    def __init__(self) -> None:
        self.path = config_path(None)
        self.verbose = False
        self._config: Config | None = None

    def use(self, path: str) -> None:
        self.path = config_path(path)
        self._config = None

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.path)
        return self._config


def _set_config(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None:
        ctx.ensure_object(_State).use(value)


def _set_verbose(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(_State).verbose = True
        _configure_logging(logging.DEBUG)


def _global_options(command: Any, *, envvar: str | None = None) -> Any:
    """--config and -v, accepted before the subcommand or after it (the environment is read
    once, before it, so that an option after the subcommand wins over it)."""
    command = click.option(
        "--config",
        "path",
        envvar=envvar,
        metavar="PATH",
        expose_value=False,
        callback=_set_config,
        help="Config file (default config/aggregator.yaml).",
    )(command)
    return click.option(
        "-v",
        "--verbose",
        is_flag=True,
        expose_value=False,
        callback=_set_verbose,
        help="Log everything, debugging detail included.",
    )(command)


def _configure_logging(level: int) -> None:
    """Warnings and errors (with their tracebacks) always; `level` for this package's own logs."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("aggregator").setLevel(level)
    if level <= logging.DEBUG:
        logging.getLogger().setLevel(level)


def _log_fetches(state: _State) -> None:
    """`serve` and `worker` run unattended: one line per fetch (INFO) unless -v asked for more."""
    if not state.verbose:
        _configure_logging(logging.INFO)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@functools.partial(_global_options, envvar="AGGREGATOR_CONFIG")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Paper feeds: ingest papers, deduplicate them, republish one feed per topic."""
    state = ctx.ensure_object(_State)
    if not state.verbose:
        _configure_logging(logging.WARNING)


def _announce_new_store(config: Config) -> None:
    """A command about to create an empty SQLite store says so: a path that names no store yet
    is more often a mistake (another folder, a typo) than a wish for an empty one."""
    file = sqlite_file(config.database_url)
    if file is not None and not file.exists():
        click.echo(f"note: no store at {file} yet; starting an empty one there", err=True)


@contextmanager
def _store(state: _State, *, apply_topics: bool = True, read_only: bool = False) -> Iterator[Store]:
    _announce_new_store(state.config)
    store = open_store(state.config, apply_topics=apply_topics, read_only=read_only)
    try:
        yield store
    finally:
        store.close()


@cli.command("check-config")
@_global_options
@click.pass_obj
def check_config(state: _State) -> None:
    """Validate the config and explain what it sets up."""
    config = state.config
    click.echo(explain(config))
    missing = [
        (n, s) for n, s in enumerate(config.sources) if (file := local_file(s.url)) and not file.is_file()
    ]
    for n, source in missing:
        click.echo(f"sources[{n}] ({source.name}): no such file: {local_file(source.url)}", err=True)
    if missing:
        raise SystemExit(1)
    click.echo(f"{state.path}: ok")


@cli.group()
@_global_options
def db() -> None:
    """Database maintenance."""


@db.command("upgrade")
@_global_options
@click.pass_obj
def db_upgrade(state: _State) -> None:
    """Apply pending migrations (also done at every start)."""
    with _store(state):
        click.echo("database is at the latest schema")


@cli.command()
@_global_options
@click.option("--source", "names", multiple=True, metavar="NAME", help="Only this source (repeatable).")
@click.option("--all", "everything", is_flag=True, help="Every source, due or not.")
@click.option("--force", is_flag=True, help="Fetch even sources backing off after failures, or gone (410).")
@click.pass_obj
def ingest(state: _State, names: tuple[str, ...], everything: bool, force: bool) -> None:
    """One pass over the due sources (or --all, or --source NAME), then a summary. A source
    whose server asked us to wait (Retry-After), that is backing off after failures, or that is
    gone is left alone unless --force: a cron job must not hammer a server that said no."""
    if not state.verbose:  # the summary below names every failing source; tracebacks still show
        logging.getLogger("aggregator.ingest.pipeline").setLevel(logging.ERROR)
    config = state.config
    unknown = [n for n in names if n not in {s.name for s in config.sources}]
    if unknown:
        raise click.BadParameter(f"no source named {unknown[0]!r}", param_hint="--source")
    with _store(state) as store:
        pipeline = Pipeline(config, store)
        chosen = pipeline.select(names or None) if (names or everything) else pipeline.due()
        held: list[tuple[str, str]] = []
        if not force:
            states, now = {s.name: s for s in store.source_states()}, pipeline.clock()
            reasons = {s.name: held_back(states.get(s.name), now) for s in chosen}
            held = [(name, reason) for name, reason in reasons.items() if reason]
            chosen = [s for s in chosen if not reasons[s.name]]
        outcomes = _run_with_progress(pipeline, chosen)
    if not config.sources:
        click.echo(f"no sources in {state.path}: add some under `sources:`")
    else:
        for name, reason in held:
            click.echo(f"{name}  skipped: {reason} (--force fetches it now)")
        if outcomes or not held:
            _print_summary(outcomes)
    sys.exit(1 if any(o.failed for o in outcomes) else 0)


def _run_with_progress(pipeline: Pipeline, chosen: list[Any]) -> list[SourceOutcome]:
    if not sys.stderr.isatty():
        return pipeline.run(chosen)
    bar: Any
    with click.progressbar(
        length=len(chosen),
        label="ingesting",
        file=sys.stderr,
        item_show_func=lambda o: o.source if o else None,
    ) as bar:
        return pipeline.run(chosen, on_done=lambda o: bar.update(1, o))


def _print_summary(outcomes: list[SourceOutcome]) -> None:
    if not outcomes:
        click.echo("no source is due (use --all to fetch every source now)")
        return
    width = max(len(o.source) for o in outcomes)
    for o in outcomes:
        if o.failed:
            line = click.style("failed", fg="red") + f"  {o.error}"
        elif o.not_modified:
            line = f"not modified ({o.unchanged} entries unchanged)"
        else:
            line = f"{o.new} new, {o.updated} updated, {o.unchanged} unchanged"
            if o.warning:
                line += click.style("  warning", fg="yellow") + f"  {o.warning}"
        click.echo(f"{o.source:<{width}}  {line}")
    failed = sum(o.failed for o in outcomes)
    click.echo(
        f"{_count(len(outcomes), 'source')}, {failed} failed; "
        f"{_count(sum(o.new for o in outcomes), 'new paper')}, {sum(o.updated for o in outcomes)} updated"
    )


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@cli.command()
@_global_options
@click.pass_obj
def retag(state: _State) -> None:
    """Re-apply every topic to every stored paper (nothing is fetched)."""
    with _store(state, apply_topics=False) as store:
        total = store.paper_count()
        bar: Any
        if sys.stderr.isatty():
            with click.progressbar(length=total, label="re-tagging", file=sys.stderr) as bar:
                result = store.retag(on_batch=bar.update)
        else:
            result = store.retag()
        store.remember_topics(fingerprints(topic_specs(state.config)))  # the definitions just applied
    click.echo(
        f"{result.papers} papers re-tagged: {result.added} topic assignments added, "
        f"{result.removed} removed, {result.rescored} rescored"
    )


@cli.command()
@_global_options
@click.argument("query")
@click.option("--sample", default=10, show_default=True, type=click.IntRange(0, 500), help="Titles to show.")
@click.option("--exclude", metavar="QUERY", help="Leave out papers this matches, as a topic's exclude does.")
@click.option(
    "--announce",
    multiple=True,
    type=click.Choice(ANNOUNCE_TYPES),
    help="arXiv listing announcements to keep, as a topic's announce (default: new, cross).",
)
@click.pass_obj
def preview(state: _State, query: str, sample: int, exclude: str | None, announce: tuple[str, ...]) -> None:
    """What a topic with QUERY would hold among the stored papers: counts per week and a sample
    of titles with the terms that matched. Reads the store, writes nothing."""
    try:
        tree = parse_query(query)
    except QueryError as exc:
        raise click.BadParameter(str(exc), param_hint="QUERY") from None
    try:
        if exclude:
            parse_query(exclude)
    except QueryError as exc:
        raise click.BadParameter(str(exc), param_hint="--exclude") from None
    file = sqlite_file(state.config.database_url)
    if file is not None and not file.exists():  # a preview creates nothing, not even an empty store
        raise click.ClickException(f"no store at {file}: run `aggregator ingest --all` first")
    narrowed = narrow(tree, {t.slug: t.query for t in state.config.topics})
    with _store(state, read_only=True) as store, closing(store.documents(narrowed)) as documents:
        found = run_preview(
            query,
            documents,
            sample=sample,
            topics=topic_specs(state.config),
            exclude=exclude,
            announce=announce or DEFAULT_ANNOUNCE,
        )
    click.echo(f"{found.total} papers match {query!r}" + (f" (excluding {exclude!r})" if exclude else ""))
    for week, count in found.weeks:
        click.echo(f"  {week}  {count:>5}  {'#' * min(count, 60)}")
    for hit in found.sample:
        title = marked(
            hit.title, hit.highlights, click.style("", bold=True, reset=False), click.style("", reset=True)
        )
        click.echo(f"- {hit.published:%Y-%m-%d}  {title}  (score {hit.score:g}: {', '.join(hit.matched)})")


@cli.command()
@_global_options
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@click.option("--no-fetch", is_flag=True, help="Serve what is stored; fetch nothing.")
@click.pass_obj
def serve(state: _State, host: str, port: int, no_fetch: bool) -> None:
    """Web server with the fetch scheduler in the same process (one machine)."""
    _log_fetches(state)
    from werkzeug.serving import make_server

    config = served_config(state.config, host, port)
    if config.site.base_url != state.config.site.base_url:
        click.echo(f"absolute links use {config.site.base_url} (site.base_url names another port)")
    _announce_new_store(config)
    store = open_store(config)
    app = create_app(config, store=store)
    scheduler = None if no_fetch else Scheduler(Pipeline(config, store))
    server = make_server(host, port, app, threaded=True)  # the port is taken now; answered below
    _stop_on_sigterm(server.shutdown)
    click.echo(
        f"serving {config.site.title} on http://{host}:{server.server_port}/"
        + (" (not fetching)" if no_fetch else " (fetching in the background)")
    )
    if scheduler:  # local snapshots before the first page is served (a second or two)
        scheduler.run_once(local_only=True)
    freeze_loaded()  # before the scheduler's thread runs: none of its batches is frozen with the app
    if scheduler:  # the network after
        scheduler.start()
    try:
        server.serve_forever()
    finally:
        if scheduler:
            scheduler.stop(timeout=5)
        store.close()


@cli.command()
@_global_options
@click.pass_obj
def worker(state: _State) -> None:
    """The fetch scheduler alone; several may share one PostgreSQL store."""
    _log_fetches(state)
    with _store(state) as store:
        scheduler = Scheduler(Pipeline(state.config, store))
        _stop_on_sigterm(scheduler.stopping.set)
        freeze_loaded()
        click.echo("worker: fetching due sources; Ctrl-C to stop")
        try:
            scheduler.run_forever()
        except KeyboardInterrupt:
            scheduler.stop()


def _stop_on_sigterm(stop: Any) -> None:
    def handler(_signum: int, _frame: FrameType | None) -> None:
        import threading

        threading.Thread(target=stop, daemon=True).start()  # shutdown() blocks; never inside the handler

    signal.signal(signal.SIGTERM, handler)


def main() -> None:
    try:
        code = cli.main(standalone_mode=False)
        if isinstance(code, int) and code:  # ctx.exit(n) returns n when click does not exit itself
            sys.exit(code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except AggregatorError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


__all__ = ["cli", "load_config", "main"]
