"""The table printed at the end of a run, and the targets each figure is held to."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from . import fhir

TARGETS: list[tuple[str, str, Callable[[float, float], bool], float]] = [
    ("get_cached_ratio", "<=", operator.le, 1.5),
    ("get_uncached_ratio", "<=", operator.le, 2.5),
    ("schedule_cached_speedup", ">=", operator.ge, 5.0),
    ("timeline_growth", "<=", operator.le, 2.0),
    ("import_vs_copy", ">=", operator.ge, 0.5),
    ("export_layer_peak_rss_growth_mb", "<", operator.lt, 50.0),
    ("concurrency_errors", "==", operator.eq, 0),
    ("stampede_loads", "==", operator.eq, 1),
    ("audit_lock_free_vs_unaudited", ">=", operator.ge, 0.8),
    ("audit_lock_free_advisory_wait_share", "<", operator.lt, 0.05),
    ("audit_seal_p99_s", "<=", operator.le, 1.0),
    ("audit_verify_s", "<", operator.lt, 60.0),
]


TARGETS += fhir.TARGETS


def targets(figures: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "figure": name,
            "value": figures[name],
            "target": f"{sign} {bound}",
            "met": test(figures[name], bound),
        }
        for name, sign, test, bound in TARGETS
    ]


def print_table(results: dict[str, Any]) -> None:
    f = results["figures"]
    o = results["options"]
    long, short = f"timeline_{o['long_history']}", f"timeline_{o['short_history']}"
    rows = [
        (
            "patients.get, cached",
            f"{f['get_cached_us']:.0f} us",
            "redis GET + json.loads",
            f"{f['raw_redis_get_decode_us']:.0f} us",
            f"x{f['get_cached_ratio']:.2f}",
        ),
        (
            "redis GET + open + json.loads",
            f"{f['raw_redis_get_open_decode_us']:.0f} us",
            "redis GET + json.loads",
            f"{f['raw_redis_get_decode_us']:.0f} us",
            f"x{f['sealing_ratio']:.2f}",
        ),
        (
            "patients.get, uncached",
            f"{f['get_uncached_us']:.0f} us",
            "psycopg2 SELECT by PK",
            f"{f['raw_psycopg2_select_us']:.0f} us",
            f"x{f['get_uncached_ratio']:.2f}",
        ),
        (
            f"schedule_for ({f['schedule_appointments']}), cached",
            f"{f['schedule_cached_us']:.0f} us, {f['schedule_cached_queries']} SQL",
            "schedule_for, uncached",
            f"{f['schedule_uncached_us']:.0f} us, {f['schedule_uncached_queries']} SQL",
            f"{f['schedule_cached_speedup']:.1f}x faster",
        ),
        (
            f"timeline, {o['long_history']} encounters",
            f"{f[long + '_us']:.0f} us, {f[long + '_queries']} SQL",
            f"timeline, {o['short_history']} encounters",
            f"{f[short + '_us']:.0f} us, {f[short + '_queries']} SQL",
            f"x{f['timeline_growth']:.2f}",
        ),
        (
            "last keyset page of the long timeline",
            f"{f['timeline_last_keyset_page_us']:.0f} us, "
            f"{f['timeline_last_keyset_page_queries']} SQL",
            "",
            "",
            "",
        ),
        (
            f"import {f['import_rows']} patients (layer)",
            f"{f['import_layer_rows_per_s']:.0f} rows/s",
            "psycopg2 COPY, same rows",
            f"{f['import_copy_rows_per_s']:.0f} rows/s",
            f"x{f['import_vs_copy']:.2f} of COPY",
        ),
        (
            f"export {f['export_rows']} patients (iterate)",
            f"{f['export_layer_s']:.2f} s, +{f['export_layer_peak_rss_growth_mb']:.1f} MB",
            "psycopg2 server-side cursor",
            f"{f['export_raw_s']:.2f} s, +{f['export_raw_peak_rss_growth_mb']:.1f} MB",
            f"x{f['export_vs_raw']:.2f} of raw",
        ),
        (
            f"{f['concurrency_threads']} threads, pool {f['concurrency_pool']}, mixed",
            f"{f['concurrency_ops_per_s']:.0f} ops/s",
            "p50 / p99",
            f"{f['concurrency_p50_ms']:.1f} / {f['concurrency_p99_ms']:.1f} ms",
            f"{f['concurrency_errors']} errors",
        ),
        (
            f"{f['stampede_threads']} threads miss one patient",
            f"{f['stampede_loads']} load(s)",
            "",
            "",
            "",
        ),
    ]
    rows += [
        (
            f"{f['audit_writer_processes']} writer processes, lock-free audit",
            f"{f['audit_lock_free_writes_per_s']:.0f} writes/s",
            "audit write removed",
            f"{f['audit_unaudited_writes_per_s']:.0f} writes/s",
            f"x{f['audit_lock_free_vs_unaudited']:.2f}",
        ),
        (
            "  advisory-lock waits (lock-free)",
            f"{f['audit_lock_free_advisory_wait_share']:.1%} of active",
            "audit as before 0008 (lock)",
            f"{f['audit_locked_writes_per_s']:.0f} w/s, "
            f"{f['audit_locked_advisory_wait_share']:.0%} wait",
            f"x{f['audit_locked_vs_unaudited']:.2f}",
        ),
        (
            "commit -> sealed and checkpointed",
            f"p99 {f['audit_seal_p99_s']:.2f} s",
            "p50",
            f"{f['audit_seal_p50_s']:.2f} s",
            f"{f['audit_sealed_events']} events",
        ),
        (
            f"verify {f['audit_verify_events']} events",
            f"{f['audit_verify_s']:.1f} s, {f['audit_verify_peak_rss_mb']:.0f} MB peak",
            "generate (COPY) / seal all",
            f"{f['audit_generate_s']:.1f} s / {f['audit_seal_all_s']:.1f} s",
            "ok" if f["audit_verify_ok"] else "FAILED",
        ),
    ]
    rows += fhir.table_rows(f)
    print(f"medians of {o['runs']} runs x {o['calls']} calls per side; ratios from the same run\n")
    for row in rows:
        print(f"{row[0]:<40} {row[1]:>22} | {row[2]:<26} {row[3]:>22} | {row[4]}")
    print("\ntargets:")
    for target in results["targets"]:
        verdict = "met" if target["met"] else "MISSED"
        print(f"  {target['figure']:<34} {target['value']:>10.2f}  {target['target']:<8} {verdict}")
