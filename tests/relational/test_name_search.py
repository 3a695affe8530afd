"""The front desk's name search: prefixes and (on PostgreSQL) near spellings, every word
matched, bounded, served by the trigram indexes, hostile input refused before any SQL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import text

from dr_assistant_data import DataLayer, ValidationError
from dr_assistant_data.relational.repositories.name_search import name_search
from tests.helpers.layers import patient_fields, scratch_database, settings_for

CLINIC = [("Ravi", "Kumar"), ("Ravi", "Shankar"), ("Lakshmi", "Subramanian"), ("Kumari", "Devi")]


def seed(layer: DataLayer) -> None:
    with layer.unit_of_work(actor="test") as uow:
        for first, last in CLINIC:
            uow.patients.create(**patient_fields(first_name=first, last_name=last))


def names(layer: DataLayer, query: str, **options: object) -> list[str]:
    with layer.unit_of_work(actor="test") as uow:
        return [p.full_name for p in uow.patients.search_by_name(query, **options)]


@pytest.fixture
def clinic(dl: DataLayer) -> DataLayer:
    seed(dl)
    return dl


@pytest.fixture
def sqlite_clinic(tmp_path) -> Iterator[DataLayer]:
    with DataLayer(settings_for(f"sqlite:///{tmp_path / 'clinic.sqlite3'}")) as layer:
        layer.migrate()
        seed(layer)
        yield layer


def test_the_start_of_a_name_finds_the_patient_whatever_its_case(clinic):
    assert names(clinic, "subra") == ["Lakshmi Subramanian"]


def test_a_name_misspelt_by_a_letter_is_found_on_postgresql(clinic):
    assert names(clinic, "Subramanain") == ["Lakshmi Subramanian"]


def test_every_word_of_the_query_must_match_a_name(clinic):
    assert names(clinic, "ravi kum") == ["Ravi Kumar"]


def test_the_closest_spelling_comes_first(clinic):
    assert names(clinic, "kumar")[0] == "Ravi Kumar"


def test_wildcards_in_the_query_are_plain_characters(clinic):
    assert names(clinic, "%") == []
    assert names(clinic, "_avi") == []


def test_a_soft_deleted_patient_is_not_found(clinic):
    with clinic.unit_of_work(actor="test") as uow:
        [patient] = uow.patients.search_by_name("Subramanian")
        uow.patients.delete(patient.id)

    assert names(clinic, "Subramanian") == []


def test_results_are_bounded_by_the_limit(clinic):
    assert len(names(clinic, "ravi", limit=1)) == 1


@pytest.mark.parametrize(
    ("query", "limit", "field"),
    [
        ("", 20, "query"),
        ("   ", 20, "query"),
        ("ra\x00vi", 20, "query"),
        ("a" * 101, 20, "query"),
        ("one two three four five", 20, "query"),
        (["ravi"], 20, "query"),
        ("ravi", 0, "limit"),
        ("ravi", 51, "limit"),
        ("ravi", True, "limit"),
    ],
)
def test_a_hostile_query_or_limit_is_refused_naming_the_field_before_any_sql(
    dl, count_queries, query, limit, field
):
    with (
        dl.unit_of_work(actor="test") as uow,
        count_queries() as log,
        pytest.raises(ValidationError) as refused,
    ):
        uow.patients.search_by_name(query, limit=limit)

    assert refused.value.field == field
    assert log.count == 0


def test_the_search_is_one_query(clinic, count_queries):
    with clinic.unit_of_work(actor="test") as uow, count_queries() as log:
        uow.patients.search_by_name("ravi kumar")

    assert log.count == 1


def test_the_search_is_served_by_the_trigram_indexes(clinic):
    statement = name_search("kumr", 20, "postgresql")
    with clinic.unit_of_work(actor="test") as uow:
        uow.session.execute(text("SET LOCAL enable_seqscan = off"))  # a table this small
        connection = uow.session.connection()
        compiled = statement.compile(connection)
        plan_text = "\n".join(
            connection.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params).scalars()
        )

    assert "ix_patients_first_name_trgm" in plan_text
    assert "ix_patients_last_name_trgm" in plan_text


def test_on_sqlite_the_start_of_a_name_finds_the_patient(sqlite_clinic):
    assert names(sqlite_clinic, "subra") == ["Lakshmi Subramanian"]


def test_on_sqlite_a_misspelt_name_is_not_found(sqlite_clinic):
    assert names(sqlite_clinic, "Subramanain") == []


def test_the_indexes_are_built_concurrently_and_valid_on_a_table_with_rows():
    with scratch_database() as url, DataLayer(settings_for(url)) as layer:
        layer.migrate()
        layer.downgrade("0009")
        seed(layer)
        layer.migrate()  # a patient exists: the builds run outside the transaction
        with layer.engine.connect() as connection:
            valid = connection.execute(
                text(
                    "SELECT indexrelid::regclass::text, indisvalid FROM pg_index "
                    "WHERE indexrelid::regclass::text LIKE 'ix_patients_%_trgm'"
                )
            ).all()

        assert sorted(valid) == [
            ("ix_patients_first_name_trgm", True),
            ("ix_patients_last_name_trgm", True),
        ]
        assert names(layer, "Subramanain") == ["Lakshmi Subramanian"]
