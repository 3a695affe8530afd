"""The invariants, checked over the whole history once the campaign has ended and the
documents have been swept.

Which writes committed is decided from PostgreSQL, never from what the caller was told:
every unit of work of the campaign carries its operation id as correlation id, and the
audit trail is written in the same transaction as the change, so an operation committed
exactly when an audit event bears its id (the audit invariant below checks that the trail
itself is right: one event per acknowledged write, none for a refused one, as many per
patient as its version went up, and a chain that verifies). Commit order is the patient's
``version`` (optimistic locking: one increment per committed update); a create made the
initial version.
"""

from __future__ import annotations

import bisect
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

INVARIANTS = ("stale_read", "lost_write", "audit", "documents", "gridfs", "raw_error")
NOTE_CONTENT = {"note_create", "note_update", "note_amend"}
DOCUMENT_WRITES = {*NOTE_CONTENT, "note_sign", "recording", "recording_broken"}
PATIENT_WRITES = {"write", "create"}
AUDITED = {*PATIENT_WRITES, *DOCUMENT_WRITES}
COMPANIONS = {"allergies"}
"""Entities audited beside a write's own record under its correlation id: the allergy rows
a patient's names list is kept in step with (``relational/allergy_list.py``)."""
KILL_WINDOW_BOUND_MS = 1000.0
"""How long after a writer died between its COMMIT and its cache delivery other processes
may still read the version from before its write (the outbox janitor's window)."""
CAMPAIGN_ERRORS = {"chaos.notes.UploadInterrupted"}
"""Exceptions the campaign raises itself (a caller's own error passes through the layer)."""


@dataclass
class Facts:
    """The final state of the stores, read after the sweep."""

    patients: dict[str, tuple[int, str | None]]
    """patient id → (version, allergy value)"""
    created: dict[str, str]
    """last name → id of each patient the workers created (a create's last name is its
    operation's unique value)"""
    initial_version: int
    events: list[tuple[str, str, str, str]]
    """(correlation id, entity type, entity id, action) of every audit event, in chain order"""
    chain_ok: bool
    """the log verifies against the latest checkpoint, every event sealed"""
    event_total: int
    sealed_total: int
    """events stored, and events counted by the last seal (one per event: none missing,
    none sealed twice)"""
    notes: dict[str, str | None]
    """note id → content token"""
    pending: int
    """documents still marked by an unfinished unit of work"""
    recordings: dict[str, str]
    """recording id → its audio file id"""
    audio_files: set[str]
    chunk_files: set[str]
    """file ids that GridFS chunks belong to"""


@dataclass
class Verdict:
    violations: dict[str, list[str]] = field(default_factory=lambda: {k: [] for k in INVARIANTS})
    stale_reads: int = 0
    max_stale_ms: float = 0.0
    kill_windows_ms: list[float] = field(default_factory=list)
    """For each writer killed between its COMMIT and its cache delivery: how long after it
    died other processes still read the version from before its write (0: never)."""

    @property
    def failed(self) -> bool:
        return any(self.violations.values())


def check(
    ops: list[dict[str, Any]],
    facts: Facts,
    *,
    stale_bound_ms: float,
    kill_window_bound_ms: float = KILL_WINDOW_BOUND_MS,
) -> Verdict:
    verdict = Verdict()
    by_correlation = defaultdict(list)
    for correlation, entity_type, entity_id, action in facts.events:
        by_correlation[correlation].append((entity_type, entity_id, action))
    versions = _committed_versions(facts)
    reads = [*ops, *_patients_of_days(ops)]
    _stale_reads(reads, versions, verdict, stale_bound_ms)
    _windows_after_kills(reads, versions, verdict, kill_window_bound_ms)
    _lost_writes(ops, facts, versions, verdict)
    _audit(ops, facts, by_correlation, verdict)
    _creates(ops, facts, by_correlation, verdict)
    _documents(ops, facts, by_correlation, verdict)
    _gridfs(facts, verdict)
    _raw_errors(ops, verdict)
    return verdict


def committed(op: dict[str, Any], by_correlation: dict[str, list[Any]]) -> bool:
    return op["outcome"] == "ok" or (op["outcome"] == "unknown" and bool(by_correlation[op["id"]]))


def _patients_of_days(ops: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A doctor's day read (``read_day``, one cache entry holding the patients too) is a
    read of each patient it showed, at the same moment, of the version it showed."""
    return [
        {**op, "id": f"{op['id']}:{patient}", "kind": "read", "key": patient, "version": version}
        for op in ops
        if op["kind"] == "read_day"
        for patient, version in (op.get("seen") or {}).items()
    ]


def _committed_versions(facts: Facts) -> dict[str, int]:
    """The version each committed patient write made, by correlation id: a create made
    version ``initial``, the n-th update event of a patient in chain order version
    ``initial + n`` (the audit invariant checks that the counts agree)."""
    made: dict[str, int] = {}
    count: Counter[str] = Counter()
    for correlation, entity_type, entity_id, action in facts.events:
        if entity_type == "patients" and action == "create":
            made[correlation] = facts.initial_version
        elif entity_type == "patients" and action == "update":
            count[entity_id] += 1
            made[correlation] = facts.initial_version + count[entity_id]
    return made


def _stale_reads(
    ops: list[dict[str, Any]], versions: dict[str, int], verdict: Verdict, bound_ms: float
) -> None:
    """A read that began after a committed write or create returned to its caller
    (acknowledged, or with an error though it had committed) must see that write's version
    or a later one; one that found no patient after its create returned is stale whatever
    the bound (absence is never cached)."""
    writes: dict[str, list[tuple[float, int, str]]] = defaultdict(list)
    for op in ops:
        if op["kind"] in PATIENT_WRITES and op["end"] is not None and op["id"] in versions:
            writes[op["key"]].append((op["end"], versions[op["id"]], op["outcome"]))
    for key in writes:
        writes[key].sort()
    highest = {
        key: _running_max([version for _, version, _ in done]) for key, done in writes.items()
    }
    for op in ops:
        if op["kind"] != "read" or op["outcome"] != "ok" or op["key"] not in writes:
            continue
        done = writes[op["key"]]
        before = bisect.bisect_left(done, (op["start"],))
        seen = op.get("version") or 0
        if before == 0 or highest[op["key"]][before - 1] <= seen:
            continue
        end, version, outcome = done[bisect.bisect_right(highest[op["key"]], seen)]
        width_ms = (op["start"] - end) * 1000
        verdict.stale_reads += 1
        verdict.max_stale_ms = max(verdict.max_stale_ms, width_ms)
        if width_ms > bound_ms or not seen:
            told = "acknowledged" if outcome == "ok" else "committed (its caller saw an error)"
            saw = f"read version {seen}" if seen else "found no patient"
            verdict.violations["stale_read"].append(
                f"{op['id']} {saw} {width_ms:.0f} ms after version {version} was {told}"
            )


def _windows_after_kills(
    ops: list[dict[str, Any]], versions: dict[str, int], verdict: Verdict, bound_ms: float
) -> None:
    """A writer killed after its COMMIT never returned, so reads after it are not stale by
    ``_stale_reads``; but from the moment it died its write was committed: a read that
    began later and saw an older version is in the window, which must stay in the bound."""
    writes: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for op in ops:
        if op["kind"] == "write" and op["id"] in versions:
            writes[op.get("process", "")].append(op)
    for op in (op for op in ops if op["kind"] == "writer_killed"):
        died = op["start"]
        before = [write for write in writes[op["process"]] if write["start"] <= died]
        if not before:
            continue
        write = max(before, key=lambda each: each["start"])
        version, widest = versions[write["id"]], 0.0
        for read in ops:
            late = read["kind"] == "read" and read["outcome"] == "ok" and read["start"] > died
            if late and read["key"] == write["key"] and (read.get("version") or 0) < version:
                width_ms = (read["start"] - died) * 1000
                widest = max(widest, width_ms)
                if width_ms > bound_ms:
                    verdict.violations["stale_read"].append(
                        f"{read['id']} read version {read.get('version')} {width_ms:.0f} ms "
                        f"after the writer of version {version} died before delivering it"
                    )
        verdict.kill_windows_ms.append(widest)


def _running_max(values: list[int]) -> list[int]:
    out, top = [], 0
    for value in values:
        top = max(top, value)
        out.append(top)
    return out


def _lost_writes(
    ops: list[dict[str, Any]], facts: Facts, versions: dict[str, int], verdict: Verdict
) -> None:
    """Every acknowledged write made the version its caller was given (no two share one),
    and the row holds the newest committed write's value."""
    found = verdict.violations["lost_write"]
    newest: dict[str, tuple[int, dict[str, Any]]] = {}
    for op in ops:
        if op["kind"] != "write" or op["id"] not in versions:
            continue
        version = versions[op["id"]]
        if op["outcome"] == "ok" and op["version"] != version:
            found.append(f"{op['id']} was told version {op['version']}, committed {version}")
        if version > newest.get(op["key"], (0, {}))[0]:
            newest[op["key"]] = (version, op)
    for patient, (version, op) in newest.items():
        if facts.patients[patient] != (version, op["value"]):
            found.append(f"patient {patient} does not hold {op['id']} (version {version})")
    for op in ops:
        if op["kind"] == "write" and op["outcome"] == "ok" and op["id"] not in versions:
            found.append(f"{op['id']} was acknowledged and never committed")


def _audit(
    ops: list[dict[str, Any]],
    facts: Facts,
    by_correlation: dict[str, list[Any]],
    verdict: Verdict,
) -> None:
    found = verdict.violations["audit"]
    for op in ops:
        if op["kind"] not in AUDITED:
            continue
        events = by_correlation[op["id"]]
        own = sum(entity_type not in COMPANIONS for entity_type, _, _ in events)
        expected = {"ok": (1,), "fail": (0,), "unknown": (0, 1)}[op["outcome"]]
        if own not in expected or (events and not own):
            found.append(f"{op['id']} ({op['outcome']}) has {own} of {len(events)} audit events")
    updates = Counter(
        entity_id
        for _, entity_type, entity_id, action in facts.events
        if entity_type == "patients" and action == "update"
    )
    for patient, (version, _) in facts.patients.items():
        if updates[patient] != version - facts.initial_version:
            found.append(
                f"patient {patient}: {updates[patient]} update events for "
                f"{version - facts.initial_version} committed versions"
            )
    if not facts.chain_ok:
        found.append("the audit log does not verify against its latest checkpoint")
    if facts.sealed_total != facts.event_total:
        found.append(f"{facts.event_total} audit events, {facts.sealed_total} sealed")


def _creates(
    ops: list[dict[str, Any]],
    facts: Facts,
    by_correlation: dict[str, list[Any]],
    verdict: Verdict,
) -> None:
    """An acknowledged create's patient exists, under the id its caller was given; a
    created patient exists exactly when the create's audit event does, whatever its caller
    was told: the row and its event commit together or not at all. No other unit of work
    finds the patient before its create commits."""
    for op in ops:
        if op["kind"] == "read" and op.get("uncommitted") and op.get("version") is not None:
            verdict.violations["stale_read"].append(
                f"{op['id']} found patient {op['key']} before {op['uncommitted']} committed"
            )
        if op["kind"] != "create":
            continue
        row = facts.created.get(op["value"])
        events = [
            entity_id
            for entity_type, entity_id, action in by_correlation[op["id"]]
            if entity_type == "patients" and action == "create"
        ]
        if op["outcome"] == "ok" and row is None:
            verdict.violations["lost_write"].append(f"{op['id']} was acknowledged, no patient")
        elif row is not None and op.get("key", row) != row:
            verdict.violations["lost_write"].append(
                f"{op['id']} was given patient {op['key']}, created {row}"
            )
        if events != ([row] if row is not None else []):
            verdict.violations["audit"].append(
                f"{op['id']} ({op['outcome']}): patient {row}, create events for {events}"
            )


def _documents(
    ops: list[dict[str, Any]],
    facts: Facts,
    by_correlation: dict[str, list[Any]],
    verdict: Verdict,
) -> None:
    """The notes and recordings that exist are those whose unit committed, with their
    last committed content; nothing is left pending after the sweep."""
    found = verdict.violations["documents"]
    expected_notes: dict[str, str] = {}
    expected_recordings: set[str] = set()
    for op in sorted(ops, key=lambda o: o["start"]):
        if op["kind"] not in DOCUMENT_WRITES or not committed(op, by_correlation):
            continue
        entity = {entity_id for _, entity_id, _ in by_correlation[op["id"]]}
        document = op.get("key") or next(iter(entity), None)
        if document is None:
            continue
        if op["kind"].startswith("recording"):
            expected_recordings.add(document)
        elif op["kind"] in NOTE_CONTENT:
            expected_notes[document] = op["value"]
    for note, token in expected_notes.items():
        if note not in facts.notes:
            found.append(f"note {note} committed in PostgreSQL is missing")
        elif facts.notes[note] != token:
            found.append(f"note {note} lost its last committed content")
    for note in facts.notes.keys() - expected_notes.keys():
        found.append(f"note {note} exists though its unit of work did not commit")
    for recording in expected_recordings - facts.recordings.keys():
        found.append(f"recording {recording} committed in PostgreSQL is missing")
    for recording in facts.recordings.keys() - expected_recordings:
        found.append(f"recording {recording} exists though its unit of work did not commit")
    if facts.pending:
        found.append(f"{facts.pending} documents still pending after the sweep")


def _gridfs(facts: Facts, verdict: Verdict) -> None:
    found = verdict.violations["gridfs"]
    for file_id in facts.chunk_files - facts.audio_files:
        found.append(f"chunks of audio file {file_id} without its file document")
    for file_id in facts.audio_files - set(facts.recordings.values()):
        found.append(f"audio file {file_id} without a recording")


def _raw_errors(ops: list[dict[str, Any]], verdict: Verdict) -> None:
    """Only the contract's errors come out of the layer: never a driver's exception."""
    for op in ops:
        error = op.get("error")
        if error and "." in error and error not in CAMPAIGN_ERRORS:
            verdict.violations["raw_error"].append(f"{op['id']} ({op['kind']}) raised {error}")
