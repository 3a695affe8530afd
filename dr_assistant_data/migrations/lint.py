"""Lint every revision's offline SQL with squawk, which knows which statements lock what.

Each revision's upgrade is rendered as the SQL it would run on PostgreSQL
(``alembic upgrade <previous>:<revision> --sql``, with the timeouts a migration runs
under) and handed to ``squawk`` (the ``squawk-cli`` package). A revision that takes a
lock that blocks a busy table (``CREATE INDEX`` without ``CONCURRENTLY``, a column type
that rewrites the table, a constraint validated at once...) fails with squawk's message.

A rule a revision breaks on purpose is excepted in that revision, with the reason::

    squawk_exceptions = {"require-concurrent-index-creation": "the table is new"}

Rules excepted for every revision are in :data:`PROJECT_EXCEPTIONS`, with theirs.

Run it as ``python -m dr_assistant_data.migrations.lint [--script-location DIR]``; it
exits 0 when every revision passes, 1 otherwise, 2 when squawk is not installed.
"""

from __future__ import annotations

import argparse
import io
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from alembic import command
from alembic.script import Script, ScriptDirectory

from ..settings import Settings
from .relational import alembic_config, script_location

PROJECT_EXCEPTIONS = {
    "prefer-text-field": (
        "VARCHAR(n) lengths are the schema's validation contract (the models declare "
        "them); the rule's hazard, a later length change, is caught as changing-column-type"
    ),
    "prefer-bigint-over-int": (
        "ids are UUIDs; INTEGER columns hold versions, counts and positions, far from 2^31"
    ),
}
"""Rules excepted for every revision, with the reason."""

PG_VERSION = "15"


def revision_sql(scripts: ScriptDirectory, script: Script) -> str:
    """The SQL the upgrade to ``script`` runs, from the revision before it."""
    config = alembic_config()
    config.set_main_option("script_location", scripts.dir)
    config.output_buffer = io.StringIO()
    config.attributes["settings"] = Settings()
    previous = script.down_revision
    span = f"{previous}:{script.revision}" if isinstance(previous, str) else script.revision
    command.upgrade(config, span, sql=True)
    return config.output_buffer.getvalue()


def exceptions_of(script: Script) -> dict[str, str]:
    return {**PROJECT_EXCEPTIONS, **getattr(script.module, "squawk_exceptions", {})}


def squawk_binary() -> str | None:
    beside_python = Path(sys.executable).with_name("squawk")
    return str(beside_python) if beside_python.exists() else shutil.which("squawk")


def lint(location: str, squawk: str) -> int:
    """Lint each revision of ``location``, oldest first, printing squawk's findings;
    the number of revisions that failed."""
    scripts = ScriptDirectory(location)
    failed = 0
    with tempfile.TemporaryDirectory() as directory:
        for script in reversed(list(scripts.walk_revisions())):
            path = Path(directory) / f"{script.revision}.sql"
            path.write_text(revision_sql(scripts, script))
            excepted = ",".join(sorted(exceptions_of(script)))
            result = subprocess.run(  # noqa: S603 - squawk on a file of ours
                [
                    squawk,
                    "--reporter",
                    "gcc",
                    f"--pg-version={PG_VERSION}",
                    f"--exclude={excepted}",
                    str(path),
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                failed += 1
                print(f"revision {script.revision} ({Path(script.path).name}):")
                print(result.stdout.replace(str(path), script.revision) + result.stderr)
    return failed


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--script-location", default=script_location())
    args = parser.parse_args(argv)
    squawk = squawk_binary()
    if squawk is None:
        print("squawk is not installed: pip install squawk-cli", file=sys.stderr)
        return 2
    failed = lint(args.script_location, squawk)
    print(
        f"squawk: {failed} revision(s) with findings" if failed else "squawk: every revision passes"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
