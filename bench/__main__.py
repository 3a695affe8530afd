"""``python -m bench``: the layer against the raw drivers on the configured PostgreSQL
and Redis (``BENCH_DATABASE_ADMIN_URL``, ``BENCH_REDIS_URL``), on data of its own.

Prints a table of medians and ratios, each ratio measured in the same run, and writes
every figure as JSON (``--json``). The options and a run's figures: docs/explanation/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from dr_assistant_data import DataLayer

from . import audit, concurrency, fhir, reads, report, volume, writes
from .round_trips import Counter
from .scratch import scratch_layer


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=500, help="timed calls per side, per run")
    parser.add_argument("--runs", type=int, default=3, help="runs of each benchmark")
    parser.add_argument("--appointments", type=int, default=30, help="appointments in the day")
    parser.add_argument("--short-history", type=int, default=10, help="encounters, short timeline")
    parser.add_argument("--long-history", type=int, default=1000, help="encounters, long timeline")
    parser.add_argument("--patients", type=int, default=100_000, help="rows imported and exported")
    parser.add_argument("--batch-size", type=int, default=5000, help="import batch")
    parser.add_argument("--export-batch", type=int, default=1000, help="rows per fetch, export")
    parser.add_argument("--threads", type=int, default=32, help="threads of the mixed run")
    parser.add_argument("--pool", type=int, default=10, help="database pool of the mixed run")
    parser.add_argument("--scaling-threads", type=int, default=4, help="threads, uncached gets")
    parser.add_argument("--operations", type=int, default=100, help="operations per thread")
    parser.add_argument("--audit-processes", type=int, default=8, help="audited writers")
    parser.add_argument("--audit-seconds", type=float, default=8.0, help="each audit run")
    parser.add_argument("--audit-events", type=int, default=1_000_000, help="events verified")
    parser.add_argument("--fhir-resources", type=int, default=20_000, help="FHIR Patients")
    parser.add_argument(
        "--only", choices=["fhir"], help="run one section: its rows and targets only"
    )
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"), help="output")
    return parser.parse_args(argv)


def everything(dl: DataLayer, counter: Counter, args: argparse.Namespace) -> dict[str, Any]:
    """Every section, in the order the table shows them."""
    figures: dict[str, Any] = {}
    figures |= reads.get_and_day(
        dl, counter, appointments=args.appointments, calls=args.calls, runs=args.runs
    )
    figures |= writes.create(dl, counter, calls=args.calls, runs=args.runs)
    figures |= reads.timeline(
        dl, sizes=(args.short_history, args.long_history), calls=max(args.calls // 10, 5)
    )
    doctor = reads.doctor_id(dl)
    figures |= concurrency.mixed(
        dl, threads=args.threads, operations=args.operations, doctor_id=doctor
    )
    figures |= concurrency.stampede(dl, threads=args.threads)
    figures |= concurrency.scaling(
        dl, threads=args.scaling_threads, operations=args.calls * args.runs
    )
    figures |= volume.bulk_import(
        dl, count=args.patients, runs=args.runs, batch_size=args.batch_size
    )
    figures |= volume.export(dl, expected=args.patients, batch_size=args.export_batch)
    figures |= fhir.import_export(dl, count=args.fhir_resources, batch_size=args.batch_size)
    figures |= audit.run_all(
        dl, processes=args.audit_processes, seconds=args.audit_seconds, events=args.audit_events
    )
    return figures


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    started = time.perf_counter()
    counter = Counter()
    with scratch_layer(pool_size=args.pool) as dl:
        counter.watch(dl.engine)
        figures = (
            fhir.import_export(dl, count=args.fhir_resources, batch_size=args.batch_size)
            if args.only == "fhir"
            else everything(dl, counter, args)
        )
    results = {
        "options": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
        },
        "seconds": time.perf_counter() - started,
        "figures": figures,
        "targets": report.targets(figures),
    }
    report.print_table(results, report.rows if args.only is None else fhir.rows)
    args.json.write_text(json.dumps(results, indent=2, sort_keys=True))
    print(f"\nfigures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
