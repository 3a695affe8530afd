"""ABHA number, phone and email are stored sealed, found through blind indexes, rotate
between keys, and are sealed by the migration that introduced encryption."""

from __future__ import annotations

import base64
import os
import uuid

import pytest
from sqlalchemy import create_engine, text

from dr_assistant_data import DataLayer, Settings
from dr_assistant_data.cli.main import main
from dr_assistant_data.errors import ConfigurationError, DataLayerError
from dr_assistant_data.migrations import relational as relational_migrations
from dr_assistant_data.protection.keyring import DecryptionError
from dr_assistant_data.relational.encryption import encrypted_columns, keyring_of
from dr_assistant_data.relational.models import Patient
from tests.helpers.layers import patient_fields, scratch_database, settings_for

IDENTIFIERS = {"abha_id": "91-7777-8888-9999", "phone": "+919877700001", "email": "ira@example.in"}


def new_key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


INDEX_KEY = new_key()
K1, K2 = new_key(), new_key()


def layer_with(url: str, keys: str, active: str = "") -> DataLayer:
    return DataLayer(
        settings_for(
            url,
            data_encryption_keys=keys,
            data_encryption_active_key=active,
            blind_index_key=INDEX_KEY,
        )
    )


def stored(dl: DataLayer, patient_id: uuid.UUID) -> dict[str, str]:
    """The patient's row as the database holds it."""
    with dl.engine.connect() as connection:
        row = connection.execute(
            text("SELECT * FROM patients WHERE id = :id"), {"id": patient_id}
        ).one()
    return {key: str(value) for key, value in row._mapping.items()}


def create(dl: DataLayer, **overrides: object) -> Patient:
    with dl.unit_of_work(actor="test") as uow:
        return uow.patients.create(**patient_fields(**{**IDENTIFIERS, **overrides}))


def test_identifiers_are_stored_sealed_under_a_key_id_and_read_back_in_clear(dl):
    patient = create(dl)
    row = stored(dl, patient.id)
    for key, value in IDENTIFIERS.items():
        assert row[key].startswith("v1:dev:")
        assert value not in " ".join(row.values())
    with dl.unit_of_work(actor="test") as uow:
        again = uow.patients.get(patient.id)
        assert (again.abha_id, again.phone, again.email) == tuple(IDENTIFIERS.values())


def test_sealing_the_same_value_twice_gives_different_ciphertexts(dl):
    first = create(dl)
    second = create(dl, abha_id=None, email="other@example.in")
    assert stored(dl, first.id)["phone"] != stored(dl, second.id)["phone"]


def test_lookups_find_identifiers_in_any_usual_format(dl):
    patient = create(dl)
    create(dl, abha_id=None, email=None, phone="+919811122233")
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.find_by_abha_id("91 7777 8888 9999").id == patient.id
        assert [p.id for p in uow.patients.find_by_phone("098777 00001")] == [patient.id]
        assert uow.patients.list(filters={"email": "IRA@Example.in"})[0].id == patient.id
        assert uow.patients.count(filters={"phone": ["+919877700001", "9811122233"]}) == 2


def test_lookups_use_the_blind_index_in_one_query(dl, count_queries):
    create(dl)
    with dl.unit_of_work(actor="test") as uow, count_queries() as log:
        uow.patients.find_by_phone("+919877700001")
    assert log.count == 1
    assert "phone_index" in log.statements[0]


def test_a_ciphertext_moved_to_another_column_does_not_decrypt(dl):
    patient = create(dl)
    with dl.engine.begin() as connection:
        connection.execute(
            text("UPDATE patients SET email = phone WHERE id = :id"), {"id": patient.id}
        )
    with pytest.raises(DecryptionError), dl.unit_of_work(actor="test") as uow:
        uow.patients.get(patient.id)


def test_the_cache_can_learn_which_columns_are_encrypted():
    assert encrypted_columns(Patient) == {
        "abha_id": "patients.abha_id",
        "phone": "patients.phone",
        "email": "patients.email",
    }


def test_rotation_reseals_old_values_under_the_active_key_in_batches(dl, database_url):
    with layer_with(database_url, f"k1:{K1}") as old:
        ids = [create(old, abha_id=None, phone=f"+91981111{n:04d}").id for n in range(5)]
    with layer_with(database_url, f"k1:{K1},k2:{K2}", active="k2") as both:
        assert both.rotate_keys(batch_size=2) == 5
        assert both.rotate_keys(batch_size=2) == 0  # nothing left under k1
    with layer_with(database_url, f"k2:{K2}") as new:
        assert all(stored(new, pid)["phone"].startswith("v1:k2:") for pid in ids)
        with new.unit_of_work(actor="test") as uow:
            assert uow.patients.find_by_phone("+919811110003")[0].id == ids[3]


def test_a_value_sealed_under_a_key_no_longer_configured_is_an_error_without_the_value(
    dl, database_url
):
    with layer_with(database_url, f"k1:{K1}") as old:
        patient = create(old)
    with (
        layer_with(database_url, f"k2:{K2}") as new,
        pytest.raises(DecryptionError) as raised,
        new.unit_of_work(actor="t") as uow,
    ):
        uow.patients.get(patient.id)
    assert "k1" in str(raised.value)
    assert "7777" not in str(raised.value)


def test_a_value_that_is_not_a_token_is_an_error_without_any_part_of_it():
    keyring = Settings(database_url="sqlite://").keyring
    with pytest.raises(DecryptionError) as raised:
        keyring.open("call: +919877700001 after 6pm", "patients.phone")
    assert "9877700001" not in str(raised.value)


def test_rotate_keys_command_reports_the_rows_rewritten(dl, database_url, monkeypatch, capsys):
    with layer_with(database_url, f"k1:{K1}") as old:
        create(old)
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("DATA_ENCRYPTION_KEYS", f"k1:{K1},k2:{K2}")
    monkeypatch.setenv("DATA_ENCRYPTION_ACTIVE_KEY", "k2")
    monkeypatch.setenv("BLIND_INDEX_KEY", INDEX_KEY)
    assert main(["rotate-keys", "--batch-size", "10"]) == 0
    assert "Re-encrypted 1 rows under key k2" in capsys.readouterr().out


# --- configuration ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"BLIND_INDEX_KEY": INDEX_KEY}, "DATA_ENCRYPTION_KEYS"),
        ({"DATA_ENCRYPTION_KEYS": f"k1:{K1}"}, "BLIND_INDEX_KEY"),
    ],
)
def test_production_refuses_to_start_without_keys(environ, variable):
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"APP_ENV": "production", "DB_HOST": "db", **environ})
    assert raised.value.variable == variable


@pytest.mark.parametrize(
    ("environ", "variable"),
    [
        ({"DATA_ENCRYPTION_KEYS": "k1:not-base64!"}, "DATA_ENCRYPTION_KEYS"),
        (
            {"DATA_ENCRYPTION_KEYS": "k1:" + base64.b64encode(b"short").decode()},
            "DATA_ENCRYPTION_KEYS",
        ),
        ({"DATA_ENCRYPTION_KEYS": f"k1:{K1},k2:{K2}"}, "DATA_ENCRYPTION_ACTIVE_KEY"),
        (
            {"DATA_ENCRYPTION_KEYS": f"k1:{K1}", "DATA_ENCRYPTION_ACTIVE_KEY": "k9"},
            "DATA_ENCRYPTION_ACTIVE_KEY",
        ),
    ],
)
def test_malformed_keys_are_refused_naming_the_variable(environ, variable):
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"BLIND_INDEX_KEY": INDEX_KEY, **environ})
    assert raised.value.variable == variable


def test_settings_never_show_keys():
    settings = Settings(data_encryption_keys=f"k1:{K1}", blind_index_key=INDEX_KEY)
    assert K1 not in repr(settings)
    assert INDEX_KEY not in repr(settings)


def test_an_engine_not_built_by_the_layer_cannot_seal(database_url):
    engine = create_engine(database_url)
    try:
        with pytest.raises(DataLayerError):
            keyring_of(engine.dialect)
    finally:
        engine.dispose()


# --- the migration ----------------------------------------------------------------------


def test_the_encryption_revision_seals_existing_plaintext_rows():
    with scratch_database("dr_assistant_enc") as url, layer_with(url, f"k1:{K1}") as layer:
        relational_migrations.upgrade(layer.engine, "0002")
        patient_id = uuid.uuid4()
        with layer.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO patients (id, first_name, last_name, date_of_birth, gender, "
                    "abha_id, phone, allergies, status, version, created_at, updated_at) "
                    "VALUES (:id, 'Ira', 'Sen', '1990-01-01', 'female', '91-7777-8888-9999', "
                    "'+919877700001', '[]', 'active', 1, now(), now())"
                ),
                {"id": patient_id},
            )
        layer.migrate()
        row = stored(layer, patient_id)
        assert row["abha_id"].startswith("v1:k1:")
        assert row["phone"].startswith("v1:k1:")
        assert row["email"] == "None"
        with layer.unit_of_work(actor="test") as uow:
            assert uow.patients.find_by_abha_id("91-7777-8888-9999").phone == "+919877700001"


# --- staff ------------------------------------------------------------------------------

STAFF = {"email": "asha.rao@clinic.example.in", "phone": "+919845012345"}


def create_doctor(dl: DataLayer, **overrides: object) -> uuid.UUID:
    fields = {"username": "asha", "full_name": "Dr Asha Rao", "role": "doctor", **STAFF}
    with dl.unit_of_work(actor="test") as uow:
        return uow.users.create(password_hash="x", **{**fields, **overrides}).id


def stored_user(dl: DataLayer, user_id: uuid.UUID) -> dict[str, str]:
    with dl.engine.connect() as connection:
        row = connection.execute(text("SELECT * FROM users WHERE id = :id"), {"id": user_id}).one()
    return {key: str(value) for key, value in row._mapping.items()}


def test_staff_email_and_phone_are_stored_sealed_and_read_back_in_clear(dl):
    user_id = create_doctor(dl)
    row = stored_user(dl, user_id)
    assert row["email"].startswith("v1:dev:")
    assert row["phone"].startswith("v1:dev:")
    assert not any(value in " ".join(row.values()) for value in (*STAFF.values(), "45012345"))
    with dl.unit_of_work(actor="test") as uow:
        user = uow.users.get(user_id)
        assert (user.email, user.phone) == (STAFF["email"], STAFF["phone"])


def test_staff_are_filtered_by_email_and_phone_through_their_blind_indexes(dl, count_queries):
    user_id = create_doctor(dl)
    with dl.unit_of_work(actor="test") as uow, count_queries() as log:
        by_email = uow.users.list(filters={"email": "Asha.Rao@Clinic.Example.IN"})
        by_phone = uow.users.list(filters={"phone": "098450 12345"})
    assert [u.id for u in by_email] == [user_id]
    assert [u.id for u in by_phone] == [user_id]
    assert "email_index" in log.statements[0]
    assert "phone_index" in log.statements[1]


def test_staff_log_in_by_username_as_before(dl):
    user_id = create_doctor(dl)
    with dl.unit_of_work(actor="test") as uow:
        assert uow.users.get_by_username("asha").id == user_id


def test_rotation_reseals_staff_contacts_under_the_active_key(dl, database_url):
    with layer_with(database_url, f"k1:{K1}") as old:
        user_id = create_doctor(old, username="asha.k1")
    with layer_with(database_url, f"k1:{K1},k2:{K2}", active="k2") as both:
        assert both.rotate_keys() == 1
    with layer_with(database_url, f"k2:{K2}") as new:
        assert stored_user(new, user_id)["email"].startswith("v1:k2:")
        with new.unit_of_work(actor="test") as uow:
            assert uow.users.list(filters={"email": STAFF["email"]})[0].id == user_id


def test_the_staff_revision_seals_existing_plaintext_rows_and_refuses_to_open_them_again():
    with scratch_database("dr_assistant_enc") as url, layer_with(url, f"k1:{K1}") as layer:
        relational_migrations.upgrade(layer.engine, "0008")
        user_id = uuid.uuid4()
        with layer.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO users (id, username, email, full_name, role, phone, "
                    "password_hash, status, preferences, version, created_at, updated_at) "
                    "VALUES (:id, 'asha', :email, 'Dr Asha Rao', 'doctor', :phone, 'x', "
                    "'active', '{}', 1, now(), now())"
                ),
                {"id": user_id, **STAFF},
            )
        layer.migrate()
        row = stored_user(layer, user_id)
        assert row["email"].startswith("v1:k1:")
        assert row["phone"].startswith("v1:k1:")
        with layer.unit_of_work(actor="test") as uow:
            assert uow.users.list(filters={"phone": STAFF["phone"]})[0].email == STAFF["email"]
        with pytest.raises(DataLayerError, match="revision 0009 cannot be downgraded"):
            layer.downgrade("0008")
        assert stored_user(layer, user_id)["email"].startswith("v1:k1:")
