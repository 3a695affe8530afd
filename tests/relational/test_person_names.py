"""People's names are written and searched in one Unicode form (NFC), so a name typed on
one keyboard finds the same name typed on another; invisible characters that disguise a
name are refused, the joiners some scripts spell with are kept; revision 0020 brings the
names stored before to that form."""

from __future__ import annotations

import unicodedata
import uuid

import pytest
from sqlalchemy import text

from dr_assistant_data import DataLayer, ValidationError
from dr_assistant_data.migrations import relational as relational_migrations
from tests.helpers.layers import patient_fields, scratch_database, settings_for


def nfd(name: str) -> str:
    return unicodedata.normalize("NFD", name)


def nfc(name: str) -> str:
    return unicodedata.normalize("NFC", name)


NAMES = [
    # Tamil: the two-part vowel signs ொ ோ ௌ have a canonical decomposition
    ("கோபி", nfd("கோபி")),
    ("கௌசல்யா", nfd("கௌசல்யா")),
    ("பொன்னம்மா", nfd("பொன்னம்மா")),
    # Devanagari: a nukta letter typed precomposed (U+0958-U+095F) or as letter + nukta
    ("\u095bाकिर", "\u091c\u093cाकिर"),  # Zakir
    ("\u095eरहान", "\u092b\u093cरहान"),  # Farhan
    ("\u0959ान", "\u0916\u093cान"),  # Khan
    # Vietnamese: stacked diacritics
    ("Lê", nfd("Lê")),
    ("Phạm", nfd("Phạm")),
    ("Đặng", nfd("Đặng")),
    ("Nguyễn", nfd("Nguyễn")),
    ("Trần", nfd("Trần")),
    # Latin with diacritics
    ("Léa", nfd("Léa")),
    ("Ève", nfd("Ève")),
    ("Åsa", nfd("Åsa")),
    ("Zoë", nfd("Zoë")),
    ("Müller", nfd("Müller")),
    ("Çelik", nfd("Çelik")),
    # Japanese romanisation (Hepburn macrons)
    ("Ōta", nfd("Ōta")),
    ("Satō", nfd("Satō")),
    ("Itō", nfd("Itō")),
    ("Shūji", nfd("Shūji")),
]
"""Each name as two keyboards type it: different characters, canonically equivalent."""

FORMS = [
    pytest.param(typed, searched, id=f"{index}-{direction}")
    for index, pair in enumerate(NAMES)
    for direction, (typed, searched) in (("as-typed", pair), ("reversed", pair[::-1]))
]

INVISIBLE = {
    "left-to-right mark": "\u200e",
    "right-to-left mark": "\u200f",
    "arabic letter mark": "\u061c",
    "right-to-left override": "\u202e",
    "left-to-right embedding": "\u202a",
    "pop directional formatting": "\u202c",
    "right-to-left isolate": "\u2067",
    "pop directional isolate": "\u2069",
    "zero-width space": "\u200b",
    "zero-width joiner between latin letters": "\u200d",
    "zero-width non-joiner between latin letters": "\u200c",
    "word joiner": "\u2060",
    "byte order mark": "\ufeff",
    "soft hyphen": "\u00ad",
    "line separator": "\u2028",
    "newline": "\n",
}


def create(layer: DataLayer, **names: str) -> uuid.UUID:
    with layer.unit_of_work(actor="test") as uow:
        return uow.patients.create(**patient_fields(**names)).id


def found(layer: DataLayer, query: str) -> list[uuid.UUID]:
    with layer.unit_of_work(actor="test") as uow:
        return [patient.id for patient in uow.patients.search_by_name(query)]


def test_every_pair_is_two_spellings_of_one_name():
    for typed, other in NAMES:
        assert typed != other
        assert nfc(typed) == nfc(other)


@pytest.mark.parametrize(("typed", "searched"), FORMS)
def test_a_name_is_found_by_the_same_name_typed_in_the_other_form(dl, typed, searched):
    patient_id = create(dl, last_name=typed)
    assert found(dl, searched) == [patient_id]


def test_names_are_stored_in_nfc(dl):
    patient_id = create(dl, first_name=nfd("Léa"), last_name=nfd("Phạm"))
    with dl.engine.connect() as connection:
        stored = connection.execute(
            text("SELECT first_name, last_name FROM patients WHERE id = :id"), {"id": patient_id}
        ).one()
    assert tuple(stored) == ("Léa", "Phạm")


def test_a_staff_name_is_stored_in_nfc(dl):
    with dl.unit_of_work(actor="test") as uow:
        user = uow.users.create(
            username="ota",
            email="ota@clinic.example.in",
            full_name=nfd("Dr Ōta Satō"),
            role="doctor",
            password_hash="x",
        )
    with dl.unit_of_work(actor="test") as uow:
        assert uow.users.get(user.id).full_name == "Dr Ōta Satō"


@pytest.mark.parametrize("character", INVISIBLE.values(), ids=INVISIBLE.keys())
def test_an_invisible_character_in_a_name_is_refused_naming_the_field(dl, character):
    with pytest.raises(ValidationError) as refused:
        create(dl, first_name=f"Ra{character}vi")
    assert refused.value.field == "first_name"
    assert "Ra" not in str(refused.value)
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.count() == 0


def test_a_staff_name_with_a_direction_override_is_refused(dl):
    with dl.unit_of_work(actor="test") as uow, pytest.raises(ValidationError) as refused:
        uow.users.create(
            username="asha",
            email="asha@clinic.example.in",
            full_name="Dr \u202eoaR ahsA",
            role="doctor",
            password_hash="x",
        )
    assert refused.value.field == "full_name"


@pytest.mark.parametrize(
    "name",
    [
        "ශ්\u200dරී",  # Sinhala "Sri": rakaransaya, a joiner after the virama
        "र्\u200dया",  # Devanagari eyelash ra: a joiner after the virama
        "क्\u200cष",  # Devanagari: a non-joiner after the virama keeps the half form
        "\u0639\u0644\u06cc\u200c\u0631\u0636\u0627",  # Persian Alireza: ZWNJ between letters
    ],
    ids=["sinhala-zwj", "devanagari-zwj", "devanagari-zwnj", "persian-zwnj"],
)
def test_a_joiner_that_is_part_of_the_spelling_is_kept(dl, name):
    patient_id = create(dl, first_name=name)
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.get(patient_id).first_name == name


def test_a_search_with_an_invisible_character_is_refused_naming_the_query(dl):
    with pytest.raises(ValidationError) as refused:
        found(dl, "Ra\u200bvi")
    assert refused.value.field == "query"


# --- revision 0020 ------------------------------------------------------------------------


INSERT_PATIENT = text(
    "INSERT INTO patients (id, first_name, last_name, date_of_birth, gender, allergies, "
    "status, version, created_at, updated_at) VALUES (:id, :first, :last, '1990-01-01', "
    "'female', '[]', 'active', 1, now(), now())"
)


def insert_patients(layer: DataLayer, names: list[tuple[str, str]]) -> list[uuid.UUID]:
    """Rows written as a layer before revision 0020 could: names in any form."""
    rows = [{"id": uuid.uuid4(), "first": first, "last": last} for first, last in names]
    with layer.engine.begin() as connection:
        connection.execute(INSERT_PATIENT, rows)
    return [row["id"] for row in rows]


def stored_names(layer: DataLayer, patient_id: uuid.UUID) -> tuple[str, str]:
    with layer.engine.connect() as connection:
        row = connection.execute(
            text("SELECT first_name, last_name FROM patients WHERE id = :id"), {"id": patient_id}
        ).one()
    return row.first_name, row.last_name


@pytest.fixture
def at_0012():
    with scratch_database("dr_assistant_names") as url, DataLayer(settings_for(url)) as layer:
        relational_migrations.upgrade(layer.engine, "0012")
        yield layer


def test_the_revision_brings_stored_names_to_nfc_and_the_search_finds_them(at_0012):
    names = [(typed, other) for typed, other in NAMES] * 50  # 1,050 rows: several pages
    ids = insert_patients(at_0012, names)
    at_0012.migrate()
    for patient_id, (first, last) in zip(ids, names, strict=True):
        assert stored_names(at_0012, patient_id) == (nfc(first), nfc(last))
    assert len(found(at_0012, nfd("Shūji"))) == 20


def test_the_revision_removes_invisible_characters_and_keeps_joiners_of_a_spelling(at_0012):
    disguised, spelt = insert_patients(
        at_0012, [("\u200bRa\u202evi", "Ku\u200dmar"), ("ශ්\u200dරී", "Rao")]
    )
    at_0012.migrate()
    assert stored_names(at_0012, disguised) == ("Ravi", "Kumar")
    assert stored_names(at_0012, spelt) == ("ශ්\u200dරී", "Rao")


def test_the_revision_leaves_a_name_made_only_of_invisible_characters(at_0012):
    [patient_id] = insert_patients(at_0012, [("\u200b", "Rao")])
    at_0012.migrate()
    assert stored_names(at_0012, patient_id) == ("\u200b", "Rao")
