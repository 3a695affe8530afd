"""Hostile input through every public parameter that reaches SQL: each value is either
refused with a ``ValidationError`` naming the field, or treated as plain data; nothing is
written by a refused call, and what is written reads back literally."""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from dr_assistant_data import DataLayer
from dr_assistant_data.documents.clinical_note import Subjective
from dr_assistant_data.errors import NotFoundError, ValidationError
from dr_assistant_data.relational.models import AuditEvent, Patient
from dr_assistant_data.relational.repositories.people import PatientRepository
from dr_assistant_data.relational.rules.validation import field_names
from dr_assistant_data.unit_of_work import UnitOfWork
from dr_assistant_data.values.pages import MAX_OFFSET
from tests.helpers.error_chains import assert_carries_no_caller_value
from tests.helpers.layers import patient_fields

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


def refused_or_result(
    dl: DataLayer, call: Callable[[UnitOfWork], Any], fields: set[str], *values: Any
) -> Any:
    """Run ``call`` in a unit of work: a refusal must name one of ``fields``, write
    nothing, and chain nothing holding ``values``. Returns the result, or ``None`` when
    refused."""
    before = counts(dl)
    try:
        with dl.unit_of_work(actor="fuzz") as uow:
            return call(uow)
    except ValidationError as error:
        refused = error
    assert refused.field in fields or refused.field.split(".")[0] in fields  # "content.x..."
    assert_carries_no_caller_value(refused, *values)
    assert counts(dl) == before
    return None


def known_or(label: str, key: Any) -> set[str]:
    """The fields a refusal of ``key`` may name: the key if the schema knows it, ``label``."""
    return {label, key} if key in field_names(Patient) else {label}


def unknown(key: Any) -> Any:
    """``key`` when the schema does not know it (then no error may repeat it), else ``None``."""
    return None if key in field_names(Patient) else key


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
        seeded,
        lambda uow: uow.patients.list(filters={key: value}),
        known_or("filters", key),
        unknown(key),
        value,
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


HUGE = st.one_of(
    st.integers(min_value=MAX_OFFSET - 2, max_value=2**70),
    st.sampled_from([2**31, 2**63 - 1, 2**63, 2**64, 10**30, -(2**63)]),
)


@HOSTILE
@given(limit=st.one_of(ANYTHING, HUGE), offset=st.one_of(ANYTHING, HUGE))
def test_paging_refuses_anything_but_small_whole_numbers(seeded, limit, offset):
    result = refused_or_result(
        seeded, lambda uow: uow.patients.list(limit=limit, offset=offset), {"limit", "offset"}
    )
    if result is not None:
        assert type(limit) is int
        assert 1 <= limit <= 500
        assert type(offset) is int
        assert 0 <= offset <= MAX_OFFSET


CURSOR_VALUES = st.one_of(
    ANYTHING,
    HUGE,
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["Ravi\x00Kumar", "Ravi\udce9", "\ud800", "2026-01-01T00:00:00"]),
    st.recursive(st.none(), lambda inner: st.lists(inner, max_size=2), max_leaves=4),
)


@HOSTILE
@given(
    last_name=CURSOR_VALUES,
    id=st.one_of(CURSOR_VALUES, st.uuids().map(str)),
    ordering=st.sampled_from([["last_name", "id"], ["-last_name", "id"], ["id"]]),
)
def test_forged_cursors_are_refused_as_the_cursor_or_start_a_page(seeded, last_name, id, ordering):
    content = json.dumps({"o": ordering, "v": [last_name, id][-len(ordering) :]}, default=str)
    cursor = base64.urlsafe_b64encode(content.encode()).decode()
    page = refused_or_result(
        seeded,
        lambda uow: uow.patients.list_page(order_by="last_name", after=cursor),
        {"cursor"},
        cursor,
        last_name,
        id,
    )
    assert page is None or len(page.items) <= 2


@HOSTILE
@given(
    garbage=st.one_of(
        TEXTS, st.binary(max_size=1600).map(lambda b: base64.urlsafe_b64encode(b).decode())
    )
)
def test_garbled_cursors_are_refused_as_the_cursor(seeded, garbage):
    page = refused_or_result(
        seeded, lambda uow: uow.patients.list_page(after=garbage), {"cursor"}, garbage
    )
    assert page is None or page.items == []


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
def test_unknown_fields_are_refused_by_a_known_name_or_a_fixed_label(dl, key, value):
    if key in Patient.__table__.columns:
        return
    refused = refused_or_result(
        dl,
        lambda uow: uow.patients.create(**patient_fields(), **{key: value}),
        known_or("fields", key),
        unknown(key),
        value,
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
    made_up = None if key in Subjective._fields else key  # a schema field may be named
    created = refused_or_result(
        layer,
        lambda uow: uow.clinical_notes.create(**visit.ids, content=content),
        {"content", "note"},
        made_up,
        value,
    )
    if created is None:
        return
    with layer.unit_of_work(actor="test") as uow:
        stored = uow.clinical_notes.get(created.id)
    assert stored.to_mongo()["content"] == created.to_mongo()["content"]


NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.5, 37.0]),
    st.integers(),
)


@HOSTILE
@given(
    score=NUMBERS,
    temperature=NUMBERS,
    exam=st.dictionaries(st.sampled_from(["pulse", "reflexes"]), NUMBERS, max_size=2),
)
def test_note_numbers_are_refused_or_stored_finite(layer, visit, score, temperature, exam):
    fields = {
        "ai_confidence_score": score,
        "content": {
            "objective": {"vital_signs": {"temperature": temperature}, "physical_exam": exam}
        },
    }
    created = refused_or_result(
        layer,
        lambda uow: uow.clinical_notes.create(**visit.ids, **fields),
        {"content", "ai_confidence_score"},
    )
    if created is None:
        return
    with layer.unit_of_work(actor="test") as uow:
        stored = uow.clinical_notes.get(created.id).to_mongo()
    numbers = [
        stored["ai_confidence_score"],
        *stored["content"]["objective"]["physical_exam"].values(),
    ]
    numbers.append(stored["content"]["objective"]["vital_signs"]["temperature"])
    assert all(math.isfinite(number) for number in numbers)
