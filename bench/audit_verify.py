"""``python -m bench.audit_verify CHECKPOINT_DIR [--one-process]``: verify the audit log of the
database at ``BENCH_VERIFY_DATABASE_URL`` against its checkpoints, in a process of its own so
its peak RSS is its own; as the layer does (chunks checked in a worker process per CPU), or
every chunk in this process. Prints JSON: the peak RSS of this process and of its largest
worker."""

from __future__ import annotations

import json
import os
import resource
import sys
import time

from dr_assistant_data import DataLayer, Settings
from dr_assistant_data.relational.audit import verify


def main(url: str, checkpoints: str, one_process: bool) -> None:
    settings = Settings(
        database_url=url,
        redis_url="memory://",
        mongodb_uri="mongomock://localhost/verify",
        audit_checkpoint_dir=checkpoints,
    )
    with DataLayer(settings) as dl:
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
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    workers_peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(
        json.dumps(
            {
                "ok": report.ok,
                "rows_checked": report.rows_checked,
                "seconds": seconds,
                "processes": 1 if one_process else len(os.sched_getaffinity(0)),
                "peak_rss_mb": peak_kb / 1024,
                "workers_peak_rss_mb": workers_peak_kb / 1024,
            }
        )
    )


if __name__ == "__main__":
    main(os.environ["BENCH_VERIFY_DATABASE_URL"], sys.argv[1], "--one-process" in sys.argv[2:])
