"""``python -m chaos``: a randomized fault campaign against a deployment of the layer.

It starts a throwaway PostgreSQL and Redis (one server, or a Sentinel set), runs worker
processes that read and write patients and threads that edit notes and upload dictation,
all through the public API, injects faults at random, records every operation with its
start and end, then checks the invariants over the whole history (the campaign and its
invariants: docs/explanation/guarantees.md). Prints a table (``--json`` for machines);
exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any

from dr_assistant_data import DataLayer
from dr_assistant_data.errors import DataLayerError

from . import report, servers
from .checker import KILL_WINDOW_BOUND_MS, check
from .clinic import DAY, final_state, open_clinic
from .editors import Editors
from .faults import SENTINEL_KINDS, SINGLE_KINDS, FaultScheduler, Targets
from .history import History, load
from .processes import Workers
from .sealers import Sealers
from .servers import PostgresProxy
from .worker import read, settings_from

SETTLE_ATTEMPTS = 30


def options(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--operations", type=int, default=1500, help="operations in all")
    parser.add_argument("--processes", type=int, default=3, help="worker processes")
    parser.add_argument("--redis", choices=("single", "sentinel"), default="single")
    parser.add_argument("--faults", default="all", help="comma-separated kinds, all or none")
    parser.add_argument("--interval", type=float, default=0.5, help="mean seconds between faults")
    parser.add_argument("--rate", type=float, default=10.0, help="operations/s of each process")
    parser.add_argument("--patients", type=int, default=5, help="patients the workers share")
    parser.add_argument("--note-share", type=float, default=0.2, help="share of document work")
    parser.add_argument("--note-threads", type=int, default=2)
    parser.add_argument("--stale-bound-ms", type=float, default=0.0, help="tolerated window")
    parser.add_argument(
        "--kill-window-bound-ms",
        type=float,
        default=KILL_WINDOW_BOUND_MS,
        help="tolerated window after a writer died between its COMMIT and its delivery",
    )
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the history files")
    args = parser.parse_args(argv)
    allowed = SENTINEL_KINDS if args.redis == "sentinel" else SINGLE_KINDS
    chosen = {"all": list(allowed), "none": []}
    args.kinds = chosen[args.faults] if args.faults in chosen else args.faults.split(",")
    unknown = set(args.kinds) - set(allowed)
    if unknown:
        parser.error(f"--faults: {', '.join(sorted(unknown))} not in {', '.join(allowed)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = options(argv)
    started = time.perf_counter()
    folder = Path(tempfile.mkdtemp(prefix="chaos-"))
    try:
        with ExitStack() as stack:
            results = campaign(args, folder, stack)
    finally:
        if args.keep:
            print(f"history kept in {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["options"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    report.print_table(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, sort_keys=True))
    return 0 if results["passed"] else 1


def campaign(args: argparse.Namespace, folder: Path, stack: ExitStack) -> dict[str, Any]:
    postgres = stack.enter_context(servers.postgres())
    redis = stack.enter_context(servers.redis_deployment(args.redis))
    proxy = stack.enter_context(PostgresProxy(("127.0.0.1", postgres.port)))
    settings: dict[str, Any] = {
        "database_url": f"postgresql+psycopg2://postgres@127.0.0.1:{proxy.port}/{servers.DATABASE}"
        "?sslmode=disable",
        "mongodb_uri": "mongomock://localhost/chaos",
        "cache_prefix": f"chaos:{args.seed}:",
        "environment": "test",
        "db_pool_size": 2,
        "db_connect_timeout": 2.0,
        "db_pool_timeout": 5.0,
        "audit_checkpoint_dir": str(folder / "checkpoints"),
        **redis.settings(),
    }
    dl = DataLayer(settings_from({**settings, "db_pool_size": 4}))  # editors' and checker's
    stack.callback(dl.close)
    dl.migrate()
    clinic, patients = open_clinic(dl, patients=args.patients + 1, encounters=args.patients * 2)
    probe = patients.pop()  # written only by writer_kill_after_commit's victims

    notes_quota = round(args.operations * args.note_share)
    workers = Workers(
        folder,
        {
            "settings": settings,
            "patients": patients,
            "probe": probe,
            "rate": args.rate,
            "doctor": clinic.doctor,
            "day": DAY.isoformat(),
        },
        seed=args.seed,
    )
    stack.callback(workers.stop)
    for index, quota in enumerate(shares(args.operations - notes_quota, args.processes)):
        workers.start(f"w{index + 1}", quota)
    sealers = Sealers(folder, settings)
    stack.callback(sealers.stop)
    for _ in range(2):
        sealers.start()
    editors = Editors(dl, clinic, folder, rate=args.rate, seed=args.seed)
    for index, quota in enumerate(shares(notes_quota, args.note_threads)):
        editors.start(f"notes{index + 1}", quota)
    faults = FaultScheduler(
        Targets(postgres, redis, proxy, workers, editors, sealers, dl, probe),
        args.kinds,
        History(folder / "faults.jsonl", "faults"),
        interval=args.interval,
        seed=args.seed,
    )
    faults.start()
    stack.callback(faults.stopping.set)
    crashed = workers.wait()
    editors.wait()
    faults.stop()
    sealers.stop()

    settle(dl)
    created = [op["key"] for op in load(folder) if op["kind"] == "create" and "key" in op]
    final_reads(settings, [*patients, probe, *created], folder)
    ops = load(folder)
    verdict = check(
        ops,
        final_state(dl, [*patients, probe]),
        stale_bound_ms=args.stale_bound_ms,
        kill_window_bound_ms=args.kill_window_bound_ms,
    )
    results = report.summary(ops, verdict, faults.errors)
    results["crashed_workers"] = crashed
    results["passed"] = results["passed"] and not crashed
    return results


def shares(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` as evenly as it goes."""
    return [total // parts + (index < total % parts) for index in range(parts)]


def settle(dl: DataLayer) -> None:
    """Once the faults have stopped: settle every document left pending (grace 0)."""
    for _ in range(SETTLE_ATTEMPTS):
        try:
            dl.sweep_documents(grace=timedelta(0))
            return
        except DataLayerError:
            time.sleep(1)
    raise RuntimeError("the stores did not come back after the campaign")


def final_reads(settings: dict[str, Any], patients: list[str], folder: Path) -> None:
    """A fresh layer's view once everything is calm: each patient (those the workers
    created too, committed or not) read once more."""
    history = History(folder / "final.jsonl", "final")
    dl = DataLayer(settings_from(settings))
    try:
        for patient in patients:
            read(dl, history, patient)
    finally:
        dl.close()
        history.close()


if __name__ == "__main__":
    sys.exit(main())
