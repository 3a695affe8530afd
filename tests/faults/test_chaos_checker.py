"""The campaign's checker on small hand-written histories: each invariant is found broken
when it is, and a history that keeps them all passes."""

from __future__ import annotations

from typing import Any

from chaos.checker import Facts, check

PATIENT = "p1"


def op(op_id: str, kind: str, start: float, end: float | None, outcome: str, **fields: Any):
    return {"id": op_id, "kind": kind, "start": start, "end": end, "outcome": outcome, **fields}


def facts(**overrides: Any) -> Facts:
    values: dict[str, Any] = {
        "patients": {PATIENT: (2, "a")},
        "created": {},
        "initial_version": 1,
        "events": [("w-1", "patients", PATIENT, "update")],
        "chain_ok": True,
        "event_total": 0,
        "sealed_total": 0,
        "notes": {},
        "pending": 0,
        "recordings": {},
        "audio_files": set(),
        "chunk_files": set(),
    }
    return Facts(**{**values, **overrides})


WRITE = op("w-1", "write", 1.0, 2.0, "ok", key=PATIENT, value="a", version=2)


def violations(ops: list[dict[str, Any]], state: Facts, bound_ms: float = 0.0) -> dict:
    return {k: len(v) for k, v in check(ops, state, stale_bound_ms=bound_ms).violations.items()}


def test_a_history_that_keeps_every_invariant_passes():
    read = op("r-1", "read", 3.0, 3.1, "ok", key=PATIENT, version=2)
    assert not check([WRITE, read], facts(), stale_bound_ms=0).failed


def test_a_read_older_than_an_acknowledged_write_is_a_stale_read_with_its_width():
    read = op("r-1", "read", 2.5, 2.6, "ok", key=PATIENT, version=1)
    verdict = check([WRITE, read], facts(), stale_bound_ms=0)
    assert len(verdict.violations["stale_read"]) == 1
    assert round(verdict.max_stale_ms) == 500


def test_a_stale_read_within_the_stated_bound_is_measured_but_tolerated():
    read = op("r-1", "read", 2.5, 2.6, "ok", key=PATIENT, version=1)
    verdict = check([WRITE, read], facts(), stale_bound_ms=600)
    assert not verdict.failed
    assert verdict.stale_reads == 1


def test_a_doctors_day_that_showed_a_patient_older_than_an_acknowledged_write_is_stale():
    day = op("d-1", "read_day", 2.5, 2.6, "ok", key="doctor", seen={PATIENT: 1})
    assert violations([WRITE, day], facts())["stale_read"] == 1
    fresh = {**day, "start": 3.0, "seen": {PATIENT: 2}}
    assert not check([WRITE, fresh], facts(), stale_bound_ms=0).failed


def test_a_read_that_began_before_the_write_returned_may_see_the_old_version():
    read = op("r-1", "read", 1.5, 2.6, "ok", key=PATIENT, version=1)
    assert not check([WRITE, read], facts(), stale_bound_ms=0).failed


def test_a_write_whose_caller_saw_an_error_but_that_committed_makes_older_reads_stale():
    unknown = {**WRITE, "outcome": "unknown", "version": None}
    read = op("r-1", "read", 3.0, 3.1, "ok", key=PATIENT, version=1)
    assert violations([unknown, read], facts())["stale_read"] == 1


KILLED_WRITE = op("w-1", "write", 1.0, None, "unknown", key=PATIENT, value="a", process="w")
KILLED = op("w-killed", "writer_killed", 1.2, 1.2, "ok", process="w")


def test_the_old_value_read_after_a_writer_died_before_delivering_is_measured_from_its_death():
    late = op("r-1", "read", 1.5, 1.6, "ok", key=PATIENT, version=1, process="r")
    fresh = op("r-2", "read", 1.7, 1.8, "ok", key=PATIENT, version=2, process="r")
    verdict = check([KILLED_WRITE, KILLED, late, fresh], facts(), stale_bound_ms=0)
    assert [round(width) for width in verdict.kill_windows_ms] == [300]
    assert not verdict.failed


def test_an_old_value_read_beyond_the_bound_after_a_writer_died_is_a_stale_read():
    late = op("r-1", "read", 2.5, 2.6, "ok", key=PATIENT, version=1, process="r")
    verdict = check(
        [KILLED_WRITE, KILLED, late], facts(), stale_bound_ms=0, kill_window_bound_ms=1000
    )
    assert len(verdict.violations["stale_read"]) == 1


def test_an_acknowledged_write_the_row_does_not_hold_is_a_lost_write():
    assert violations([WRITE], facts(patients={PATIENT: (2, "b")}))["lost_write"] == 1


def test_an_acknowledged_write_without_its_audit_event_breaks_the_audit_invariant():
    state = facts(events=[], patients={PATIENT: (1, None)})
    assert violations([WRITE], state)["audit"] >= 1


def test_a_refused_write_with_an_audit_event_breaks_the_audit_invariant():
    refused = {**WRITE, "outcome": "fail"}
    assert violations([refused], facts())["audit"] == 1


ALLERGY_ROWS = [("w-1", "allergies", "a1", "insert"), ("w-1", "allergies", "a0", "update")]


def test_the_allergy_rows_a_write_keeps_in_step_are_audited_beside_its_own_event():
    state = facts(events=[("w-1", "patients", PATIENT, "update"), *ALLERGY_ROWS])
    assert violations([WRITE], state)["audit"] == 0


def test_allergy_events_of_a_refused_write_break_the_audit_invariant():
    refused = {**WRITE, "outcome": "fail"}
    state = facts(events=ALLERGY_ROWS, patients={PATIENT: (1, None)})
    assert violations([refused], state)["audit"] == 1


def test_allergy_events_without_their_patient_s_event_break_the_audit_invariant():
    unknown = {**WRITE, "outcome": "unknown"}
    state = facts(events=ALLERGY_ROWS, patients={PATIENT: (1, None)})
    assert violations([unknown], state)["audit"] == 1


def test_a_note_whose_unit_committed_must_exist_with_its_last_committed_content():
    create = op("n-1", "note_create", 1.0, 2.0, "ok", key="note", value="first")
    update = op("n-2", "note_update", 3.0, 4.0, "unknown", key="note", value="second")
    events = [
        ("n-1", "clinical_notes", "note", "create"),
        ("n-2", "clinical_notes", "note", "update"),
    ]
    base = {"events": events, "patients": {}}
    assert violations([create, update], facts(**base, notes={"note": "first"}))["documents"] == 1
    assert violations([create, update], facts(**base, notes={}))["documents"] == 1
    assert violations([create, update], facts(**base, notes={"note": "second"}))["documents"] == 0


def test_a_note_whose_unit_did_not_commit_must_be_gone_after_the_sweep():
    create = op("n-1", "note_create", 1.0, 2.0, "unknown", key="note", value="first")
    state = facts(events=[], patients={}, notes={"note": "first"})
    assert violations([create], state)["documents"] == 1


def test_gridfs_chunks_without_their_file_are_orphans():
    state = facts(patients={}, events=[], chunk_files={"audio"})
    assert violations([], state)["gridfs"] == 1


def test_a_driver_exception_out_of_the_layer_is_a_raw_error():
    leaked = op("w-1", "write", 1.0, 2.0, "fail", error="sqlalchemy.exc.OperationalError")
    refused = op("w-2", "write", 1.0, 2.0, "fail", error="ConflictError")
    state = facts(events=[], patients={})
    assert violations([leaked, refused], state)["raw_error"] == 1


def test_a_sealed_total_that_differs_from_the_events_stored_is_a_violation():
    verdict = check([WRITE], facts(event_total=1, sealed_total=2), stale_bound_ms=0)
    assert verdict.violations["audit"] == ["1 audit events, 2 sealed"]


NEW = "p9"
CREATE = op("c-1", "create", 1.0, 2.0, "ok", key=NEW, value="w1-c1")
CREATED = facts(
    created={"w1-c1": NEW},
    events=[*facts().events, ("c-1", "patients", NEW, "create")],
)


def test_an_acknowledged_create_read_before_and_after_it_returned_passes():
    before = op("r-1", "read", 1.5, 1.6, "ok", key=NEW, uncommitted="c-1")
    after = op("r-2", "read", 2.5, 2.6, "ok", key=NEW, version=1)
    assert not check([WRITE, CREATE, before, after], CREATED, stale_bound_ms=0).failed


def test_an_acknowledged_create_whose_patient_does_not_exist_is_a_lost_write():
    state = facts(events=CREATED.events)
    found = violations([WRITE, CREATE], state)
    assert found["lost_write"] == 1
    assert found["audit"] == 1  # and its event has no row


def test_an_acknowledged_create_whose_caller_was_given_another_id_is_a_lost_write():
    given = {**CREATE, "key": "p8"}
    assert violations([WRITE, given], CREATED)["lost_write"] == 1


def test_an_acknowledged_create_without_its_audit_event_breaks_the_audit_invariant():
    state = facts(created={"w1-c1": NEW})
    assert violations([WRITE, CREATE], state)["audit"] >= 1
    twice = facts(
        created={"w1-c1": NEW}, events=[*CREATED.events, ("c-1", "patients", NEW, "create")]
    )
    assert violations([WRITE, CREATE], twice)["audit"] >= 1


def test_a_create_that_raised_exists_exactly_when_its_audit_event_does():
    for outcome in ("unknown", "fail"):
        raised = {**CREATE, "outcome": outcome}
        nothing = facts()
        assert violations([WRITE, raised], nothing)["audit"] == 0
        row_alone = facts(created={"w1-c1": NEW})
        assert violations([WRITE, raised], row_alone)["audit"] == 1
        event_alone = facts(events=CREATED.events)
        assert violations([WRITE, raised], event_alone)["audit"] >= 1
    unknown = {**CREATE, "outcome": "unknown"}
    assert violations([WRITE, unknown], CREATED)["audit"] == 0
    refused = {**CREATE, "outcome": "fail"}
    assert violations([WRITE, refused], CREATED)["audit"] == 1  # committed though refused


def test_a_create_killed_before_its_id_was_recorded_is_found_by_its_value():
    killed = {k: v for k, v in CREATE.items() if k != "key"} | {"outcome": "unknown", "end": None}
    assert violations([WRITE, killed], CREATED)["audit"] == 0
    assert violations([WRITE, killed], facts(created={"w1-c1": NEW}))["audit"] == 1


def test_no_patient_found_after_its_create_returned_is_a_stale_absence_whatever_the_bound():
    absent = op("r-1", "read", 2.5, 2.6, "ok", key=NEW)
    verdict = check([WRITE, CREATE, absent], CREATED, stale_bound_ms=10_000)
    assert len(verdict.violations["stale_read"]) == 1
    assert "found no patient" in verdict.violations["stale_read"][0]


def test_no_patient_found_after_a_create_that_committed_though_its_caller_saw_an_error():
    unknown = {**CREATE, "outcome": "unknown"}
    absent = op("r-1", "read", 2.5, 2.6, "ok", key=NEW)
    assert violations([WRITE, unknown, absent], CREATED)["stale_read"] == 1
    assert violations([WRITE, unknown, absent], facts())["stale_read"] == 0  # never committed


def test_a_patient_found_by_another_unit_before_its_create_committed_is_a_dirty_read():
    dirty = op("r-1", "read", 1.5, 1.6, "ok", key=NEW, version=1, uncommitted="c-1")
    found = check([WRITE, CREATE, dirty], CREATED, stale_bound_ms=0).violations["stale_read"]
    assert found == ["r-1 found patient p9 before c-1 committed"]
