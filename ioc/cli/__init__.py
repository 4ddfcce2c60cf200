"""The ``ioc`` command line. Messages are Vietnamese first, then English.

Exit codes: 0 success; 1 unexpected failure; 2 invalid configuration or arguments; 3 catalogue;
4 invalid event or report (nothing sent); 5 the broker did not acknowledge; 6 a local service
could not start or stop; 7 a report was sent in part (``--skip-invalid`` skipped bad rows).
"""

from __future__ import annotations

import sys

import typer

from ioc.cli import agency, bench, catalog, dashboards, kafka, services, simulate, sources
from ioc.errors import IOCError

app = typer.Typer(
    name="ioc",
    help="Giám sát luồng dữ liệu IOC tỉnh Sơn La / Streaming monitor of the Sơn La IOC.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(kafka.app, name="kafka")
app.add_typer(catalog.app, name="catalog")
app.add_typer(dashboards.app, name="dashboards")
app.add_typer(services.topics_app, name="topics")
app.add_typer(sources.app, name="sources")
app.command("worker")(services.worker)
app.command("demo")(services.demo)
app.command("push")(agency.push)
app.command("rejects")(agency.rejects)
app.command("simulate")(simulate.simulate)
app.command("bench")(bench.bench)
app.command("bench-agents")(bench.bench_agents)


def main() -> None:
    """Entry point of the ``ioc`` script: IOC errors become a message and an exit code."""
    try:
        app()
    except IOCError as exc:
        typer.echo(f"Lỗi / Error: {exc}", err=True)
        sys.exit(exc.exit_code)
