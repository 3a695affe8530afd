"""The table printed at the end of a run, and the targets each figure is held to."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

from . import fhir

TARGETS: list[tuple[str, str, Callable[[float, float], bool], float]] = [
    ("get_uncached_ratio", "<=", operator.le, 2.0),
    ("get_cached_ratio", "<=", operator.le, 1.5),
    ("recipe_vs_layer", ">=", operator.ge, 1.5),
    ("get_miss_ratio", "<=", operator.le, 2.5),
    ("create_ratio", "<=", operator.le, 2.5),
    ("schedule_cached_speedup", ">=", operator.ge, 5.0),
    ("schedule_view_speedup", ">=", operator.ge, 5.0),
    ("timeline_growth", "<=", operator.le, 2.0),
    ("import_vs_copy", ">=", operator.ge, 0.3),
    ("import_python_us_per_row", "<=", operator.le, 25.0),
    ("export_vs_raw", ">=", operator.ge, 0.3),
    ("export_layer_peak_rss_growth_mb", "<", operator.lt, 50.0),
    ("scaling_vs_one_thread", ">=", operator.ge, 1.8),
    ("concurrency_errors", "==", operator.eq, 0),
    ("stampede_loads", "==", operator.eq, 1),
    ("audit_lock_free_vs_unaudited", ">=", operator.ge, 0.8),
    ("audit_lock_free_advisory_wait_share", "<", operator.lt, 0.05),
    ("audit_seal_p99_s", "<=", operator.le, 1.0),
    ("audit_verify_s", "<", operator.lt, 30.0),
    ("audit_verify_rss_growth", "<=", operator.le, 1.1),
]
TARGETS += fhir.TARGETS
TARGET_OF = {name: (sign, test, bound) for name, sign, test, bound in TARGETS}


def targets(figures: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "figure": name,
            "value": figures[name],
            "target": f"{sign} {bound}",
            "met": test(figures[name], bound),
        }
        for name, sign, test, bound in TARGETS
        if name in figures  # a run of one section has only its own
    ]


def verdict(figures: dict[str, Any], name: str) -> str:
    """``name``'s target and whether it is met, for the table."""
    if name not in TARGET_OF:
        return ""
    sign, test, bound = TARGET_OF[name]
    return f"target {sign} {bound:g}: {'met' if test(figures[name], bound) else 'MISSED'}"


def ratio(figures: dict[str, Any], name: str) -> str:
    """A ratio with the p10-p90 of its per-block ratios, and its target."""
    spread = f"({figures[name + '_p10']:.2f}-{figures[name + '_p90']:.2f})"
    return f"x{figures[name]:.2f} {spread} {verdict(figures, name)}"


def timed(figures: dict[str, Any], name: str) -> str:
    return f"{figures[name + '_us']:.0f} us [{figures[name + '_round_trips']}]"


Row = tuple[str, str, str, str, str]
"""A table row: the layer's operation, its figure, what it is compared with, that figure,
and the ratio with its target."""


def rows(results: dict[str, Any]) -> list[Row]:
    """The rows of a run's table, from the results ``main`` writes as JSON (the docs'
    performance page renders the same rows from a committed results file)."""
    f = results["figures"]
    o = results["options"]
    long, short = f"timeline_{o['long_history']}", f"timeline_{o['short_history']}"
    table: list[Row] = [
        (
            "patients.get, uncached (fresh unit)",
            timed(f, "get_uncached"),
            "psycopg2 autocommit SELECT by PK",
            timed(f, "raw_psycopg2_select"),
            ratio(f, "get_uncached_ratio"),
        ),
        (
            "  peer: ORM session.get, fresh Session",
            timed(f, "orm_get"),
            "psycopg2 autocommit SELECT by PK",
            "",
            ratio(f, "orm_get_ratio"),
        ),
        (
            "patients.get, cached (fresh unit)",
            timed(f, "get_cached"),
            "redis GET + json.loads",
            timed(f, "raw_redis_get_decode"),
            ratio(f, "get_cached_ratio"),
        ),
        (
            "  peer: SQLAlchemy dogpile recipe",
            timed(f, "recipe_get"),
            "redis GET + json.loads",
            "",
            ratio(f, "recipe_get_ratio"),
        ),
        (
            "  recipe / layer, cached",
            "",
            "",
            "",
            ratio(f, "recipe_vs_layer"),
        ),
        (
            "redis GET + open + json.loads",
            timed(f, "raw_redis_get_open_decode"),
            "redis GET + json.loads",
            "",
            ratio(f, "sealing_ratio"),
        ),
        (
            "patients.get, cache miss (fresh unit)",
            timed(f, "get_miss"),
            "SELECT + GET + SET",
            timed(f, "raw_miss"),
            ratio(f, "get_miss_ratio"),
        ),
        (
            "patients.create + commit (fresh unit)",
            timed(f, "create"),
            "psycopg2 INSERT + COMMIT",
            timed(f, "raw_insert_commit"),
            ratio(f, "create_ratio"),
        ),
        (
            "  peer: ORM add + commit",
            timed(f, "orm_create"),
            "psycopg2 INSERT + COMMIT",
            "",
            ratio(f, "orm_create_ratio"),
        ),
        (
            f"schedule_for ({f['schedule_appointments']}), cached",
            timed(f, "schedule_cached") + f" {f['schedule_cached_queries']} SQL",
            "schedule_for, uncached",
            timed(f, "schedule_uncached") + f" {f['schedule_uncached_queries']} SQL",
            f"{f['schedule_cached_speedup']:.1f}x faster "
            f"({f['schedule_cached_speedup_p10']:.1f}-{f['schedule_cached_speedup_p90']:.1f}) "
            + verdict(f, "schedule_cached_speedup"),
        ),
        (
            "schedule_view, cached",
            timed(f, "schedule_view_cached") + f" {f['schedule_view_cached_queries']} SQL",
            "schedule_for, uncached",
            timed(f, "schedule_uncached"),
            f"{f['schedule_view_speedup']:.1f}x faster "
            f"({f['schedule_view_speedup_p10']:.1f}-{f['schedule_view_speedup_p90']:.1f}) "
            + verdict(f, "schedule_view_speedup"),
        ),
        (
            "  schedule_view, cached",
            "",
            "schedule_view, uncached",
            timed(f, "schedule_view_uncached"),
            f"{f['schedule_view_cached_speedup']:.1f}x faster "
            f"({f['schedule_view_cached_speedup_p10']:.1f}"
            f"-{f['schedule_view_cached_speedup_p90']:.1f})",
        ),
        (
            f"timeline, {o['long_history']} encounters",
            f"{f[long + '_us']:.0f} us, {f[long + '_queries']} SQL",
            f"timeline, {o['short_history']} encounters",
            f"{f[short + '_us']:.0f} us, {f[short + '_queries']} SQL",
            f"x{f['timeline_growth']:.2f} " + verdict(f, "timeline_growth"),
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
            f"x{f['import_vs_copy']:.2f} of COPY " + verdict(f, "import_vs_copy"),
        ),
        (
            "  the server's floor: COPY of the layer's text",
            f"{f['import_floor_rows_per_s']:.0f} rows/s, {f['import_floor_mb']:.0f} MB",
            "psycopg2 COPY, same rows",
            f"x{f['import_floor_vs_copy']:.2f} of COPY",
            f"layer x{f['import_vs_floor']:.2f} of it, "
            f"{f['import_python_us_per_row']:.0f} us/row above it "
            + verdict(f, "import_python_us_per_row"),
        ),
        (
            f"export {f['export_rows']} patients (export)",
            f"{f['export_layer_s']:.2f} s, +{f['export_layer_peak_rss_growth_mb']:.1f} MB",
            "psycopg2 server-side cursor",
            f"{f['export_raw_s']:.2f} s, +{f['export_raw_peak_rss_growth_mb']:.1f} MB",
            f"x{f['export_vs_raw']:.2f} of raw " + verdict(f, "export_vs_raw"),
        ),
        (
            "  the same as entities (iterate)",
            f"{f['export_entities_s']:.2f} s, +{f['export_entities_peak_rss_growth_mb']:.1f} MB",
            "",
            "",
            f"x{f['export_entities_vs_raw']:.2f} of raw",
        ),
        (
            f"uncached gets, {f['scaling_threads']} threads",
            "",
            "one thread",
            "",
            f"x{f['scaling_vs_one_thread']:.2f} " + verdict(f, "scaling_vs_one_thread"),
        ),
        (
            "  peer: psycopg2 SELECT by PK, same threads",
            "",
            "one thread",
            "",
            f"x{f['raw_scaling_vs_one_thread']:.2f}",
        ),
        (
            "  ceiling: one thread's wall / CPU per get",
            "",
            "",
            "",
            f"x{f['scaling_ceiling']:.2f} (the interpreter lock)",
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
    table += [
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
            f"{f['audit_verify_s']:.1f} s, {f['audit_verify_events_per_s']:.0f}/s",
            f"in one process (x{f['audit_verify_processes']} workers)",
            f"{f['audit_verify_one_process_s']:.1f} s",
            f"x{f['audit_verify_vs_one_process']:.2f} faster, {verdict(f, 'audit_verify_s')}",
        ),
        (
            "  peak RSS: verifier + largest worker",
            f"{f['audit_verify_peak_rss_mb']:.0f} + {f['audit_verify_workers_peak_rss_mb']:.0f} MB",
            f"at {f['audit_verify_small_events']} events ({f['audit_verify_small_s']:.1f} s)",
            f"{f['audit_verify_small_peak_rss_mb']:.0f} + "
            f"{f['audit_verify_small_workers_peak_rss_mb']:.0f} MB",
            f"x{f['audit_verify_rss_growth']:.2f} {verdict(f, 'audit_verify_rss_growth')}",
        ),
        (
            "  generate (COPY) / seal all",
            f"{f['audit_generate_s']:.1f} s / {f['audit_seal_all_s']:.1f} s",
            "generated",
            f"{f['audit_generate_events_per_s']:.0f} events/s",
            "ok" if f["audit_verify_ok"] and f["audit_verify_small_ok"] else "FAILED",
        ),
    ]
    table += fhir.table_rows(f)
    return table


def print_table(
    results: dict[str, Any], rows_of: Callable[[dict[str, Any]], list[Row]] = rows
) -> None:
    o = results["options"]
    print(
        f"medians of {o['runs']} x {o['calls']} calls per contender, alternated; ratios: median"
        " (p10-p90) of per-block ratios; [round trips per operation]\n"
    )
    for row in rows_of(results):
        print(f"{row[0]:<40} {row[1]:>30} | {row[2]:<33} {row[3]:>26} | {row[4]}")
    print("\ntargets:")
    for target in results["targets"]:
        met = "met" if target["met"] else "MISSED"
        print(f"  {target['figure']:<34} {target['value']:>10.2f}  {target['target']:<8} {met}")
