"""Every write of a unit of work leaves audit events: names of fields, never values, each
with its HMAC under the audit key."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime

from sqlalchemy import select

from dr_assistant_data.protection.audit_key import audit_key_from, canonical
from dr_assistant_data.relational.audit.trail import event_content
from dr_assistant_data.relational.models import AuditEvent
from dr_assistant_data.testing import PatientFactory, PrescriptionFactory, bind_factories


def chain_rows(dl) -> list[AuditEvent]:
    with dl.unit_of_work(actor="test") as uow:
        return list(uow.session.scalars(select(AuditEvent).order_by(AuditEvent.seq)))


def as_row(event: AuditEvent) -> dict[str, object]:
    return {column.key: getattr(event, column.key) for column in AuditEvent.__table__.columns}


TEST_KEY = audit_key_from("", production=False)


def assert_chain_intact(rows: list[AuditEvent]) -> None:
    """Every event is signed with the key, and numbered once."""
    for event in rows:
        assert TEST_KEY.verifies("event", event_content(as_row(event)), event.row_hash)
    assert len({event.seq for event in rows}) == len(rows)


def test_create_update_delete_are_recorded_with_actor_and_correlation(dl):
    with dl.unit_of_work(actor="doctor-7", correlation_id="req-1") as uow, bind_factories(uow):
        patient = PatientFactory()
    with dl.unit_of_work(actor="doctor-7", correlation_id="req-2") as uow:
        uow.patients.update(patient.id, allergies=["penicillin"], blood_group="O-")
    with dl.unit_of_work(actor="admin-1", correlation_id="req-3") as uow:
        uow.patients.delete(patient.id)
    with dl.unit_of_work(actor="test") as uow:
        events = uow.audit.for_entity("patients", patient.id)
    assert [(e.action, e.actor, e.correlation_id) for e in events] == [
        ("create", "doctor-7", "req-1"),
        ("update", "doctor-7", "req-2"),
        ("delete", "admin-1", "req-3"),
    ]
    assert events[1].changed_fields == ["allergies", "blood_group"]
    assert "first_name" in events[0].changed_fields


def test_audit_events_hold_field_names_never_values(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient = PatientFactory(first_name="Gayatri", phone="+919876501234", mrn="MRN-AUD-1")
        uow.patients.update(patient.id, allergies=["sulfonamides"])
    stored = json.dumps([as_row(e) for e in chain_rows(dl)], default=str)
    for value in ("Gayatri", "9876501234", "MRN-AUD-1", "sulfonamides"):
        assert value not in stored


def test_child_rows_are_audited_with_their_parent(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        prescription = PrescriptionFactory()
    kinds = [event.entity_type for event in chain_rows(dl)]
    assert kinds.count("prescription_items") == 2
    assert kinds.count("prescriptions") == 1
    with dl.unit_of_work(actor="test") as uow:
        assert uow.audit.for_entity("prescriptions", str(prescription.id))[0].action == "create"


def test_reads_write_no_audit_events(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        patient = PatientFactory()
    before = len(chain_rows(dl))
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.get(patient.id)
        uow.patients.list()
    assert len(chain_rows(dl)) == before


def test_every_event_carries_the_hmac_of_its_content(dl):
    for _ in range(3):
        with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
            PatientFactory.create_batch(2)
    rows = chain_rows(dl)
    assert len(rows) == 6
    assert_chain_intact(rows)


def test_editing_an_event_invalidates_its_hmac(dl):
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        PatientFactory.create_batch(3)
    rows = chain_rows(dl)
    tampered = event_content(as_row(rows[1])) | {"actor": "someone-else"}
    assert not TEST_KEY.verifies("event", tampered, rows[1].row_hash)


def test_concurrent_commits_each_leave_their_signed_events(dl):
    start = threading.Barrier(4)
    failures: list[BaseException] = []

    def write() -> None:
        try:
            start.wait(timeout=10)
            for _ in range(5):
                with dl.unit_of_work(actor="worker") as uow, bind_factories(uow):
                    PatientFactory()
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    rows = chain_rows(dl)
    assert len(rows) == 20
    assert_chain_intact(rows)


def test_the_canonical_form_that_macs_cover_is_fixed_byte_for_byte():
    """Stored events, seals and checkpoints verify only while it stays the same: escaped
    non-ASCII and DEL, floats as ``repr``, datetimes with microseconds, keys sorted at every
    depth, tuples as lists (a faster encoder, ``orjson`` say, differs on each of these)."""
    content = {
        "actor": "Dr. Müller \u2013 医生 \x7f\n",
        "occurred_at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        "id": uuid.UUID(int=5),
        "floats": [1e16, 1e-07, 0.1, -0.0],
        "nested": {"z": (1, True, None), "a": {"y": [], "b": "x"}},
    }
    assert canonical(content) == (
        b'{"actor":"Dr. M\\u00fcller \\u2013 \\u533b\\u751f \\u007f\\n",'
        b'"floats":[1e+16,1e-07,0.1,-0.0],"id":"00000000-0000-0000-0000-000000000005",'
        b'"nested":{"a":{"b":"x","y":[]},"z":[1,true,null]},'
        b'"occurred_at":"2026-01-02T03:04:05.000000+00:00"}'
    )
