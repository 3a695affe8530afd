"""A patient's allergy list: structured rows, with the list of names kept in step.

The design: an ``allergies`` table (``models/chart.py``), one row per allergy, with its
repository (``uow.allergies``), rather than structured entries in the ``patients.allergies``
JSON list. Each allergy is a record of its own that other systems name (an
AllergyIntolerance id), that is audited, and that is corrected by its own status
(``entered_in_error``, ``refuted``, ``resolved``) without rewriting a patient's whole
list; and the names list existing callers read, write, bulk-insert, filter and cache
keeps its type, so none of them changes.

``Patient.allergies`` stays the list of names of the patient's *active* allergies
(``Allergy.is_active``: clinically active, neither refuted nor entered in error), and this
module keeps it so in the flush that changes either side (a ``before_flush`` listener,
``session.py``), so both are committed together or not at all:

* a row added, changed or deleted: the patient's list is rebuilt from the rows (names it
  held keep their place, newly active ones are appended, inactive ones leave);
* the list written by a caller (``patient.allergies.append("latex")``, ``update(...,
  allergies=[...])``, a new patient): a name with no active row gets one (active, not
  verified), and an active row whose name left the list becomes ``inactive``.

Whenever the names change, the patient row is written with them, so its cached entry and
every read that holds it are invalidated by the one mechanism that serves every patient
write (``cache_invalidation``), after the commit, and its ``version`` moves (an edit made on
an older copy of the chart is a conflict). A change that leaves the names as they were (a
criticality, a reaction) leaves the patient alone: the allergy rows are not cached. Rows
written without the flush (``create_many``) are kept in step by their repository
(``rebuild_lists``, ``record_listed_in_bulk``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from itertools import chain
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.orm import Session

from . import bulk
from .models import Allergy, Patient
from .rules import validation as rules

CHUNK = 1000
"""Patients read per query after a bulk insert."""


def keep_allergy_lists(session: Session, _context: Any, _instances: Any) -> None:
    """Bring each patient's names list and allergy rows in step (see the module)."""
    listed = [
        row
        for row in chain(session.new, session.dirty)
        if isinstance(row, Patient) and inspect(row).attrs.allergies.history.has_changes()
    ]
    for patient in listed:
        _record_listed(session, patient)
    owners = (
        _owner(session, row)
        for row in chain(session.new, session.dirty, session.deleted)
        if isinstance(row, Allergy)
    )
    changed = {id(owner): owner for owner in owners if owner is not None}
    for owner in changed.values():
        if not any(owner is each for each in listed):
            _summarize(session, owner)


def rebuild_lists(session: Session, patient_ids: Iterable[uuid.UUID]) -> None:
    """Rebuild the names lists of ``patient_ids`` after their rows were inserted without
    a flush; the changed patients are flushed (and invalidated) as any write."""
    for patient_id in set(patient_ids):
        owner = _patient(session, patient_id)
        if owner is not None:
            _summarize(session, owner)
    session.flush()


def record_listed_in_bulk(session: Session, patient_ids: Sequence[uuid.UUID]) -> None:
    """Give patients just inserted without a flush (``create_many``) an allergy row per
    name they list: one query per ``CHUNK`` patients, read as the rows are written by one
    bulk insert (so a large import's are encoded by its workers). New patients have no
    rows to reconcile, so nothing else is read."""

    def rows() -> Iterator[dict[str, Any]]:
        for start in range(0, len(patient_ids), CHUNK):
            chunk = patient_ids[start : start + CHUNK]
            statement = select(Patient.id, Patient.allergies).where(
                Patient.id.in_(chunk),
                Patient.allergies != [],  # the others have nothing to add
            )
            for patient_id, names in session.execute(statement):
                for name in names or []:
                    yield {"patient_id": patient_id, "substance": name, "clinical_status": "active"}

    bulk.create_many(session, Allergy, rows(), all_or_nothing=True)


def _record_listed(session: Session, patient: Patient) -> None:
    """The names list as written: rows follow it."""
    names = list(patient.allergies or [])
    rows = _rows_of(session, patient)
    for row in rows:
        if row.is_active and row.substance not in names:
            row.clinical_status = "inactive"
    _add_rows(session, patient, names, {row.substance for row in rows if row.is_active})


def _summarize(session: Session, patient: Patient) -> None:
    """The rows as written: the names list follows them. A listed name no row records at
    all (written before the rows existed, or by a bulk insert) gets its row first, so it is
    never dropped unseen."""
    current = list(patient.allergies or [])
    every = _rows_of(session, patient, with_deleted=True)  # a name deleted now stays gone
    rows = [row for row in every if row not in session.deleted]
    rows += _add_rows(session, patient, current, {row.substance for row in every})
    active = list(dict.fromkeys(row.substance for row in rows if row.is_active))
    kept = [name for name in current if name in active]
    rebuilt = kept + [name for name in active if name not in kept]
    if rebuilt != current:
        patient.allergies = rebuilt


def _add_rows(
    session: Session, patient: Patient, names: list[str], recorded: set[str]
) -> list[Allergy]:
    """An active, unverified row for each of ``names`` not in ``recorded``."""
    added = []
    for name in names:
        if name not in recorded:
            row = Allergy(patient=patient, substance=name, clinical_status="active", reactions=[])
            rules.validate(row, changed=None)
            session.add(row)
            added.append(row)
    return added


def _rows_of(session: Session, patient: Patient, *, with_deleted: bool = False) -> list[Allergy]:
    """The patient's allergy rows as this flush will leave them (and those it deletes,
    ``with_deleted``), oldest first."""
    stored: list[Allergy] = []
    if patient.id is not None:
        statement = (
            select(Allergy)
            .where(Allergy.patient_id == patient.id)
            .order_by(Allergy.created_at, Allergy.id)
        )
        stored = list(session.scalars(statement))
    pending = [
        row
        for row in session.new
        if isinstance(row, Allergy)
        and (row.patient is patient or (patient.id is not None and row.patient_id == patient.id))
    ]
    rows = list(dict.fromkeys(chain(stored, pending)))
    return rows if with_deleted else [row for row in rows if row not in session.deleted]


def _owner(session: Session, row: Allergy) -> Patient | None:
    if row.patient is not None:
        return row.patient
    if row.patient_id is None:
        return None  # refused as incomplete by validation
    return _patient(session, row.patient_id)


def _patient(session: Session, patient_id: uuid.UUID) -> Patient | None:
    return session.get(Patient, patient_id, execution_options={"include_deleted": True})
