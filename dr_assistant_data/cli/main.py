"""``dr-assistant-data``: migrate, inspect and check the stores; build a demo clinic.

Every command but ``demo`` reads its settings from the environment (``Settings.from_env``);
``demo`` needs no servers. Exit codes: 0 success; 1 a failed check or a store error; 2 a
configuration error, a refused command or bad usage. Errors of the layer are reported as
one ``error: ...`` line on stderr, never as a traceback, and database URLs are shown with
their password masked.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import ConfigurationError, DataLayerError
from ..layer import DataLayer
from ..settings import Settings
from .cache_demo import describe_caching
from .clinic import build_clinic, describe_clinic

Command = Callable[[DataLayer, argparse.Namespace], int]


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        with DataLayer(args.settings(args)) as dl:
            return args.command(dl, args)  # type: ignore[no-any-return]
    except DataLayerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ConfigurationError) else 1


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dr-assistant-data",
        description="Migrate, inspect and check the stores of Dr. Assistant; build a demo clinic.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(name: str, run: Command, summary: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(command=run, settings=_settings_from_env)
        return sub

    demo = command("demo", _demo, "build a demo clinic in an SQLite file and show it")
    demo.add_argument("--database", type=Path, help="SQLite file (default: a new temp dir)")
    demo.set_defaults(settings=_demo_settings)
    command("migrate", _migrate, "bring the schema to the newest revision")
    downgrade = command("downgrade", _downgrade, "take the schema back to a revision")
    downgrade.add_argument("revision", metavar="REV", help="a revision id, or 'base'")
    command("status", _status, "show the applied, newest and pending revisions")
    command("check", _check, "compare the models with the live schema")
    command("health", _health, "probe every store and print a JSON report")
    command("seed", _seed, "add a demo clinic to the configured database")
    return parser


def _settings_from_env(_args: argparse.Namespace) -> Settings:
    return Settings.from_env()


def _demo_settings(args: argparse.Namespace) -> Settings:
    path = args.database or Path(tempfile.mkdtemp(prefix="dr-assistant-demo-")) / "clinic.sqlite3"
    path = path.resolve()
    print(f"Demo database: {path}")
    return Settings(
        database_url=f"sqlite:///{path}",
        mongodb_uri="mongomock://localhost/dr_assistant_demo",
        redis_url="memory://",
        environment="development",
    )


def _demo(dl: DataLayer, _args: argparse.Namespace) -> int:
    return _build_and_show_clinic(dl, show_caching=True)


def _seed(dl: DataLayer, _args: argparse.Namespace) -> int:
    if dl.settings.environment == "production":
        print("error: seed refuses to write demo data into production", file=sys.stderr)
        return 2
    print(f"Seeding {dl.settings.database_url_safe}")
    return _build_and_show_clinic(dl)


def _build_and_show_clinic(dl: DataLayer, *, show_caching: bool = False) -> int:
    """Migrate, build the clinic in one unit of work, read it back in another."""
    dl.migrate()
    today = datetime.now(ZoneInfo(dl.settings.clinic_timezone)).date()
    with dl.unit_of_work(actor="demo") as uow:
        clinic = build_clinic(uow, today)
    caching = ["", *describe_caching(dl, clinic, today)] if show_caching else []
    with dl.unit_of_work(actor="demo") as uow:
        lines = describe_clinic(uow, clinic, today)
    print("", *lines, *caching, sep="\n")
    return 0


def _migrate(dl: DataLayer, args: argparse.Namespace) -> int:
    dl.migrate()
    return _status(dl, args)


def _downgrade(dl: DataLayer, args: argparse.Namespace) -> int:
    dl.downgrade(args.revision)
    return _status(dl, args)


def _status(dl: DataLayer, _args: argparse.Namespace) -> int:
    status = dl.migration_status()
    print(f"database: {dl.settings.database_url_safe}")
    print(f"current:  {', '.join(status.current) or 'none (empty schema)'}")
    print(f"head:     {status.head or 'none'}")
    print(f"pending:  {', '.join(status.pending) or 'none'}")
    return 0


def _check(dl: DataLayer, _args: argparse.Namespace) -> int:
    differences = dl.schema_drift()
    if not differences:
        print(f"Models and schema agree ({dl.settings.database_url_safe}).")
        return 0
    print(f"Models and schema differ ({dl.settings.database_url_safe}); a migration would:")
    for difference in differences:
        print(f"  {_describe_difference(difference)}")
    return 1


def _describe_difference(difference: Any) -> str:
    """One line for an Alembic comparison result: the operation, then what it touches."""
    if isinstance(difference, list):
        return "; ".join(_describe_difference(part) for part in difference)
    operation, *parts = difference
    touched = [
        str(getattr(part, "name", part))
        for part in parts
        if part is not None and not isinstance(part, dict)  # dicts: the existing column's options
    ]
    return " ".join([operation, *touched])


def _health(dl: DataLayer, _args: argparse.Namespace) -> int:
    report = dl.health()
    print(json.dumps(report, indent=2))
    return 0 if report["postgres"]["ok"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
