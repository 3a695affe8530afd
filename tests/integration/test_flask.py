"""The Flask extension: a unit of work per request, committed or rolled back by outcome,
always released; request ids and actors reach the audit trail; ``flask data ...``."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import uuid

import pytest
from flask import Flask, abort, g

from dr_assistant_data import ConfigurationError, DataLayer
from dr_assistant_data.errors import DataLayerError, ValidationError
from dr_assistant_data.flask import DataLayerExtension, ErrorResponse, current_uow
from tests.helpers.layers import patient_fields, scratch_database, settings_for

MRN = "MRN-FLASK-1"
LONG_ALLERGY = "peanut " * 80


def build_app(
    layer: DataLayer, error_response: ErrorResponse | None = None, **config: object
) -> Flask:
    app = Flask("clinic")
    app.config.update(DATA_LAYER_SETTINGS=layer.settings, **config)
    data = DataLayerExtension(
        app, actor=lambda: g.get("user_id"), layer=layer, error_response=error_response
    )

    @app.before_request
    def authenticate() -> None:
        g.user_id = "doctor-7"

    @app.post("/patients")
    def create() -> tuple[dict[str, str], int]:
        patient = data.uow.patients.create(**patient_fields(mrn=MRN))
        return {"id": str(patient.id)}, 201

    @app.post("/patients/refused")
    def create_then_refuse() -> None:
        current_uow.patients.create(**patient_fields(mrn=MRN))
        abort(409)

    @app.post("/patients/crash")
    def create_then_crash() -> None:
        current_uow.patients.create(**patient_fields(mrn=MRN))
        raise RuntimeError("the view failed")

    @app.post("/patients/twice")
    def create_duplicates() -> str:
        current_uow.patients.create(**patient_fields(mrn=MRN))
        current_uow.patients.create(**patient_fields(mrn=MRN))
        return "ok"  # the duplicate only surfaces at commit, after the view returned

    @app.post("/patients/long-allergy")
    def create_with_a_long_allergy() -> tuple[str, int]:
        patient = current_uow.patients.create(**patient_fields(mrn=MRN))
        patient.allergies.append(LONG_ALLERGY)
        return "created", 201  # the value is refused only at commit, after the view returned

    @app.post("/patients/then-invalid")
    def create_then_refuse_a_value() -> str:
        current_uow.patients.create(**patient_fields(mrn=MRN))
        current_uow.patients.create(**patient_fields(gender="unknown"))
        return "unreachable"

    @app.post("/patients/<uuid:patient_id>/deactivate")
    def deactivate(patient_id: uuid.UUID) -> str:
        current_uow.patients.update(patient_id, status="inactive")
        return "deactivated"

    @app.post("/patients/<uuid:patient_id>/rename-as-of-version-1")
    def rename_stale(patient_id: uuid.UUID) -> str:
        current_uow.patients.update(patient_id, expected_version=1, last_name="Sharma")
        return "renamed"

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    return app


@pytest.fixture
def app(dl: DataLayer) -> Flask:
    return build_app(dl, PROPAGATE_EXCEPTIONS=False)


def stored(dl: DataLayer) -> int:
    with dl.unit_of_work(actor="test") as uow:
        return uow.patients.count(filters={"mrn": MRN})


def test_a_successful_request_commits_its_writes(app, dl):
    assert app.test_client().post("/patients").status_code == 201

    assert stored(dl) == 1


def test_a_4xx_response_rolls_back_by_default(app, dl):
    assert app.test_client().post("/patients/refused").status_code == 409

    assert stored(dl) == 0


def test_a_4xx_response_commits_when_rollback_starts_at_500(dl):
    app = build_app(dl, DATA_LAYER_ROLLBACK_FROM_STATUS=500)

    assert app.test_client().post("/patients/refused").status_code == 409

    assert stored(dl) == 1


def test_a_rollback_threshold_that_would_commit_a_500_is_refused(dl):
    with pytest.raises(ConfigurationError) as raised:
        build_app(dl, DATA_LAYER_ROLLBACK_FROM_STATUS=600)

    assert raised.value.variable == "DATA_LAYER_ROLLBACK_FROM_STATUS"


def test_a_view_that_raises_rolls_back_and_answers_500(app, dl):
    assert app.test_client().post("/patients/crash").status_code == 500

    assert stored(dl) == 0


def test_a_write_without_a_signed_in_user_is_refused_in_production(dl, database_url, tmp_path):
    keys = {
        "data_encryption_keys": "k1:" + base64.b64encode(os.urandom(32)).decode(),
        "blind_index_key": base64.b64encode(os.urandom(32)).decode(),
        "audit_key": base64.b64encode(os.urandom(32)).decode(),
        "audit_checkpoint_dir": str(tmp_path),
    }
    settings = dataclasses.replace(settings_for(database_url, **keys), environment="production")
    layer = DataLayer(settings)
    app = Flask("clinic")
    app.config["PROPAGATE_EXCEPTIONS"] = False
    data = DataLayerExtension(app, actor=lambda: g.get("user_id"), layer=layer)

    @app.post("/patients")
    def create() -> str:
        data.uow.patients.create(**patient_fields(mrn=MRN))
        return "created"

    try:
        response = app.test_client().post("/patients")
        assert (response.status_code, response.json["field"]) == (422, "actor")
    finally:
        layer.close()
    assert stored(dl) == 0


def test_a_duplicate_refused_at_commit_is_a_409_naming_the_field(app, dl):
    response = app.test_client().post("/patients/twice")

    assert (response.status_code, response.json) == (
        409,
        {"error": "duplicate", "field": "mrn", "message": "mrn: already in use"},
    )
    assert stored(dl) == 0


def test_a_value_refused_at_commit_is_a_422_naming_the_field_never_the_value(app, dl):
    response = app.test_client().post("/patients/long-allergy")

    assert (response.status_code, response.json["field"]) == (422, "allergies")
    assert "peanut" not in response.text
    assert stored(dl) == 0


def test_a_value_the_view_raised_on_is_rolled_back_even_when_4xx_responses_commit(dl):
    app = build_app(dl, DATA_LAYER_ROLLBACK_FROM_STATUS=500)

    response = app.test_client().post("/patients/then-invalid")

    assert (response.status_code, response.json["field"]) == (422, "gender")
    assert stored(dl) == 0


def test_a_missing_record_is_a_404(app):
    response = app.test_client().post(f"/patients/{uuid.uuid4()}/deactivate")

    assert (response.status_code, response.json["error"]) == (404, "not_found")


def test_a_write_that_lost_a_race_is_a_409(app, dl):
    with dl.unit_of_work(actor="test") as uow:
        patient = uow.patients.create(**patient_fields())
    with dl.unit_of_work(actor="test") as uow:
        uow.patients.update(patient.id, last_name="Iyer")  # version 2 now

    response = app.test_client().post(f"/patients/{patient.id}/rename-as-of-version-1")

    assert (response.status_code, response.json["error"]) == (409, "conflict")
    assert "Iyer" not in response.text
    with dl.unit_of_work(actor="test") as uow:
        assert uow.patients.get(patient.id).last_name == "Iyer"


def test_an_unmigrated_database_is_a_503(dl):
    with (
        scratch_database("dr_assistant_flask_unmigrated") as url,
        DataLayer(settings_for(url)) as layer,
    ):
        response = build_app(layer).test_client().post(f"/patients/{uuid.uuid4()}/deactivate")

    assert (response.status_code, response.json["error"]) == (503, "schema_not_migrated")


def test_an_unreachable_database_is_a_503_with_retry_after_and_no_address(dl):
    unreachable = settings_for("postgresql+psycopg2://postgres@127.0.0.1:9/nowhere")
    with DataLayer(unreachable) as layer:
        response = build_app(layer).test_client().post(f"/patients/{uuid.uuid4()}/deactivate")

    assert (response.status_code, response.headers["Retry-After"]) == (503, "5")
    assert response.json == {
        "error": "unavailable",
        "backend": "postgres",
        "message": "try again later",
    }


def test_an_application_maps_the_layers_errors_its_own_way(dl):
    def teapot(error: DataLayerError) -> tuple[dict[str, str], int] | None:
        return ({"refused": error.field}, 418) if isinstance(error, ValidationError) else None

    app = build_app(dl, error_response=teapot)
    client = app.test_client()

    assert client.post("/patients/long-allergy").json == {"refused": "allergies"}
    assert client.post("/patients/twice").status_code == 409
    assert stored(dl) == 0


def test_the_connection_is_released_even_when_the_exception_propagates(dl):
    app = build_app(dl, PROPAGATE_EXCEPTIONS=True)

    with pytest.raises(RuntimeError):
        app.test_client().post("/patients/crash")

    assert dl.engine.pool.checkedout() == 0
    assert stored(dl) == 0


def test_a_request_that_never_touches_the_data_takes_no_connection(app, dl):
    dl.engine.pool.dispose()

    response = app.test_client().get("/ping")

    assert response.text == "pong"
    assert dl.engine.pool.checkedin() == 0
    assert "X-Request-ID" not in response.headers


def test_the_request_id_and_the_actor_reach_the_audit_trail_and_the_response(app, dl):
    response = app.test_client().post("/patients", headers={"X-Request-ID": "req-42"})

    assert response.headers["X-Request-ID"] == "req-42"
    with dl.unit_of_work(actor="test") as uow:
        [event] = uow.audit.for_entity("patients", response.json["id"])
    assert (event.correlation_id, event.actor) == ("req-42", "doctor-7")


def test_a_malformed_request_id_is_replaced_by_a_new_one(app):
    response = app.test_client().post("/patients", headers={"X-Request-ID": "a b;" * 20})

    assert response.status_code == 201
    assert len(response.headers["X-Request-ID"]) == 32


def test_settings_come_from_app_config_over_the_environment(dl):
    app = Flask("clinic")
    app.config.update(DATABASE_URL=dl.settings.database_url, DB_POOL_MAX=3, REDIS_URL="memory://")
    data = DataLayerExtension(app)

    with app.app_context():
        assert data.layer.settings.database_url == dl.settings.database_url
        assert data.layer.settings.db_pool_size == 3
        data.layer.close()


def test_every_setting_the_environment_accepts_is_taken_from_app_config(dl):
    app = Flask("clinic")
    app.config.update(
        DATABASE_URL=dl.settings.database_url,
        REDIS_URL="memory://",
        CACHE_TTL_ENTITY=7,
        AUDIT_READS=True,
        MIGRATION_RETRIES=1,
    )
    data = DataLayerExtension(app)

    with app.app_context():
        settings = data.layer.settings
        data.layer.close()
    assert (settings.cache_ttl_entity, settings.audit_reads, settings.migration_retries) == (
        7,
        True,
        1,
    )


def test_encryption_keys_in_app_config_start_a_production_app(dl, tmp_path):
    key = base64.b64encode(bytes(32)).decode()
    app = Flask("clinic")
    app.config.update(
        APP_ENV="production",
        DATABASE_URL=dl.settings.database_url,
        REDIS_URL="memory://",
        DATA_ENCRYPTION_KEYS=f"k1:{key}",
        BLIND_INDEX_KEY=key,
        AUDIT_KEY=key,
        AUDIT_CHECKPOINT_DIR=str(tmp_path),
    )
    data = DataLayerExtension(app)

    with app.app_context():
        assert data.layer.settings.keyring.active == "k1"
        data.layer.close()


def test_a_misspelt_layer_key_in_app_config_is_warned_about_by_name(dl, caplog):
    app = Flask("clinic")
    app.config.update(
        DATA_LAYER_SETTINGS=dl.settings,
        CACHE_TTL_ENTITIES="9",
        DB_POOL_MAXIMUM="secret-7",
        DATABSE_URL="postgresql://app:secret-8@db/clinic",
        REDIS_KEY_PREFX="clinic-a:",
        MONGO_URI="mongodb://mongo/clinic",
    )

    with caplog.at_level("WARNING", logger="dr_assistant_data.settings"):
        DataLayerExtension(app, layer=dl)

    assert [record.args[1:] for record in caplog.records] == [
        ("CACHE_TTL_ENTITIES", "; did you mean CACHE_TTL_ENTITY?"),
        ("DATABSE_URL", "; did you mean DATABASE_URL?"),
        ("DB_POOL_MAXIMUM", "; did you mean DB_POOL_MAX?"),
        ("MONGO_URI", "; did you mean MONGODB_URI?"),
        ("REDIS_KEY_PREFX", "; did you mean REDIS_KEY_PREFIX?"),
    ]
    assert "secret-7" not in caplog.text
    assert "secret-8" not in caplog.text


def test_flask_data_status_and_health_run_against_the_apps_layer(dl):
    embedded_others = {"mongodb_uri": "mongomock://localhost/flask_cli", "redis_url": "memory://"}
    with DataLayer(settings_for(dl.settings.database_url, **embedded_others)) as layer:
        runner = build_app(layer).test_cli_runner()
        status = runner.invoke(args=["data", "status"])
        health = runner.invoke(args=["data", "health"])

    assert status.exit_code == 0
    assert "pending:  none" in status.output
    assert health.exit_code == 0
    assert json.loads(health.output)["postgres"]["ok"] is True
