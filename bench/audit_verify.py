"""``python -m bench.audit_verify CHECKPOINT_DIR [--one-process]``: verify the audit log of the
database at ``BENCH_VERIFY_DATABASE_URL`` against its checkpoints, in a process of its own so
its peak RSS is its own; as the layer does (chunks checked in a worker process per CPU), or
every chunk in this process. Prints JSON: the peak RSS of this process and of its largest
worker, each its own (``VmHWM``: ``ru_maxrss`` counts the RSS of the process that forked
this one, the bench with its million events written, before ``exec``)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from pathlib import Path

from dr_assistant_data import DataLayer, Settings
from dr_assistant_data.relational.audit import verify


def peak_rss_mb(pid: int | str = "self") -> float:
    """The peak RSS of process ``pid`` so far, 0 once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    [kilobytes] = [line.split()[1] for line in status.splitlines() if line.startswith("VmHWM")]
    return int(kilobytes) / 1024


def children() -> list[str]:
    parent = str(os.getpid())
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == parent:
            found.append(stat.parent.name)
    return found


def watch_workers(done: threading.Event, peaks: dict[str, float]) -> None:
    while not done.wait(0.2):
        for child in children():
            peaks[child] = max(peaks.get(child, 0.0), peak_rss_mb(child))


def main(url: str, checkpoints: str, one_process: bool) -> None:
    settings = Settings(
        database_url=url,
        redis_url="memory://",
        mongodb_uri="mongomock://localhost/verify",
        audit_checkpoint_dir=checkpoints,
    )
    done, peaks = threading.Event(), dict[str, float]()
    watcher = threading.Thread(target=watch_workers, args=(done, peaks), daemon=True)
    with DataLayer(settings) as dl:
        watcher.start()
        started = time.perf_counter()
        if one_process:
            store = dl.audit_checkpoints
            assert store is not None
            with dl.engine.connect() as connection:
                report = verify.verify(
                    connection, settings.audit_signing_key, store.latest(), anchored_store=True
                )
        else:
            report = dl.verify_audit_chain()
        seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    print(
        json.dumps(
            {
                "ok": report.ok,
                "rows_checked": report.rows_checked,
                "seconds": seconds,
                "processes": 1 if one_process else len(os.sched_getaffinity(0)),
                "peak_rss_mb": peak_rss_mb(),
                "workers_peak_rss_mb": max(peaks.values(), default=0.0),
            }
        )
    )


if __name__ == "__main__":
    main(os.environ["BENCH_VERIFY_DATABASE_URL"], sys.argv[1], "--one-process" in sys.argv[2:])
