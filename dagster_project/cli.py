"""`trustwh`: a thin door into the same Dagster job the UI, sensor and schedule run."""

from __future__ import annotations

import argparse
import atexit
import contextlib
import os
import sys
import threading
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .home import home_busy, open_home
from .runner import Outcome, ledger_summary, run_job, serve_docs, up_to_date
from .settings import Settings, SettingsError


def main(argv: list[str] | None = None) -> int:
    # Bound to the stdout of this call, so a run can divert dbt's chatter elsewhere.
    console = Console(file=sys.stdout, highlight=False, width=None if sys.stdout.isatty() else 110)
    parser = argparse.ArgumentParser(
        prog="trustwh", description="The trust-commerce warehouse: generate, run, inspect."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    generate = commands.add_parser("generate", help="write realistic sample exports")
    generate.add_argument("--out", type=Path, required=True, help="landing folder to write")
    generate.add_argument("--seed", type=int, default=7)
    generate.add_argument("--months", type=_positive(int), default=12)
    generate.add_argument("--scale", type=_positive(float), default=1.0, help="1.0 = ~50k orders")
    generate.add_argument("--dirty", action="store_true", help="add every bad-input case")

    run = commands.add_parser("run", help="ingest new exports, gate, build and publish")
    _add_location_args(run)
    run.add_argument(
        "--force",
        action="store_true",
        help="run the job even when nothing landed and the last publish is current",
    )
    run.add_argument(
        "--full-refresh",
        action="store_true",
        help="rebuild every dbt model from the raw layer, even when nothing changed",
    )

    release = commands.add_parser("release", help="publish a blocked load on purpose")
    release.add_argument("load_id", metavar="LOAD_ID", help="the load, as in quality.load_ledger")
    release.add_argument("--reason", required=True, help="why it may be published (recorded)")
    release.add_argument("--home", type=Path, help="warehouse home (env TRUSTWH_HOME)")

    report = commands.add_parser("report", help="print the governance report's path, or serve it")
    report.add_argument("--home", type=Path, help="warehouse home (env TRUSTWH_HOME)")
    report.add_argument("--serve", action="store_true", help="serve it on 127.0.0.1 until Ctrl-C")
    report.add_argument("--port", type=_port, default=8765, help="port for --serve (0: any free)")

    docs = commands.add_parser("docs", help="serve the dbt docs of the marts on 127.0.0.1")
    docs.add_argument("--home", type=Path, help="warehouse home (env TRUSTWH_HOME)")
    docs.add_argument("--port", type=_port, default=8580, help="port (0: any free one)")

    bench = commands.add_parser("bench", help="time runs against a plain DuckDB load")
    bench.add_argument("--points", default="0.1M,1M,10M", help="orders per point (0.1M,1M,10M)")
    bench.add_argument("--out", type=Path, default=Path("bench/results"), help="results folder")
    bench.add_argument("--work", type=Path, help="scratch folder (default: a temp folder)")
    bench.add_argument("--keep", action="store_true", help="keep landings and homes")

    args = parser.parse_args(argv)
    try:
        return _command(args, console)
    except SettingsError as error:
        console.print(f"[red]{error}[/red]")
        return 2
    except KeyboardInterrupt:  # before a run starts or after it ended; a run's own says so
        console.print(f"\n[yellow]{args.command}: stopped by Ctrl-C.[/yellow]")
        return 130


def _command(args: argparse.Namespace, console: Console) -> int:
    if args.command == "release":
        from .defs.quality.release import release_command

        warehouse = Settings.load(home=args.home).warehouse_path
        return release_command(warehouse, args.load_id, args.reason, console.file)
    if args.command == "bench":
        from .bench.runner import bench_command

        return bench_command(args, console)
    if args.command == "generate":
        return _generate(args, console)
    if args.command == "docs":
        return serve_docs(Settings.load(home=args.home), args.port, console)
    if args.command == "report":
        from .defs.quality.report import report_command

        return report_command(Settings.load(home=args.home), args.serve, args.port, console.out)
    return _run(args, console)


def _positive(kind: type) -> object:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be a number above 0, not {text!r}")
        return value

    return parse


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"must be a port from 0 to 65535, not {text!r}")
    return int(text)


def _add_location_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--landing", type=Path, help="landing folder (env TRUSTWH_LANDING)")
    parser.add_argument("--home", type=Path, help="warehouse home (env TRUSTWH_HOME)")


def _generate(args: argparse.Namespace, console: Console) -> int:
    from .sample_data.generate import generate

    started = time.perf_counter()
    try:
        summary = generate(
            args.out, seed=args.seed, months=args.months, scale=args.scale, dirty=args.dirty
        )
    except OSError as error:
        console.print(f"[red]Cannot write the sample to {args.out}:[/red] {error.strerror}")
        return 2
    console.print(str(summary))
    console.print(f"wrote {args.out} in {time.perf_counter() - started:.1f}s")
    return 0


def _run(args: argparse.Namespace, console: Console) -> int:
    settings = Settings.load(home=args.home, landing=args.landing)
    if not settings.landing.is_dir():
        what = "is not a folder" if settings.landing.exists() else "does not exist"
        console.print(
            f"[red]The landing folder {settings.landing} {what}.[/red] Land exports in "
            "<landing>/orders, refunds, fans and violations, or write a sample with "
            "`trustwh generate --out <landing>`."
        )
        return 2
    try:
        open_home(settings.home)
    except OSError as error:
        console.print(f"[red]Cannot use {settings.home} as the home:[/red] {error.strerror}")
        return 2
    try:
        settings.pii_key()  # in production, a missing key stops the run before it starts
    except SettingsError as error:
        console.print(f"[red]{error}[/red]")
        return 2
    settings.export_env()
    settings.dagster_home.mkdir(parents=True, exist_ok=True)
    console.print(
        f"trust-warehouse: landing [bold]{settings.landing}[/bold] → home "
        f"[bold]{settings.home}[/bold]"
    )
    if busy := home_busy(settings.home):
        console.print(f"[yellow]{busy}[/yellow]")
        return 3
    if not (args.force or args.full_refresh) and (published_at := up_to_date(settings)):
        console.print(
            f"Nothing new in {settings.landing}: every file is loaded and "
            f"{settings.serving_path} (published {published_at:%Y-%m-%d %H:%M:%S}) is current. "
            "No run started (--force runs the job anyway)."
        )
        return 0
    outcome = run_job(settings, console, full_refresh=args.full_refresh)
    _print_summary(settings, outcome, console)
    return 0 if outcome.success else 1


SUMMARY_COLUMNS = {
    "published": "published",
    "blocked": "blocked",
    "rejected": "rejected",
    "duplicate": "duplicate",
    "rows_loaded": "rows loaded",
    "rows_quarantined": "rows set aside",
}


def _print_summary(settings: Settings, outcome: Outcome, console: Console) -> None:
    files, blocked = ledger_summary(settings, outcome.started_at)
    if files:
        table = Table(title="Files landed in this run", show_edge=False)
        table.add_column("entity")
        for label in SUMMARY_COLUMNS.values():
            table.add_column(label, justify="right")
        for entity, counts in files.items():
            table.add_row(entity, *[f"{counts.get(key, 0):,}" for key in SUMMARY_COLUMNS])
        console.print(table)
    elif outcome.success:
        console.print(f"No new files in {settings.landing}.")
    for line in blocked:
        console.print(f"[yellow]•[/yellow] {line}")
    if outcome.success and not outcome.published:
        console.print(
            f"[green]Run {outcome.run_id[:8]} succeeded[/green] in {outcome.seconds:.1f}s: "
            f"nothing new to publish; [bold]{settings.serving_path}[/bold] is unchanged."
        )
    elif outcome.success:
        console.print(
            f"[green]Run {outcome.run_id[:8]} succeeded[/green] in {outcome.seconds:.1f}s: "
            f"{outcome.marts} marts published to [bold]{settings.serving_path}[/bold] "
            "(open it read-only)."
        )
    else:
        console.print(
            f"[red]Run {outcome.run_id[:8]} failed[/red] at {outcome.failed_step}: "
            f"{outcome.error}\n"
            + (
                f"{settings.serving_path} was published before it stopped."
                if outcome.published
                else "The serving database was not changed."
            )
            + f" Dagster's run log: `make dev` and open run {outcome.run_id}."
        )
    if settings.serving_path.exists():  # not before a first publish
        console.print(
            "Quarantine and ledger: quality.quarantine, quality.load_ledger in "
            f"{settings.serving_path}"
        )


def entry() -> None:
    """The `trustwh` command: `main`, then an exit that skips Python's teardown of the
    modules. A run has imported Dagster, dbt and GX, and freeing them took 1.2 s after the
    work was done, on every run. The exit handlers still run (temporary folders, logging);
    every database and file was closed by then. While a thread that is not a daemon runs,
    the exit is the usual one, which waits for it."""
    code = main()
    others = set(threading.enumerate()) - {threading.main_thread()}
    if any(not thread.daemon for thread in others):
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to flush to
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    entry()
