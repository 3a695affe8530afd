"""The benchmark command runs end to end at tiny sizes and reports every figure (its
speed is what it measures, never asserted here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.layers import ADMIN_URL, REDIS_URL

pytestmark = pytest.mark.servers

REPO = Path(__file__).resolve().parents[2]

TIMED = (
    "get_uncached",
    "raw_psycopg2_select",
    "orm_get",
    "get_cached",
    "raw_redis_get_decode",
    "raw_redis_get_open_decode",
    "recipe_get",
    "get_miss",
    "raw_miss",
    "schedule_cached",
    "schedule_uncached",
    "schedule_view_cached",
    "schedule_view_uncached",
    "create",
    "raw_insert_commit",
    "orm_create",
)
"""Contenders timed side by side: each has its median and its round trips per operation."""
RATIOS = (
    "get_uncached_ratio",
    "orm_get_ratio",
    "get_cached_ratio",
    "sealing_ratio",
    "recipe_get_ratio",
    "recipe_vs_layer",
    "get_miss_ratio",
    "schedule_cached_speedup",
    "schedule_view_speedup",
    "schedule_view_cached_speedup",
    "create_ratio",
    "orm_create_ratio",
)
"""Ratios of two contenders: each has the p10 and p90 of its per-block ratios."""

FIGURES = {
    *(f"{name}_{figure}" for name in TIMED for figure in ("us", "round_trips")),
    *(f"{name}{suffix}" for name in RATIOS for suffix in ("", "_p10", "_p90")),
    "schedule_appointments",
    "schedule_cached_queries",
    "schedule_uncached_queries",
    "schedule_view_cached_queries",
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
    "import_floor_s",
    "import_floor_mb",
    "import_layer_rows_per_s",
    "import_copy_rows_per_s",
    "import_floor_rows_per_s",
    "import_vs_copy",
    "import_floor_vs_copy",
    "import_vs_floor",
    "import_python_us_per_row",
    "export_rows",
    "export_raw_s",
    "export_raw_peak_rss_growth_mb",
    "export_layer_s",
    "export_layer_peak_rss_growth_mb",
    "export_vs_raw",
    "export_entities_s",
    "export_entities_peak_rss_growth_mb",
    "export_entities_vs_raw",
    "scaling_threads",
    "scaling_vs_one_thread",
    "raw_scaling_vs_one_thread",
    "scaling_ceiling",
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
    "audit_verify_events_per_s",
    "audit_verify_workers_peak_rss_mb",
    "audit_verify_processes",
    *(
        f"audit_verify_small_{figure}"
        for figure in ("events", "ok", "s", "events_per_s", "peak_rss_mb", "workers_peak_rss_mb")
    ),
    "audit_verify_one_process_s",
    "audit_verify_vs_one_process",
    "audit_verify_rss_growth",
    "audit_generate_s",
    "audit_generate_events_per_s",
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
    environment = {"BENCH_DATABASE_ADMIN_URL": ADMIN_URL, "BENCH_REDIS_URL": REDIS_URL}
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
    assert "the server's floor" in finished.stdout
    # the floor copies the layer's text of both tables it writes (patients, audit events)
    assert results["figures"]["import_floor_mb"] > 0
    assert "patients.get, uncached (fresh unit)" in finished.stdout
    # the layer's round trips are counted: a read-through get reaches PostgreSQL
    assert results["figures"]["get_uncached_round_trips"].split()[0] != "0"
    assert results["figures"]["get_cached_round_trips"].endswith("1 redis")
    assert results["figures"]["audit_verify_events"] == 500
    assert results["figures"]["audit_verify_ok"] is True
    assert results["figures"]["audit_verify_small_events"] == 125
