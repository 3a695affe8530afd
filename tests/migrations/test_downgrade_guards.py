"""Downgrades never silently damage the audit trail or unseal identifiers, and a production
downgrade needs an explicit confirmation."""

from __future__ import annotations

import base64
import dataclasses
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from dr_assistant_data import DataLayer
from dr_assistant_data.cli.main import main
from dr_assistant_data.errors import DataLayerError, ValidationError
from dr_assistant_data.migrations import relational as relational_migrations
from dr_assistant_data.testing import EncounterFactory, bind_factories
from tests.helpers.layers import ADMIN_URL, patient_fields, scratch_database, settings_for
from tests.integration.test_flask import build_app
from tests.migrations.test_migrations import run_alembic


@pytest.fixture
def fresh_url() -> Iterator[str]:
    with scratch_database("dr_assistant_downgrade") as url:
        yield url


@pytest.fixture
def fresh(fresh_url) -> Iterator[DataLayer]:
    with DataLayer(settings_for(fresh_url)) as layer:
        layer.migrate()
        yield layer


def current(layer: DataLayer) -> tuple[str, ...]:
    return layer.migration_status().current


def production_layer(url: str, checkpoints: Path) -> DataLayer:
    keys = {
        name: base64.b64encode(os.urandom(32)).decode() for name in ("blind_index_key", "audit_key")
    }
    settings = settings_for(
        url,
        data_encryption_keys="k1:" + base64.b64encode(os.urandom(32)).decode(),
        audit_checkpoint_dir=str(checkpoints),
        **keys,
    )
    return DataLayer(dataclasses.replace(settings, environment="production"))


def test_a_production_downgrade_without_confirmation_is_refused_and_changes_nothing(
    fresh_url, tmp_path
):
    with production_layer(fresh_url, tmp_path) as layer:
        layer.migrate()
        head = current(layer)
        with pytest.raises(ValidationError) as raised:
            layer.downgrade("0006")
        assert raised.value.field == "confirm"
        assert current(layer) == head
        layer.downgrade("0006", confirm=True)
        assert current(layer) == ("0006",)


def test_the_downgrade_command_refuses_production_without_confirm(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("APP_ENV", "production")
    unused = make_url(ADMIN_URL).set(database="unused").render_as_string(hide_password=False)
    monkeypatch.setenv("DATABASE_URL", unused)
    monkeypatch.setenv("DATA_ENCRYPTION_KEYS", "k1:" + base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("BLIND_INDEX_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("AUDIT_KEY", base64.b64encode(os.urandom(32)).decode())
    monkeypatch.setenv("AUDIT_CHECKPOINT_DIR", str(tmp_path))
    assert main(["downgrade", "0006"]) == 1
    assert "confirm" in capsys.readouterr().err


def test_flask_data_downgrade_refuses_production_without_confirm(fresh_url, tmp_path):
    with production_layer(fresh_url, tmp_path) as layer:
        layer.migrate()
        runner = build_app(layer).test_cli_runner()
        head = current(layer)
        refused = runner.invoke(args=["data", "downgrade", "0006"])
        assert (refused.exit_code, current(layer)) == (1, head)
        confirmed = runner.invoke(args=["data", "downgrade", "0006", "--confirm"])
        assert (confirmed.exit_code, current(layer)) == (0, ("0006",))


def test_revision_0008_is_not_downgraded_once_events_were_written_under_it(fresh):
    with fresh.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields())
    head = current(fresh)
    with pytest.raises(DataLayerError, match="revision 0008 cannot be downgraded"):
        fresh.downgrade("0006")
    assert current(fresh) == head


def schema_objects(layer: DataLayer) -> set[str]:
    """Tables, indexes and constraints of the public schema."""
    with layer.engine.connect() as connection:
        return set(
            connection.scalars(
                text(
                    "SELECT relname FROM pg_class JOIN pg_namespace n ON n.oid = relnamespace "
                    "WHERE nspname = 'public' UNION SELECT conname FROM pg_constraint"
                )
            )
        )


def test_a_downgrade_refused_below_revisions_that_commit_on_their_own_changes_nothing(fresh):
    with fresh.unit_of_work(actor="test") as uow:
        uow.users.create(
            username="asha",
            email="asha@clinic.in",
            full_name="Dr Asha",
            role="doctor",
            password_hash="x",
        )
        uow.patients.create(**patient_fields(phone="+919800000001"))
    head, objects = current(fresh), schema_objects(fresh)
    with pytest.raises(DataLayerError) as refused:
        fresh.downgrade("base")
    assert (current(fresh), schema_objects(fresh)) == (head, objects)
    assert "nothing was changed" in str(refused.value)
    for revision in ("0009", "0008", "0003"):
        assert f"revision {revision} cannot be downgraded" in str(refused.value)
    assert "+919800000001" not in str(refused.value)


def test_the_downgrade_command_names_the_refusing_revision_and_changes_nothing(
    fresh, monkeypatch, capsys
):
    with fresh.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields())
    head = current(fresh)
    monkeypatch.setenv("DATABASE_URL", fresh.settings.database_url)
    monkeypatch.setenv("MONGODB_URI", fresh.settings.mongodb_uri)
    assert main(["downgrade", "base"]) == 1
    assert "revision 0008 cannot be downgraded" in capsys.readouterr().err
    assert current(fresh) == head


def test_alembic_downgrade_run_by_hand_is_refused_before_any_step_and_changes_nothing(fresh):
    with fresh.unit_of_work(actor="test") as uow:
        uow.patients.create(**patient_fields(phone="+919800000002"))
    head, objects = current(fresh), schema_objects(fresh)

    result = run_alembic("downgrade", "base", database_url=fresh.settings.database_url)

    assert result.returncode != 0
    assert "downgrade to base refused, nothing was changed" in result.stderr
    assert "revision 0003 cannot be downgraded" in result.stderr
    assert "+919800000002" not in result.stdout + result.stderr
    assert (current(fresh), schema_objects(fresh)) == (head, objects)


def test_an_upgrade_refused_by_a_revision_applies_none_of_the_path(fresh_url):
    with DataLayer(settings_for(fresh_url)) as layer:
        relational_migrations.upgrade(layer.engine, "0009")
        with layer.unit_of_work(actor="test") as uow:
            doctor = uow.users.create(
                username="asha",
                email="asha@clinic.in",
                full_name="Dr Asha",
                role="doctor",
                password_hash="x",
            )
            patient = uow.patients.create(**patient_fields())
            start = datetime(2030, 1, 1, 9, tzinfo=UTC)
            uow.appointments.create(
                doctor_id=doctor.id,
                patient_id=patient.id,
                start_time=start,
                end_time=start + timedelta(minutes=30),
            )
        with layer.engine.begin() as connection:
            connection.execute(
                text(
                    "UPDATE appointments SET check_in_time = start_time, "
                    "check_out_time = start_time - interval '1 minute'"
                )
            )
        objects = schema_objects(layer)
        with pytest.raises(DataLayerError, match="revision 0011 cannot be applied"):
            layer.migrate()
        assert (current(layer), schema_objects(layer)) == (("0009",), objects)


def test_revision_0004_is_not_downgraded_below_events_recording_an_erasure_reason(fresh_url):
    with DataLayer(settings_for(fresh_url)) as layer:
        relational_migrations.upgrade(layer.engine, "0006")
        with layer.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO audit_events (id, seq, occurred_at, actor, action, entity_type, "
                    "entity_id, changed_fields, correlation_id, reason, prev_hash, row_hash) "
                    "VALUES (:id, 1, now(), 'test', 'delete', 'patients', 'p', '[]', 'c', "
                    "'court_order', :genesis, :hash)"
                ),
                {"id": uuid.uuid4(), "genesis": "0" * 64, "hash": "1" * 64},
            )
        with pytest.raises(DataLayerError):
            layer.downgrade("0003")
        assert current(layer) == ("0006",)


def test_revision_0003_is_not_downgraded_while_identifiers_are_sealed(fresh_url):
    with DataLayer(settings_for(fresh_url)) as layer:
        relational_migrations.upgrade(layer.engine, "0002")
        with layer.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO patients (id, first_name, last_name, date_of_birth, gender, "
                    "phone, allergies, status, version, created_at, updated_at) VALUES "
                    "(:id, 'Ira', 'Sen', '1990-01-01', 'female', '+919877700001', '[]', "
                    "'active', 1, now(), now())"
                ),
                {"id": uuid.uuid4()},
            )
        relational_migrations.upgrade(layer.engine, "0003")
        with pytest.raises(DataLayerError):
            layer.downgrade("0002")
        assert current(layer) == ("0003",)
        with layer.engine.connect() as connection:
            assert connection.scalar(text("SELECT phone FROM patients")).startswith("v1:")


def _an_encounter_ending_when_it_starts(layer: DataLayer) -> None:
    moment = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    with layer.unit_of_work(actor="test") as uow, bind_factories(uow):
        EncounterFactory(start_time=moment, end_time=moment)


def test_revision_0021_keeps_an_encounter_that_ends_when_it_starts_and_refuses_to_go_back(fresh):
    _an_encounter_ending_when_it_starts(fresh)
    head = current(fresh)

    with pytest.raises(DataLayerError) as refused:
        fresh.downgrade("0020")
    assert "revision 0021 cannot be downgraded" in str(refused.value)
    assert current(fresh) == head


def test_revision_0021_goes_down_and_up_again_on_the_embedded_file(tmp_path):
    def encounters_table(layer: DataLayer) -> str:
        with layer.engine.connect() as connection:
            return str(
                connection.scalar(text("SELECT sql FROM sqlite_master WHERE name = 'encounters'"))
            )

    with DataLayer(settings_for(f"sqlite:///{tmp_path / 'clinic.db'}")) as layer:
        layer.migrate()
        assert "end_time >= start_time" in encounters_table(layer)
        layer.downgrade("0020")
        assert "end_time > start_time" in encounters_table(layer)
        assert "end_time >= start_time" not in encounters_table(layer)
        layer.migrate()
        _an_encounter_ending_when_it_starts(layer)
