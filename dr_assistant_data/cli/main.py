"""``dr-assistant-data``: migrate, inspect and check the stores; build a demo clinic.

Every command but ``demo`` reads its settings from the environment (``Settings.from_env``);
``demo`` needs no servers. Exit codes: 0 success; 1 a failed check or a store error; 2 a
configuration error, a refused command or bad usage. Errors of the layer are reported as
one ``error: ...`` line on stderr, never as a traceback, and database URLs are shown with
their password masked. ``status``, ``health`` and ``verify-audit`` take ``--json`` (the
last two always print JSON). ``migrate``, ``rotate-keys``, ``verify-audit`` and
``sweep-documents`` draw a progress bar on stderr when it is a terminal (never with
``--json`` or in CI: ``progress_bar.py``). Output into a pipe closed early (``... | head``)
ends the command quietly, exit 1, without a traceback. ``check`` prints its verdict on its
first line and lists the differences only with ``--verbose``; a ``migrate`` that fails says
which stores it migrated. A variable that looks like a setting but is none is warned about
on stderr, naming the setting it resembles (``settings.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import ConfigurationError, DataLayerError
from ..health import failing_required
from ..layer import DataLayer
from ..relational.audit.verify import AuditReport, check_proof
from ..settings import Settings
from . import fhir
from .cache_demo import describe_caching
from .charting import chart_note, describe_note
from .clinic import build_clinic, describe_clinic
from .progress_bar import progress_bar
from .status import failed_sections, migration_outcome, status_lines, status_report

Command = Callable[[DataLayer, argparse.Namespace], int]
DISTRIBUTION = "dr-assistant-data"


def main(argv: list[str] | None = None) -> int:
    """Run one command; returns the process exit code."""
    args = _parser().parse_args(argv)
    try:
        code = _reported(lambda: _run_in_own_layer(args))
        sys.stdout.flush()  # a closed pipe surfaces here, not at interpreter exit
    except BrokenPipeError:
        # the reader left (``| head``): nothing more can be said on stdout, and the
        # interpreter's own flush at exit must not raise again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    return code


def run_with(dl: DataLayer, argv: list[str]) -> int:
    """Run one command against a layer the caller owns (the ``flask data`` group)."""
    args = _parser().parse_args(argv)
    return _reported(lambda: args.command(dl, args))


def _run_in_own_layer(args: argparse.Namespace) -> int:
    """The command on a layer of its own; what the settings made for the run (the demo's
    temporary folder) is removed after the layer is closed."""
    with ExitStack() as run, DataLayer(args.settings(args, run)) as dl:
        status: int = args.command(dl, args)
        return status


def _reported(run: Callable[[], int]) -> int:
    try:
        return run()
    except DataLayerError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2 if isinstance(error, ConfigurationError) else 1
    except KeyboardInterrupt:  # its workers stopped, what it had not committed rolled back
        print("interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dr-assistant-data",
        description="Migrate, inspect and check the stores of Dr. Assistant; build a demo clinic.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {metadata.version(DISTRIBUTION)}"
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    def command(
        name: str, run: Command, summary: str, *, json_output: bool = False
    ) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=summary, description=summary)
        sub.set_defaults(command=run, settings=_settings_from_env, json=False)
        if json_output:
            sub.add_argument("--json", action="store_true", help="machine-readable output")
        return sub

    demo = command("demo", _demo, "build a demo clinic in an SQLite file and show it")
    demo.add_argument(
        "--database", type=Path, help="SQLite file to keep (default: a temporary one, removed)"
    )
    demo.set_defaults(settings=_demo_settings)
    command("migrate", _migrate, "bring the schema to the newest revision")
    downgrade = command("downgrade", _downgrade, "take the schema back to a revision")
    downgrade.add_argument("revision", metavar="REV", help="a revision id, or 'base'")
    downgrade.add_argument(
        "--confirm", action="store_true", help="required with APP_ENV=production"
    )
    command("status", _status, "show the applied, newest and pending revisions", json_output=True)
    sweep = command(
        "sweep-documents",
        _sweep_documents,
        "settle documents left by interrupted units of work; remove expired and orphaned audio",
    )
    sweep.add_argument(
        "--grace-minutes",
        type=float,
        default=15.0,
        help="settle only documents marked, and remove only audio chunks written, more than this "
        "many minutes ago; keep it above your longest unit of work and upload "
        "(default: %(default)s)",
    )
    check = command("check", _check, "compare the models with the live schema")
    check.add_argument(
        "--verbose",
        action="store_true",
        help="list each difference (what a migration would change)",
    )
    command(
        "health",
        _health,
        "probe every store, print JSON; exit 1 if a required one is down",
        json_output=True,
    )
    command("seed", _seed, "add a demo clinic to the configured database")
    verify = command(
        "verify-audit",
        _verify_audit,
        "check the audit log against its latest checkpoint; exit 1 if tampered with",
        json_output=True,
    )
    verify.add_argument("--event", metavar="ID", help="prove this event's inclusion instead")
    seal = command("seal-audit", _seal_audit, "seal committed audit events and checkpoint them")
    seal.add_argument("--follow", action="store_true", help="keep sealing until interrupted")
    rotate = command(
        "rotate-keys", _rotate_keys, "re-seal identifiers and the cache under the active key"
    )
    rotate.add_argument(
        "--batch-size",
        type=int,
        default=500,
        help="rows re-encrypted per transaction, at least 1 (default: %(default)s)",
    )
    fhir.add_commands(command("fhir", _fhir_usage, "import or export records as FHIR R4"))
    return parser


def _fhir_usage(_dl: DataLayer, _args: argparse.Namespace) -> int:
    return 2  # argparse requires an action (import, export) before this could run


def _settings_from_env(_args: argparse.Namespace, _run: ExitStack) -> Settings:
    return Settings.from_env()


def _demo_settings(args: argparse.Namespace, run: ExitStack) -> Settings:
    if args.database is None:
        folder = run.enter_context(tempfile.TemporaryDirectory(prefix="dr-assistant-demo-"))
        path = Path(folder) / "clinic.sqlite3"
        print("Demo database: a temporary SQLite file, removed at the end (keep one: --database)")
    else:
        path = args.database.resolve()
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
    if show_caching:  # it edits an appointment's reason: shown before the day is
        print("", *describe_caching(dl, clinic, today), sep="\n")
    note_id = chart_note(dl, clinic)
    with dl.unit_of_work(actor="demo") as uow:
        lines = describe_clinic(uow, clinic, today)
        doctor = uow.users.get(clinic.doctor_id)
        lines += ["", *describe_note(uow, note_id, doctor.full_name if doctor else "")]
        lines += ["", *fhir.describe_record(uow, clinic.patient_ids[0])]
    print("", *lines, sep="\n")
    return 0


def _migrate(dl: DataLayer, args: argparse.Namespace) -> int:
    """Migrate both stores; when one fails, say which were migrated (the relational
    schema is migrated first, and stays so) before the status of each."""
    try:
        with progress_bar("applying revisions", "revision", json_output=args.json) as progress:
            dl.migrate(progress)
    except DataLayerError as error:
        print(f"error: {error}", file=sys.stderr)
        report = status_report(dl)
        print(f"migrate: {migration_outcome(report)}", file=sys.stderr)
        _print_status(report, args)
        return 1
    return _status(dl, args)


def _downgrade(dl: DataLayer, args: argparse.Namespace) -> int:
    dl.downgrade(args.revision, confirm=args.confirm)
    return _status(dl, args)


def _status(dl: DataLayer, args: argparse.Namespace) -> int:
    """One section per store: where it is, then its applied and pending migrations; exit 1
    when a store could not be read (the other is still reported)."""
    report = status_report(dl)
    _print_status(report, args)
    return 1 if failed_sections(report) else 0


def _print_status(report: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(*status_lines(report), sep="\n")


def _sweep_documents(dl: DataLayer, args: argparse.Namespace) -> int:
    with progress_bar("sweeping documents", "doc", json_output=args.json) as progress:
        report = dl.sweep_documents(timedelta(minutes=args.grace_minutes), progress)
    print(
        f"finalized {report.finalized}, undone {report.undone}, "
        f"undecided {report.undecided}, "
        f"expired audio removed {report.expired_audio}, "
        f"orphaned audio chunks removed {report.orphaned_chunks}"
    )
    return 0


def _check(dl: DataLayer, args: argparse.Namespace) -> int:
    """The verdict first, one line: revisions pending (they explain most differences),
    or how many differences there are, or agreement; exit 1 unless they agree. The
    differences themselves only with ``--verbose``."""
    pending = dl.migration_status().pending
    differences = dl.schema_drift()
    where = dl.settings.database_url_safe
    if pending:
        print(f"Revisions pending: {', '.join(pending)}; run `dr-assistant-data migrate`.")
    elif differences:
        print(f"Models and schema differ ({where}): {len(differences)} differences.")
    else:
        print(f"Models and schema agree ({where}).")
        return 0
    if differences and args.verbose:
        print("A migration would:")
        for difference in differences:
            print(f"  {_describe_difference(difference)}")
    elif differences:
        print(f"{len(differences)} differences between models and schema; --verbose lists them.")
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
    """Exit 1 when a required store is down (``health.REQUIRED_STORES``): a container
    health check. An optional store that is down is reported, exit 0."""
    report = dl.health()
    print(json.dumps(report, indent=2))
    down = failing_required(report)
    if down:
        print(f"error: required store down: {', '.join(down)}", file=sys.stderr)
    return 1 if down else 0


def _verify_audit(dl: DataLayer, args: argparse.Namespace) -> int:
    """Print the report (or the event's proof) as JSON; exit 1 when the log was tampered
    with or the proof does not check."""
    if args.event is not None:
        proof = dl.prove_audit_event(args.event)
        intact = check_proof(proof, dl.settings.audit_signing_key)
        print(json.dumps({"intact": intact, **dataclasses.asdict(proof)}, indent=2, default=str))
        return 0 if intact else 1
    with progress_bar("verifying audit log", "event", json_output=args.json) as progress:
        report = dl.verify_audit_chain(progress)
    print(json.dumps(dataclasses.asdict(report), indent=2))
    if not report.ok:
        print(f"error: {_audit_failure(report)}", file=sys.stderr)
    return 0 if report.ok else 1


def _audit_failure(report: AuditReport) -> str:
    """The problem, and where in the log it was found when it was found in the log (a
    checkpoint store that cannot be read has no place in it)."""
    if report.first_broken_seq is not None:
        return f"audit log broken at seq {report.first_broken_seq}: {report.problem}"
    if report.first_broken_batch is not None:
        return f"audit log broken at batch {report.first_broken_batch}: {report.problem}"
    return f"audit log not verified: {report.problem}"


def _seal_audit(dl: DataLayer, args: argparse.Namespace) -> int:
    """Seal once and print what was sealed, or keep sealing (``--follow``) until
    interrupted, as one of the deployment's candidate sealers: a round the database or the
    checkpoint store failed is a warning on stderr, and sealing goes on (a refused
    checkpoint is tried again, backing off: ``relational/audit/seal.py``)."""
    if not args.follow:
        sealed = dl.seal_audit()
        print(json.dumps(dataclasses.asdict(sealed) if sealed else None))
        return 0
    sealer = dl.audit_sealer()
    try:
        while True:
            failure = sealer.attempt()
            if failure is not None:
                print(f"warning: sealing round failed: {failure}; retrying", file=sys.stderr)
            time.sleep(sealer.interval)
    except KeyboardInterrupt:
        return 0
    finally:
        sealer.resign()


def _rotate_keys(dl: DataLayer, args: argparse.Namespace) -> int:
    if args.batch_size < 1:
        print("error: --batch-size must be at least 1", file=sys.stderr)
        return 2
    with progress_bar("re-encrypting rows", "row", json_output=args.json) as progress:
        rewritten = dl.rotate_keys(batch_size=args.batch_size, progress=progress)
    print(f"Re-encrypted {rewritten} rows under key {dl.settings.keyring.active}.")
    print("Cached reads dropped; cache values and login sessions re-sealed.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
