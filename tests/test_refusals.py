"""Hostile input is refused with a ``ValidationError`` naming a field the schema knows (or a
fixed label), before any SQL, and the error chains nothing that holds the caller's value."""

from __future__ import annotations

import base64
import json
import math
import time
import uuid
from typing import Any

import pytest
from conftest import patient_fields
from error_chains import assert_carries_no_caller_value

from dr_assistant_data import ValidationError
from dr_assistant_data.values.pages import MAX_OFFSET

NAME = "Vasundhara Iyengar"
FORGED = f"{NAME}\nINFO dr_assistant_data login ok"
"""A key that is patient data and a forged log line."""


def forged_cursor(*values: Any) -> str:
    """A well-formed cursor of ``order_by="last_name"`` holding ``values``."""
    content = json.dumps({"o": ["last_name", "id"], "v": list(values)})
    return base64.urlsafe_b64encode(content.encode()).decode()


def refusal(dl, call) -> ValidationError:
    with pytest.raises(ValidationError) as raised, dl.unit_of_work(actor="test") as uow:
        call(uow)
    return raised.value


# --- cursors and offsets ----------------------------------------------------------------


@pytest.mark.parametrize("text", [f"{NAME}\x00", f"{NAME}\udce9"])
def test_a_forged_cursor_with_text_postgresql_cannot_hold_is_refused_as_the_cursor(dl, text):
    cursor = forged_cursor(text, "3f9c1b2e-4d5a-4b6c-8d7e-919812345678")
    refused = refusal(dl, lambda uow: uow.patients.list_page(order_by="last_name", after=cursor))
    assert refused.field == "cursor"
    assert_carries_no_caller_value(refused, text, cursor, NAME)


def test_a_forged_cursor_nested_too_deep_to_decode_is_refused_as_the_cursor(dl):
    cursor = base64.urlsafe_b64encode(b"[" * 1500).decode()
    refused = refusal(dl, lambda uow: uow.patients.list_page(after=cursor))
    assert refused.field == "cursor"
    assert_carries_no_caller_value(refused)


def test_a_garbled_cursor_chains_no_decoder_error_holding_it(dl):
    cursor = base64.urlsafe_b64encode(f'{{"o": "{NAME}"'.encode()).decode()
    refused = refusal(dl, lambda uow: uow.patients.list_page(after=cursor))
    assert refused.field == "cursor"
    assert_carries_no_caller_value(refused, NAME, cursor)


@pytest.mark.parametrize("offset", [MAX_OFFSET + 1, 2**63, 10**30])
def test_an_offset_beyond_the_bound_is_refused_before_any_sql(dl, count_queries, offset):
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.count()  # the connection is open; only the list call is counted
        with count_queries() as queries, pytest.raises(ValidationError) as refused:
            uow.patients.list(offset=offset)
        assert uow.patients.count() == 0  # the unit of work goes on
    assert refused.value.field == "offset"
    assert queries.count == 0


# --- exception chains -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("date_of_birth", f"{NAME} 1980-05-01"),
        ("first_name", f"{NAME}\udce9"),
        ("abha_id", f"{NAME}\udce9"),
    ],
)
def test_a_refused_patient_value_is_not_chained_to_the_error(dl, field, value):
    refused = refusal(dl, lambda uow: uow.patients.create(**patient_fields(**{field: value})))
    assert refused.field == field
    assert_carries_no_caller_value(refused, value, NAME)


def test_a_refused_timestamp_is_not_chained_to_the_error(dl):
    refused = refusal(
        dl,
        lambda uow: uow.appointments.create(
            doctor_id=uuid.uuid4(),
            patient_id=uuid.uuid4(),
            start_time=NAME,
            end_time="2031-01-06T09:15:00+00:00",
        ),
    )
    assert refused.field == "start_time"
    assert_carries_no_caller_value(refused, NAME)


def test_a_refused_note_value_is_not_chained_to_the_error(layer, visit):
    content = {"objective": {"vital_signs": {"heart_rate": NAME}}}
    refused = refusal(layer, lambda uow: uow.clinical_notes.create(**visit.ids, content=content))
    assert refused.field == "content.objective.vital_signs.heart_rate"
    assert_carries_no_caller_value(refused, NAME)


# --- field names ------------------------------------------------------------------------


def test_an_unknown_filter_key_is_named_by_a_fixed_label(dl):
    refused = refusal(dl, lambda uow: uow.patients.list(filters={FORGED: 1}))
    assert refused.field == "filters"
    assert_carries_no_caller_value(refused, FORGED, NAME)


def test_a_known_field_that_cannot_be_filtered_on_is_named(dl):
    refused = refusal(dl, lambda uow: uow.patients.list(filters={"first_name": NAME}))
    assert refused.field == "first_name"


def test_an_unknown_field_of_a_record_is_named_by_a_fixed_label(dl):
    refused = refusal(dl, lambda uow: uow.patients.create(**patient_fields(), **{FORGED: 1}))
    assert refused.field == "fields"
    assert_carries_no_caller_value(refused, FORGED, NAME)


def test_an_unknown_field_of_a_bulk_row_is_named_by_a_fixed_label(dl):
    rows = [{**patient_fields(), FORGED: 1}]
    refused = refusal(dl, lambda uow: uow.patients.create_many(rows, all_or_nothing=True))
    assert refused.field == "rows[0].fields"
    assert_carries_no_caller_value(refused, FORGED, NAME)


def test_an_unknown_field_of_a_note_is_named_by_a_fixed_label(layer, visit):
    refused = refusal(layer, lambda uow: uow.clinical_notes.create(**visit.ids, **{FORGED: 1}))
    assert refused.field == "fields"
    assert_carries_no_caller_value(refused, FORGED, NAME)


def test_an_unknown_key_in_note_content_is_named_by_the_object_holding_it(layer, visit):
    content = {"subjective": {FORGED: "fever"}}
    refused = refusal(layer, lambda uow: uow.clinical_notes.create(**visit.ids, content=content))
    assert refused.field == "content.subjective"
    assert_carries_no_caller_value(refused, FORGED, NAME)


# --- notes: numbers and size ------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"ai_confidence_score": math.nan}, "ai_confidence_score"),
        (
            {"content": {"objective": {"vital_signs": {"temperature": math.nan}}}},
            "content.objective.vital_signs.temperature",
        ),
        (
            {"content": {"objective": {"vital_signs": {"weight": math.inf}}}},
            "content.objective.vital_signs.weight",
        ),
        ({"content": {"objective": {"physical_exam": {"pulse": math.nan}}}}, "content"),
    ],
)
def test_nan_and_infinity_are_refused_in_notes(layer, visit, fields, field):
    refused = refusal(layer, lambda uow: uow.clinical_notes.create(**visit.ids, **fields))
    assert refused.field.startswith(field)
    assert layer.documents.db["clinical_notes"].count_documents({}) == 0


def test_a_note_object_with_two_million_keys_is_refused_quickly(layer, visit):
    exam = {f"k{i}": 1 for i in range(2_000_000)}
    content = {"objective": {"physical_exam": exam}}
    started = time.perf_counter()
    refused = refusal(layer, lambda uow: uow.clinical_notes.create(**visit.ids, content=content))
    elapsed = time.perf_counter() - started
    assert refused.field == "note"
    assert elapsed < 1.5  # reading all of it takes seconds


def test_a_patient_object_with_two_million_keys_is_refused_quickly(dl):
    address = {f"k{i}": 1 for i in range(2_000_000)}
    started = time.perf_counter()
    refused = refusal(dl, lambda uow: uow.patients.create(**patient_fields(address=address)))
    elapsed = time.perf_counter() - started
    assert refused.field == "address"
    assert elapsed < 1.5
