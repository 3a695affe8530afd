"""Hostile input through every public parameter that reaches SQL: each value is either
refused with a ``ValidationError`` naming the field, or treated as plain data; nothing is
written by a refused call, and what is written reads back literally."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import patient_fields
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from dr_assistant_data import DataLayer
from dr_assistant_data.errors import NotFoundError, ValidationError
from dr_assistant_data.relational.models import AuditEvent, Patient
from dr_assistant_data.relational.repositories.people import PatientRepository
from dr_assistant_data.relational.unit_of_work import UnitOfWork

HOSTILE = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)

INJECTIONS = st.sampled_from(
    [
        "' OR '1'='1",
        "'; DROP TABLE patients; --",
        "1; DELETE FROM audit_events",
        '" OR 1=1 --',
        "Robert'); DROP TABLE patients;--",
        "' UNION SELECT password_hash FROM users --",
        "%",
        "_",
        "%_%",
        "\\",
        "\\%",
        "last_name; DROP TABLE patients",
        "-last_name, (SELECT 1)",
        '{"$gt": ""}',
        "$where",
        "a.b",
        "\x00",
        "caf\udce9",
    ]
)
OVERSIZED = st.integers(min_value=101, max_value=70_000).map(lambda n: "x" * n)
ANY_TEXT = st.text(st.characters(codec=None, categories=None), max_size=60)
TEXTS = st.one_of(INJECTIONS, ANY_TEXT, OVERSIZED)
WRONG_TYPES = st.one_of(
    st.integers(),
    st.floats(allow_nan=True),
    st.booleans(),
    st.binary(max_size=20),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.sampled_from(["$gt", "$ne", "a"]), st.integers(), max_size=2),
)
ANYTHING = st.one_of(TEXTS, WRONG_TYPES, st.none())
FILTER_KEYS = st.one_of(st.sampled_from(sorted(PatientRepository.filterable)), TEXTS)


def counts(dl: DataLayer) -> tuple[int, int, int]:
    """Patients, audit events and clinical notes stored."""
    with dl.engine.connect() as connection:
        return (
            connection.scalar(select(func.count()).select_from(Patient)),
            connection.scalar(select(func.count()).select_from(AuditEvent)),
            dl.documents.db["clinical_notes"].count_documents({}),
        )


def refused_or_result(dl: DataLayer, call: Callable[[UnitOfWork], Any], fields: set[str]) -> Any:
    """Run ``call`` in a unit of work: a refusal must name one of ``fields`` and write
    nothing. Returns the result, or ``None`` when refused."""
    before = counts(dl)
    try:
        with dl.unit_of_work(actor="fuzz") as uow:
            return call(uow)
    except ValidationError as error:
        refused = error.field
    assert refused in fields or refused.split(".")[0] in fields  # "content.subjective..."
    assert counts(dl) == before
    return None


@pytest.fixture
def seeded(dl: DataLayer) -> DataLayer:
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(mrn="MRN-1", phone="+919800000001"))
        uow.patients.create(**patient_fields(mrn="MRN-2", last_name="O'Brien"))
    return dl


@HOSTILE
@given(key=FILTER_KEYS, value=ANYTHING)
def test_filters_refuse_or_match_literally_and_write_nothing(seeded, key, value):
    before = counts(seeded)
    found = refused_or_result(
        seeded, lambda uow: uow.patients.list(filters={key: value}), {key, "filters"}
    )
    assert counts(seeded) == before
    assert found is None or len(found) <= 2
    if found and value is not None:  # an injection that matched everything would show here
        assert key in PatientRepository.filterable
        assert len(found) == 1 or key in {"status", "gender", "date_of_birth"}


@HOSTILE
@given(order_by=st.one_of(TEXTS, WRONG_TYPES, st.lists(TEXTS, min_size=1, max_size=3)))
def test_ordering_accepts_only_named_fields(seeded, order_by):
    result = refused_or_result(
        seeded, lambda uow: uow.patients.list(order_by=order_by), {"order_by"}
    )
    terms = [order_by or "last_name"] if isinstance(order_by, str) else order_by  # "": default
    if result is not None:
        assert all(t.removeprefix("-") in PatientRepository.sortable for t in terms)


@HOSTILE
@given(limit=ANYTHING, offset=ANYTHING)
def test_paging_refuses_anything_but_small_whole_numbers(seeded, limit, offset):
    result = refused_or_result(
        seeded, lambda uow: uow.patients.list(limit=limit, offset=offset), {"limit", "offset"}
    )
    if result is not None:
        assert type(limit) is int
        assert 1 <= limit <= 500
        assert type(offset) is int
        assert offset >= 0


@HOSTILE
@given(
    lookup=st.sampled_from(["find_by_mrn", "find_by_abha_id", "find_by_phone", "get"]),
    value=ANYTHING,
)
def test_lookups_find_nothing_for_hostile_values(seeded, lookup, value):
    fields = {"mrn", "abha_id", "phone", "id", "limit"}
    found = refused_or_result(seeded, lambda uow: getattr(uow.patients, lookup)(value), fields)
    assert found in (None, [])


@HOSTILE
@given(username=ANYTHING, entity_type=ANYTHING, entity_id=ANYTHING)
def test_user_and_audit_lookups_find_nothing_for_hostile_values(
    seeded, username, entity_type, entity_id
):
    assert (
        refused_or_result(seeded, lambda uow: uow.users.get_by_username(username), {"username"})
        is None
    )
    history = refused_or_result(
        seeded,
        lambda uow: uow.audit.for_entity(entity_type, entity_id),
        {"entity_type", "entity_id"},
    )
    assert history in (None, [])


@HOSTILE
@given(
    field=st.sampled_from(["first_name", "last_name", "mrn", "phone", "email", "abha_id"]),
    value=ANYTHING,
)
def test_created_values_are_refused_or_read_back_literally(dl, field, value):
    saved = create_and_reread(dl, field, value)
    if saved is None:
        return
    created, stored = saved
    assert stored == created
    if field in {"first_name", "last_name"}:
        assert stored == value.strip()


def create_and_reread(dl: DataLayer, field: str, value: Any) -> tuple[Any, Any] | None:
    """A patient created with ``field=value``: the value as created and as read back in
    another unit of work, or ``None`` when refused (naming ``field``, writing nothing)."""
    created = refused_or_result(
        dl, lambda uow: uow.patients.create(**patient_fields(**{field: value})), {field}
    )
    if created is None:
        return None
    with dl.unit_of_work(actor="fuzz") as uow:
        return getattr(created, field), getattr(uow.patients.get(created.id), field)


@HOSTILE
@given(key=TEXTS, value=ANYTHING)
def test_unknown_fields_are_refused_by_name(dl, key, value):
    if key in Patient.__table__.columns:
        return
    refused = refused_or_result(
        dl, lambda uow: uow.patients.create(**patient_fields(), **{key: value}), {key}
    )
    assert refused is None


@HOSTILE
@given(
    field=st.sampled_from(["address", "emergency_contact", "allergies"]),
    value=st.one_of(
        ANYTHING,
        st.dictionaries(TEXTS, ANYTHING, max_size=3),
        st.recursive(
            st.text(max_size=5),
            lambda inner: st.dictionaries(st.text(max_size=3), inner, max_size=2),
            max_leaves=12,
        ),
        st.lists(TEXTS, max_size=5),
    ),
)
def test_json_fields_refuse_operators_nesting_and_bad_text(dl, field, value):
    saved = create_and_reread(dl, field, value)
    if saved is not None:
        created, stored = saved
        assert as_floats(stored) == as_floats(created)


def as_floats(value: Any) -> Any:
    """JSON with every number as a float: JSONB stores 1e16 and 10000000000000000 alike."""
    if isinstance(value, dict):
        return {key: as_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_floats(item) for item in value]
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return value


# --- clinical notes (MongoDB) -----------------------------------------------------------

OPERATORS = st.dictionaries(
    st.sampled_from(["$ne", "$gt", "$regex", "$where", "$expr", "$in"]),
    st.one_of(st.none(), st.text(max_size=5), st.lists(st.integers(), max_size=2)),
    min_size=1,
    max_size=2,
)


@HOSTILE
@given(
    lookup=st.sampled_from(["get", "for_patient", "for_encounter", "history", "search"]),
    value=st.one_of(ANYTHING, OPERATORS),
)
def test_note_lookups_refuse_operator_objects_and_find_nothing(layer, visit, lookup, value):
    with layer.unit_of_work(actor="test") as uow:
        uow.clinical_notes.create(**visit.ids, content={"subjective": {"chief_complaint": "x"}})
    fields = {"id", "note_id", "patient_id", "encounter_id", "text"}

    def call(uow: UnitOfWork) -> Any:
        return getattr(uow.clinical_notes, lookup)(value)

    try:
        found = refused_or_result(layer, call, fields)
    except NotFoundError:  # history of a well-formed id that names no note
        found = None
    assert found in (None, [])


@HOSTILE
@given(
    key=st.one_of(st.sampled_from(["chief_complaint", "$where", "$set", "a.b", "", "\x00"]), TEXTS),
    value=st.one_of(TEXTS, OPERATORS),
)
def test_note_content_is_refused_or_stored_literally(layer, visit, key, value):
    content = {"subjective": {key: value}}
    created = refused_or_result(
        layer,
        lambda uow: uow.clinical_notes.create(**visit.ids, content=content),
        {"content", "note"},
    )
    if created is None:
        return
    with layer.unit_of_work(actor="test") as uow:
        stored = uow.clinical_notes.get(created.id)
    assert stored.to_mongo()["content"] == created.to_mongo()["content"]
