"""The benchmark command runs end to end at tiny sizes and reports every figure (its
speed is what it measures, never asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import ADMIN_URL

from dr_assistant_data import Settings

REPO = Path(__file__).resolve().parent.parent

FIGURES = {
    "get_cached_us",
    "raw_redis_get_decode_us",
    "get_cached_ratio",
    "get_uncached_us",
    "raw_psycopg2_select_us",
    "get_uncached_ratio",
    "schedule_appointments",
    "schedule_cached_us",
    "schedule_uncached_us",
    "schedule_cached_speedup",
    "schedule_cached_queries",
    "schedule_uncached_queries",
    "timeline_page",
    "timeline_3_queries",
    "timeline_3_us",
    "timeline_30_queries",
    "timeline_30_us",
    "timeline_last_keyset_page_queries",
    "timeline_last_keyset_page_us",
    "timeline_growth",
    "import_rows",
    "import_batch_size",
    "import_layer_s",
    "import_copy_s",
    "import_layer_rows_per_s",
    "import_copy_rows_per_s",
    "import_vs_copy",
    "export_rows",
    "export_raw_s",
    "export_raw_peak_rss_growth_mb",
    "export_layer_s",
    "export_layer_peak_rss_growth_mb",
    "export_vs_raw",
    "concurrency_threads",
    "concurrency_pool",
    "concurrency_operations",
    "concurrency_ops_per_s",
    "concurrency_p50_ms",
    "concurrency_p99_ms",
    "concurrency_errors",
    "concurrency_error_kinds",
    "stampede_threads",
    "stampede_loads",
    "raw_redis_get_open_decode_us",
    "sealing_ratio",
    "audit_writer_processes",
    *(
        f"audit_{mode}_{figure}"
        for mode in ("unaudited", "locked", "lock_free")
        for figure in ("writes_per_s", "advisory_wait_share", "events")
    ),
    "audit_lock_free_vs_unaudited",
    "audit_locked_vs_unaudited",
    "audit_seal_p50_s",
    "audit_seal_p99_s",
    "audit_sealed_events",
    "audit_verify_events",
    "audit_verify_ok",
    "audit_verify_s",
    "audit_verify_peak_rss_mb",
    "audit_generate_s",
    "audit_seal_all_s",
    "fhir_resources",
    "fhir_import_per_s",
    "fhir_create_many_per_s",
    "fhir_import_vs_create_many",
    "fhir_export_rows_per_s",
    "fhir_iterate_rows_per_s",
    "fhir_export_vs_iterate",
}


def test_the_benchmark_reports_every_figure_and_target_as_json(tmp_path):
    output = tmp_path / "results.json"
    tiny = "--calls 3 --runs 1 --appointments 4 --short-history 3 --long-history 30"
    tiny += " --patients 300 --batch-size 100 --export-batch 50 --threads 4 --pool 2 --operations 5"
    tiny += " --audit-processes 2 --audit-seconds 1 --audit-events 500 --fhir-resources 200"
    environment = {"BENCH_DATABASE_ADMIN_URL": ADMIN_URL, "BENCH_REDIS_URL": Settings().redis_url}
    finished = subprocess.run(
        [sys.executable, "-m", "bench", *tiny.split(), "--json", str(output)],
        cwd=REPO,
        env={**os.environ, **environment},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert finished.returncode == 0, finished.stderr
    results = json.loads(output.read_text())
    assert set(results["figures"]) == FIGURES
    assert {t["figure"] for t in results["targets"]} <= FIGURES
    assert results["figures"]["import_rows"] == 300
    assert results["figures"]["concurrency_operations"] == 20
    assert "import 300 patients" in finished.stdout
    assert results["figures"]["audit_verify_events"] == 500
    assert results["figures"]["audit_verify_ok"] is True
