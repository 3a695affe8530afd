"""``python -m bench.audit_verify CHECKPOINT_DIR``: verify the audit log of the database at
``BENCH_VERIFY_DATABASE_URL`` against its checkpoints, in a process of its own so its peak
RSS is its own; prints JSON."""

from __future__ import annotations

import json
import os
import resource
import sys
import time

from dr_assistant_data import DataLayer, Settings


def main(url: str, checkpoints: str) -> None:
    settings = Settings(
        database_url=url,
        redis_url="memory://",
        mongodb_uri="mongomock://localhost/verify",
        audit_checkpoint_dir=checkpoints,
    )
    with DataLayer(settings) as dl:
        started = time.perf_counter()
        report = dl.verify_audit_chain()
        seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "ok": report.ok,
                "rows_checked": report.rows_checked,
                "seconds": seconds,
                "peak_rss_mb": peak_kb / 1024,
            }
        )
    )


if __name__ == "__main__":
    main(os.environ["BENCH_VERIFY_DATABASE_URL"], sys.argv[1])
