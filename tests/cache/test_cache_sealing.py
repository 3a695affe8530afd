"""Redis holds no patient data and no credential: every value is sealed whole under the
data keys, bound to its key, opened only by a process holding its key (a miss otherwise);
users are cached without their password hash."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from sqlalchemy import text

from dr_assistant_data import DataLayer
from dr_assistant_data.relational.models import Patient, User
from dr_assistant_data.testing import DoctorFactory, bind_factories
from tests.helpers.cache_helpers import new_patient, read
from tests.helpers.layers import layer_with
from tests.helpers.process_steps import listening

PASSWORD_HASH = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$Zm9yIHRlc3RzIG9ubHk"
K1 = "k1:" + "MTExMTExMTExMTExMTExMTExMTExMTExMTExMTExMTE="
K2 = "k2:" + "MjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjIyMjI="
INDEX_KEY = "aWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWlpaWk="


def stored(dl: DataLayer, key: str) -> bytes:
    """The bytes Redis holds under ``key``, as a dump of the server would show them."""
    client = redis.Redis.from_url(dl.settings.redis_url)
    try:
        return client.get(key)
    finally:
        client.close()


def patient_key(dl: DataLayer, patient_id) -> str:
    return dl.cache_store.keys.entity(Patient.__table__, patient_id)


def new_doctor(dl: DataLayer) -> User:
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        return DoctorFactory(password_hash=PASSWORD_HASH)


@contextmanager
def keyed(dl: DataLayer, keys: str, active: str = "") -> Iterator[DataLayer]:
    """A layer (another process, as it were) with these data keys, using the shared cache."""
    settings = {"data_encryption_keys": keys, "data_encryption_active_key": active}
    with layer_with(dl, blind_index_key=INDEX_KEY, **settings) as layer:
        yield listening(layer)


def test_a_cached_patient_is_sealed_whole_under_the_active_key(dl):
    patient = new_patient(dl, mrn="MRN-SEAL-77", phone="+919800000001", allergies=["latex"])
    read(dl, lambda uow: uow.patients.get(patient.id))
    raw = stored(dl, patient_key(dl, patient.id))
    assert raw.startswith(b"v1:dev:")
    for value in (b"Ananya", b"Rao", b"MRN-SEAL-77", b"1992-03-14", b"latex", b"9800000001"):
        assert value not in raw


def test_a_sealed_cached_patient_opens_to_json_not_pickle(dl):
    patient = new_patient(dl, mrn="MRN-SEAL-78")
    read(dl, lambda uow: uow.patients.get(patient.id))
    key = patient_key(dl, patient.id)
    opened = dl.cache_store.sealer.open(key, stored(dl, key))
    assert "MRN-SEAL-78" in json.loads(opened)  # the row's JSON alone, no envelope


def test_a_sealed_value_copied_under_another_key_is_a_miss(dl):
    first = new_patient(dl, first_name="Meera")
    second = new_patient(dl, first_name="Kavya")
    read(dl, lambda uow: uow.patients.get(first.id))
    client = redis.Redis.from_url(dl.settings.redis_url)
    client.set(patient_key(dl, second.id), stored(dl, patient_key(dl, first.id)))
    client.close()
    assert read(dl, lambda uow: uow.patients.get(second.id).first_name) == "Kavya"


def test_a_cached_value_sealed_under_a_key_this_process_lacks_is_a_miss(dl):
    patient = new_patient(dl)  # no encrypted identifier: the row itself opens anywhere
    with keyed(dl, K1) as old:
        read(old, lambda uow: uow.patients.get(patient.id))
        assert stored(dl, patient_key(dl, patient.id)).startswith(b"v1:k1:")
    with keyed(dl, K2) as new:
        assert read(new, lambda uow: uow.patients.get(patient.id).first_name) == "Ananya"
        assert new.cache_stats()["entities"]["miss"] == 1


def test_values_of_the_cache_service_are_stored_sealed(dl):
    dl.cache.set("greeting:1", {"name": "Vasundhara"})
    raw = stored(dl, dl.cache_store.keys.general("greeting:1"))
    assert raw.startswith(b"v1:dev:")
    assert b"Vasundhara" not in raw
    assert dl.cache.get("greeting:1") == {"name": "Vasundhara"}


def test_a_counter_of_the_cache_service_reads_back_as_its_number(dl):
    dl.cache.incr("visits:today", by=6)
    assert dl.cache.get("visits:today") == 6


def test_login_sessions_are_stored_sealed(dl):
    session_id = dl.sessions.create("3f1e0c2a-user", data={"clinic": "Hosur"})
    raw = stored(dl, dl.cache_store.keys.session(session_id))
    assert raw.startswith(b"v1:dev:")
    assert b"3f1e0c2a-user" not in raw
    assert b"Hosur" not in raw
    assert dl.sessions.get(session_id)["data"] == {"clinic": "Hosur"}


def test_a_cached_user_holds_no_password_hash(dl):
    doctor = new_doctor(dl)
    read(dl, lambda uow: uow.users.get(doctor.id))
    key = dl.cache_store.keys.entity(User.__table__, doctor.id)
    opened = dl.cache_store.sealer.open(key, stored(dl, key))
    assert opened is not None
    assert PASSWORD_HASH.encode() not in opened


def test_a_user_read_from_the_cache_loads_its_password_hash_from_the_database(dl, count_queries):
    doctor = new_doctor(dl)
    read(dl, lambda uow: uow.users.get(doctor.id))
    with dl.unit_of_work(actor="test") as uow, count_queries() as queries:
        cached = uow.users.get(doctor.id)
        assert queries.count == 0
        assert cached.password_hash == PASSWORD_HASH


def test_a_user_read_from_the_cache_then_edited_keeps_its_password_hash(dl):
    doctor = new_doctor(dl)
    read(dl, lambda uow: uow.users.get(doctor.id))
    with dl.unit_of_work(actor="test") as uow:
        uow.users.get(doctor.id).specialty = "cardiology"
    with dl.engine.connect() as connection:
        row = connection.execute(
            text("SELECT password_hash, specialty FROM users WHERE id = :id"), {"id": doctor.id}
        ).one()
    assert tuple(row) == (PASSWORD_HASH, "cardiology")


# --- key rotation ----------------------------------------------------------------------


def every_value_under_the_prefix(dl: DataLayer) -> dict[bytes, bytes]:
    client = redis.Redis.from_url(dl.settings.redis_url)
    try:
        return {
            key: client.get(key)
            for key in client.scan_iter(match=dl.settings.cache_prefix + "*", count=500)
            if client.type(key) == b"string"
        }
    finally:
        client.close()


def test_rotation_leaves_no_value_in_redis_sealed_under_the_old_key(dl):
    with keyed(dl, K1) as old:
        patient = new_patient(old, phone="+919800000002")
        read(old, lambda uow: uow.patients.get(patient.id))
        old.cache.set("greeting:2", {"name": "Vasundhara"})
        old.sessions.create("user-2")
    with keyed(dl, f"{K1},{K2}", active="k2") as both:
        both.rotate_keys()
    values = every_value_under_the_prefix(dl)
    assert values
    assert not any(value.startswith(b"v1:k1:") for value in values.values())


def test_after_rotation_and_removal_of_the_old_key_sessions_and_service_values_remain(dl):
    with keyed(dl, K1) as old:
        old.cache.set("greeting:3", {"name": "Vasundhara"})
        session_id = old.sessions.create("user-3")
    with keyed(dl, f"{K1},{K2}", active="k2") as both:
        both.rotate_keys()
    with keyed(dl, K2) as new:
        assert new.cache.get("greeting:3") == {"name": "Vasundhara"}
        assert new.sessions.get(session_id)["user_id"] == "user-3"


def test_after_rotation_and_removal_of_the_old_key_a_cached_patient_reads_in_clear(dl):
    with keyed(dl, K1) as old:
        patient = new_patient(old, phone="+919800000003")
        read(old, lambda uow: uow.patients.get(patient.id))
    with keyed(dl, f"{K1},{K2}", active="k2") as both:
        both.rotate_keys()
    with keyed(dl, K2) as new:
        assert read(new, lambda uow: uow.patients.get(patient.id).phone) == "+919800000003"


def test_rotation_keeps_the_expiry_of_the_values_it_reseals(dl):
    with keyed(dl, K1) as old:
        old.cache.set("greeting:4", {"name": "Vasundhara"}, ttl=600)
    with keyed(dl, f"{K1},{K2}", active="k2") as both:
        both.rotate_keys()
        key = both.cache_store.keys.general("greeting:4")
        assert stored(dl, key).startswith(b"v1:k2:")
        assert 0 < both.cache_store.client.pttl(key) <= 600_000
