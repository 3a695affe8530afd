"""The campaign's summary: operations by kind and outcome, faults by kind, violations by
invariant (with a few examples each), printed as a table or written as JSON."""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any

from .checker import INVARIANTS, Verdict

OUTCOMES = ("ok", "fail", "unknown")
EXAMPLES = 5


def summary(ops: list[dict[str, Any]], verdict: Verdict, fault_errors: list[str]) -> dict[str, Any]:
    operations: dict[str, Counter[str]] = defaultdict(Counter)
    faults: Counter[str] = Counter()
    for op in ops:
        if op["kind"].startswith("fault:"):
            faults[op["kind"].removeprefix("fault:")] += 1
        elif op["kind"] != "writer_killed":  # a mark for the checker, not an operation
            operations[op["kind"]][op["outcome"]] += 1
    return {
        "operations": {kind: dict(counts) for kind, counts in sorted(operations.items())},
        "operations_total": sum(sum(c.values()) for c in operations.values()),
        "faults": dict(sorted(faults.items())),
        "faults_total": sum(faults.values()),
        "fault_errors": fault_errors,
        "violations": {name: len(verdict.violations[name]) for name in INVARIANTS},
        "examples": {name: verdict.violations[name][:EXAMPLES] for name in INVARIANTS},
        "stale_reads": verdict.stale_reads,
        "max_stale_ms": round(verdict.max_stale_ms, 1),
        "writers_killed_after_commit": len(verdict.kill_windows_ms),
        "max_window_after_kill_ms": round(max(verdict.kill_windows_ms, default=0.0), 1),
        "windows_after_kill_ms": [round(width, 1) for width in verdict.kill_windows_ms],
        "passed": not verdict.failed,
    }


def print_table(results: dict[str, Any]) -> None:
    print(f"\n{'operations':<24}" + "".join(f"{o:>9}" for o in OUTCOMES))
    for kind, counts in results["operations"].items():
        print(f"  {kind:<22}" + "".join(f"{counts.get(o, 0):>9}" for o in OUTCOMES))
    print(f"  {'total':<22}{results['operations_total']:>9}")
    print(f"\n{'faults injected':<24}{'count':>9}")
    for kind, count in results["faults"].items():
        print(f"  {kind:<22}{count:>9}")
    print(f"  {'total':<22}{results['faults_total']:>9}")
    for error in results["fault_errors"][:EXAMPLES]:
        print(f"  (could not inject) {error}")
    print(f"\n{'violations':<24}{'count':>9}")
    for name, count in results["violations"].items():
        print(f"  {name:<22}{count:>9}")
        for example in results["examples"][name]:
            print(f"      {example}")
    print(
        f"\nstale reads seen: {results['stale_reads']}, "
        f"widest {results['max_stale_ms']} ms after the newer write returned"
    )
    print(
        f"writers killed between COMMIT and delivery: {results['writers_killed_after_commit']}, "
        f"old value read up to {results['max_window_after_kill_ms']} ms after one died"
    )
    print("PASSED: no violation" if results["passed"] else "FAILED: invariants violated")
