"""``dr-assistant-data fhir import FILE...`` and ``fhir export [--patient ID | --since DATE]
[--until DATE] DIR``.

Both print a summary table (or, with ``--json``, the report as JSON) that names resource
types, counts, FHIR elements and reason codes, never a value from a record, and files by
their position among the arguments, never by name. ``import`` prints its report however
the run ends (interrupted, the database gone) and exits 1 when a resource was refused or
in conflict or the run stopped early (what could be written is), 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from datetime import datetime, time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from ..errors import ValidationError
from ..fhir import FhirImport, ImportReport
from ..fhir.exporter import export_bulk, patient_record
from ..fhir.outcomes import CONFLICTED, OUTCOMES, REFUSED
from ..layer import DataLayer
from .progress_bar import progress_bar

MOST_REFUSALS_SHOWN = 20


def add_commands(fhir: argparse.ArgumentParser) -> None:
    """The ``import`` and ``export`` actions of the ``fhir`` command."""
    actions = fhir.add_subparsers(required=True, metavar="ACTION")
    importing = actions.add_parser(
        "import",
        help="import FHIR R4 NDJSON files or Bundles",
        description="Import FHIR R4 resources (Bulk Data NDJSON or Bundles); "
        "a resource seen before updates its record.",
    )
    importing.add_argument(
        "files",
        nargs="+",
        type=Path,
        metavar="FILE",
        help="an NDJSON file (one resource per line) or a JSON Bundle",
    )
    importing.add_argument(
        "--batch-size",
        type=int,
        default=500,
        help="resources written per unit of work, 1 to 10000 (default: %(default)s)",
    )
    importing.add_argument(
        "--actor",
        default="fhir-import",
        help="the actor recorded on every audit event of the import: your user id or a "
        "system name (default: %(default)s)",
    )
    importing.add_argument(
        "--source", default="", help="the system the files come from (its ids are its own)"
    )
    importing.add_argument(
        "--update-linked",
        action="store_true",
        help="let the files update records they match from another source (a patient by "
        "ABHA number or MRN) instead of reporting what differs as conflicts",
    )
    importing.add_argument(
        "--strict",
        action="store_true",
        help="refuse a resource with an optional element that is not valid, instead of "
        "keeping it without that element",
    )
    importing.add_argument("--json", action="store_true", help="machine-readable output")
    importing.set_defaults(command=_import)
    exporting = actions.add_parser(
        "export",
        help="export records as FHIR R4",
        description="Write every record (or those changed from --since to before --until) "
        "as Bulk Data NDJSON "
        "files in DIR, or one patient's record as a FHIR document Bundle.",
    )
    which = exporting.add_mutually_exclusive_group()
    which.add_argument("--patient", metavar="ID", help="one patient's record as a document")
    which.add_argument(
        "--since", metavar="DATE", help="records changed at or after DATE (ISO date or time)"
    )
    exporting.add_argument(
        "--until", metavar="DATE", help="records changed before DATE (ISO date or time)"
    )
    exporting.add_argument(
        "directory",
        type=Path,
        metavar="DIR",
        help="the folder to write into (the patient's Bundle, or one NDJSON file per "
        "resource type)",
    )
    exporting.add_argument(
        "--actor",
        default="fhir-export",
        help="the actor recorded on the chart reads audited with AUDIT_READS: your user id or "
        "a system name (default: %(default)s)",
    )
    exporting.add_argument("--json", action="store_true", help="machine-readable output")
    exporting.set_defaults(command=_export)


def describe_record(uow: Any, patient_id: Any) -> list[str]:
    """The patient's record as a FHIR document Bundle, in a few lines (the demo's)."""
    bundle = patient_record(uow, patient_id)
    counts = Counter(entry["resource"]["resourceType"] for entry in bundle["entry"])
    index = bundle["entry"][0]["resource"]
    lines = [
        f"FHIR R4 document Bundle of the patient's record: {len(bundle['entry'])} entries",
        "  " + ", ".join(f"{kind} x{count}" for kind, count in sorted(counts.items())),
        "  Composition sections: " + ", ".join(section["title"] for section in index["section"]),
    ]
    for entry in bundle["entry"]:
        resource = entry["resource"]
        if resource["resourceType"] == "MedicationRequest":
            dose = resource["dosageInstruction"][0]
            lines.append(
                f"  MedicationRequest: {resource['medicationCodeableConcept']['text']}, "
                f"{dose['text']}, {dose['timing']['code']['text']}"
            )
    return lines


def _import(dl: DataLayer, args: argparse.Namespace) -> int:
    with progress_bar("importing", "resource", json_output=args.json) as progress:
        importing = FhirImport(
            dl,
            actor=args.actor,
            batch_size=args.batch_size,
            source=args.source,
            update_linked=args.update_linked,
            strict=args.strict,
            progress=progress,
        )
        try:
            report = importing.run(args.files)
        except KeyboardInterrupt:
            report = importing.report  # stopped: what was written is in it
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(_import_table(report))
    return 1 if report.stopped or report.total(REFUSED) or report.total(CONFLICTED) else 0


def _import_table(report: ImportReport) -> str:
    rows = [["resource", *OUTCOMES]]
    rows += [[kind, *map(str, counts.values())] for kind, counts in report.table().items()]
    rows.append(["total", *(str(report.total(name)) for name in OUTCOMES)])
    lines = _aligned(rows)
    if report.stopped:
        lines += ["", f"stopped early ({report.stopped}): the counts above are what was written"]
    for title, listed in (("refused", report.refusals), ("in conflict", report.conflicts)):
        counts = Counter((r.resource_type, r.field, r.reason) for r in listed)
        if counts:
            lines += ["", f"{title} (resource, element, reason: count):"]
            for (kind, field, reason), count in counts.most_common(MOST_REFUSALS_SHOWN):
                lines.append(f"  {kind} {field} {reason}: {count}")
    if report.dropped_counts:
        lines += ["", "kept, element dropped (resource, element, reason: count):"]
        for (kind, field, reason), count in report.dropped_counts.most_common():
            lines.append(f"  {kind} {field} {reason}: {count}")
    return "\n".join(lines)


def _export(dl: DataLayer, args: argparse.Namespace) -> int:
    directory: Path = args.directory
    if args.patient is not None and args.until is not None:
        raise ValidationError("until", "applies to a bulk export, not to one patient's record")
    if args.patient is not None:
        with dl.unit_of_work(actor=args.actor) as uow:
            bundle = patient_record(uow, args.patient)
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{bundle['id']}.json"
        path.write_text(json.dumps(bundle, indent=2, ensure_ascii=False), encoding="utf-8")
        counts = Counter(entry["resource"]["resourceType"] for entry in bundle["entry"])
        summary: dict[str, Any] = {"counts": dict(sorted(counts.items())), "files": [str(path)]}
    else:
        zone = ZoneInfo(dl.settings.clinic_timezone)
        since = _moment("since", args.since, zone) if args.since else None
        until = _moment("until", args.until, zone) if args.until else None
        with progress_bar("exporting", "resource", json_output=args.json) as progress:
            summary = export_bulk(
                dl, directory, actor=args.actor, since=since, until=until, progress=progress
            ).as_json()
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        rows = [["resource", "exported"], *([k, str(v)] for k, v in summary["counts"].items())]
        print("\n".join([*_aligned(rows), "", *summary["files"]]))
    return 0


def _moment(field: str, text: str, zone: ZoneInfo) -> datetime:
    """An ISO date (the start of that day on the clinic's clock) or date and time (on the
    clinic's clock unless it names its offset)."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValidationError(field, "must be an ISO date or date and time") from None
    if len(text) <= 10:
        moment = datetime.combine(moment.date(), time())
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def _aligned(rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(w) if i == 0 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in rows
    ]
