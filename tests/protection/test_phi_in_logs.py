"""No patient data in logs, errors or Redis: a workload with every logger at DEBUG and SQL
echo at ``"debug"`` (SQLAlchemy's row logging) leaves none of its patients' data in any log
record or exception text; Redis's ``MONITOR`` sees none of it (nor a password hash) in any
command; MongoDB command records lose their documents; the redacting filter catches
identifiers that other code logs."""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date

import pytest
import redis
from pymongo.logger import _COMMAND_LOGGER, _CommandStatusMessage, _debug_log
from sqlalchemy import select

from dr_assistant_data import DataLayer
from dr_assistant_data.documents.command_log import withhold_command_bodies
from dr_assistant_data.errors import DataLayerError
from dr_assistant_data.protection.redaction import RedactingFilter, install_redaction, redact
from dr_assistant_data.relational.models import Patient
from dr_assistant_data.testing import DoctorFactory, EncounterFactory, bind_factories
from dr_assistant_data.testing.servers.redis_servers import throwaway_redis
from dr_assistant_data.unit_of_work import UnitOfWork
from tests.helpers.layers import layer_with, patient_fields, settings_for
from tests.helpers.process_steps import listening

pytestmark = pytest.mark.servers

PATIENTS = [
    {
        "first_name": "Vasundhara",
        "last_name": "Iyengar",
        "mrn": "MRN-PHI-0001",
        "abha_id": "91-2468-1357-8642",
        "phone": "+919812398123",
        "email": "vasundhara.iyengar@example.in",
    },
    {
        "first_name": "Hrishikesh",
        "last_name": "Deshpande",
        "mrn": "MRN-PHI-0002",
        "abha_id": "91-1357-2468-9753",
        "phone": "+919855501234",
        "email": "hrishi.deshpande@example.in",
    },
]
NOTE_TEXT = [
    "nocturnal palpitations since the Pongal festival",
    "suspected thyrotoxicosis, recheck TSH",
    "dictated: the patient works nights at the Hosur plant",
    "amended after the echocardiogram",
]
SECRETS = (
    NOTE_TEXT
    + [
        value.removeprefix("+91") if key == "phone" else value
        for patient in PATIENTS
        for key, value in patient.items()
    ]
    + ["1357-2468", "98555 01234", "v1:dev:"]
)  # other spellings, and sealed values


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.texts: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        formatted = logging.Formatter("%(name)s %(message)s").format(record)
        self.texts.append(f"{formatted} {vars(record)!r}")


@pytest.fixture
def everything_logged(dl: DataLayer) -> Iterator[Capture]:
    """Every logger at DEBUG into one handler, SQL echo and pool echo at debug."""
    capture = Capture()
    root = logging.getLogger()
    loggers = [root, *(logging.getLogger(name) for name in list(root.manager.loggerDict))]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    root.addHandler(capture)
    dl.engine.echo = "debug"
    dl.engine.pool.echo = "debug"
    try:
        yield capture
    finally:
        dl.engine.echo = False
        dl.engine.pool.echo = False
        root.removeHandler(capture)
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def workload(dl: DataLayer, errors: list[str]) -> None:
    """Creates, reads, updates, lookups, refused input, duplicates, conflicts, clinical
    notes (draft, sign, amend, search), erasure."""

    def expect_error(action: Callable[[UnitOfWork], object]) -> None:
        try:
            with dl.unit_of_work(actor="doctor-1") as uow:
                action(uow)
        except DataLayerError as error:
            errors.append(f"{error!s} {error!r} {''.join(traceback.format_exception(error))}")
            return
        raise AssertionError("the workload step should have failed")

    with dl.unit_of_work(actor="doctor-1") as uow, bind_factories(uow):
        doctor = DoctorFactory()
        created = [uow.patients.create(**patient_fields(**fields)) for fields in PATIENTS]
        encounter = EncounterFactory(patient=created[0], doctor=doctor)
    first, second = created
    with dl.unit_of_work(actor="doctor-1") as uow:
        uow.patients.update(first.id, allergies=["penicillin"], phone="98123 98124")
        uow.patients.find_by_mrn("MRN-PHI-0002")
        uow.patients.find_by_abha_id("91 1357 2468 9753")
        uow.patients.find_by_phone("+919855501234")
        uow.patients.list(filters={"email": "hrishi.deshpande@example.in"}, order_by="-mrn")
        uow.encounters.for_patient(first.id)
    p = PATIENTS[1]
    expect_error(lambda uow: uow.patients.create(**patient_fields(mrn=p["mrn"])))
    expect_error(lambda uow: uow.patients.create(**patient_fields(abha_id=p["abha_id"])))
    expect_error(lambda uow: uow.patients.create(**patient_fields(phone=p["first_name"])))
    expect_error(lambda uow: uow.patients.create(**patient_fields(email=p["last_name"])))
    expect_error(lambda uow: uow.patients.find_by_mrn(p["first_name"] + " " + p["mrn"]))
    expect_error(lambda uow: uow.patients.update(second.id, expected_version=99, last_name="X"))
    expect_error(
        lambda uow: uow.patients.create(
            **patient_fields(first_name=p["first_name"], date_of_birth=date(2999, 1, 1))
        )
    )
    visit = {"encounter_id": encounter.id, "patient_id": first.id, "doctor_id": doctor.id}
    with dl.unit_of_work(actor="doctor-1") as uow:
        note = uow.clinical_notes.create(
            **visit,
            content={"subjective": {"chief_complaint": NOTE_TEXT[0]}},
            raw_transcription=NOTE_TEXT[2],
        )
        note = uow.clinical_notes.update_draft(
            note.id,
            expected_version=note.version,
            content={"assessment": {"clinical_impression": NOTE_TEXT[1]}},
        )
        uow.clinical_notes.sign(note.id, signed_by=doctor.id)
        uow.clinical_notes.amend(
            note.id,
            amended_by=doctor.id,
            reason=NOTE_TEXT[3],
            content={"plan": {"follow_up": NOTE_TEXT[1]}},
        )
        uow.clinical_notes.for_patient(first.id)
        uow.clinical_notes.search("palpitations")
    expect_error(
        lambda uow: uow.clinical_notes.create(
            **visit, content={"subjective": {"$where": NOTE_TEXT[0]}}
        )
    )
    expect_error(
        lambda uow: uow.clinical_notes.update_draft(
            note.id, expected_version=1, raw_transcription=NOTE_TEXT[2]
        )
    )
    with dl.unit_of_work(actor="dpo") as uow:
        uow.patients.purge(second.id, reason="dpdp_erasure_request")


def test_a_workload_logged_at_debug_leaves_no_patient_data_in_logs_or_errors(dl, everything_logged):
    errors: list[str] = []
    workload(dl, errors)
    logged = "\n".join(everything_logged.texts)
    assert "INSERT INTO patients" in logged  # echo was on
    assert "checked out from pool" in logged  # at debug
    assert "query failed" in logged  # and the failures were logged
    assert len(errors) == 9
    for secret in SECRETS:
        assert secret not in logged, secret
        assert not [e for e in errors if secret in e], secret


PASSWORD_HASH = "pbkdf2:sha256:600000$monitor$" + "7" * 64


@pytest.fixture
def layer_on_own_redis(dl: DataLayer) -> Iterator[tuple[DataLayer, int]]:
    """A layer whose cache is a Redis server of its own: ``MONITOR`` sees only its traffic."""
    with throwaway_redis() as port, layer_with(dl, redis_url=f"redis://127.0.0.1:{port}") as layer:
        layer.migrate()
        yield listening(layer), port


@contextmanager
def monitored(port: int) -> Iterator[list[str]]:
    """Every command the Redis server on ``port`` runs in the block, as ``MONITOR`` shows it."""
    end = "end-of-the-monitored-block"
    commands: list[str] = []
    client = redis.Redis(port=port)
    with client.monitor() as monitor:

        def listen() -> None:
            for command in monitor.listen():
                if end in command["command"]:
                    return
                commands.append(command["command"])

        listener = threading.Thread(target=listen)
        listener.start()
        try:
            yield commands
        finally:
            client.echo(end)
            listener.join(10)
    client.close()


def cached_reads(dl: DataLayer) -> None:
    """Every cached read, twice (a load, then a hit), a value and a session with PHI."""
    with dl.unit_of_work(actor="doctor-1") as uow, bind_factories(uow):
        doctor = DoctorFactory(password_hash=PASSWORD_HASH)
        identifiers = {"mrn": "MRN-PHI-0003", "abha_id": None}  # the workload has taken them
        patient = uow.patients.create(**patient_fields(**{**PATIENTS[0], **identifiers}))
        encounter = EncounterFactory(patient=patient, doctor=doctor)
    for _ in range(2):
        with dl.unit_of_work(actor="doctor-1") as uow:
            uow.patients.get(patient.id)
            uow.users.get(doctor.id)
            uow.encounters.for_patient(patient.id)
            uow.appointments.schedule_for(doctor.id, encounter.start_time.date())
            uow.alerts.unread_for(doctor.id)
    dl.cache.set("last-patient:1", {"name": PATIENTS[0]["first_name"]})
    dl.sessions.create(str(doctor.id), data={"patient": PATIENTS[0]["last_name"]})


def test_redis_sees_no_patient_data_and_no_password_hash_during_a_workload(layer_on_own_redis):
    layer, port = layer_on_own_redis
    with monitored(port) as commands:
        workload(layer, [])
        cached_reads(layer)
    seen = "\n".join(commands)
    assert "EVALSHA" in seen  # cached reads were stored
    for secret in [*SECRETS, PASSWORD_HASH]:
        if secret != "v1:dev:":  # every stored value is sealed: that is the point
            assert secret not in seen, secret


@pytest.fixture
def engine_logger_at_debug() -> Iterator[Capture]:
    """The ``sqlalchemy.engine`` logger at DEBUG, with a handler of its own."""
    capture = Capture()
    logger = logging.getLogger("sqlalchemy.engine")
    level = logger.level
    logger.setLevel(logging.DEBUG)
    logger.addHandler(capture)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
        logger.setLevel(level)


@pytest.mark.parametrize("echo", ["debug", True, False])
def test_result_rows_are_never_logged_whatever_the_echo_setting(dl, engine_logger_at_debug, echo):
    with dl.unit_of_work(actor="doctor-1") as uow:
        identifiers = {"mrn": "MRN-PHI-0003", "abha_id": None}  # the workload has taken them
        patient = uow.patients.create(**patient_fields(**{**PATIENTS[0], **identifiers}))
    dl.engine.echo = echo
    try:
        with dl.unit_of_work(actor="doctor-1") as uow:
            uow.patients.list(filters={"mrn": PATIENTS[0]["mrn"]})
        with dl.engine.execution_options(logging_token="t").connect() as connection:
            connection.execute(select(Patient).where(Patient.id == patient.id)).all()
    finally:
        dl.engine.echo = False
    logged = "\n".join(engine_logger_at_debug.texts)
    assert "SELECT" in logged  # statements are still logged, parameters hidden
    assert "Row " not in logged
    for value in PATIENTS[0].values():
        assert value not in logged, value


def test_mongodb_command_records_keep_the_command_name_but_lose_its_documents(layer):
    layer.documents.db  # noqa: B018 - connecting installs the filter
    capture = Capture()
    root = logging.getLogger()
    level = _COMMAND_LOGGER.level
    _COMMAND_LOGGER.setLevel(logging.DEBUG)
    root.addHandler(capture)
    _COMMAND_LOGGER.addHandler(capture)
    try:
        for status, documents in [
            (_CommandStatusMessage.STARTED, {"command": {"insert": NOTE_TEXT[0]}}),
            (_CommandStatusMessage.SUCCEEDED, {"reply": {"errmsg": PATIENTS[0]["mrn"]}}),
            (_CommandStatusMessage.FAILED, {"failure": {"errmsg": NOTE_TEXT[1]}}),
        ]:
            _debug_log(_COMMAND_LOGGER, message=status, commandName="insert", **documents)
    finally:
        _COMMAND_LOGGER.removeHandler(capture)
        root.removeHandler(capture)
        _COMMAND_LOGGER.setLevel(level)
    assert len(capture.texts) == 6  # each record, on its own logger and its ancestor
    assert all('"commandName": "insert"' in text for text in capture.texts)
    logged = "\n".join(capture.texts)
    for secret in (NOTE_TEXT[0], NOTE_TEXT[1], PATIENTS[0]["mrn"]):
        assert secret not in logged


def test_the_command_filter_comes_back_when_a_store_connects(dl, database_url):
    command_logger = logging.getLogger("pymongo.command")
    command_logger.filters.clear()
    fresh = DataLayer(settings_for(database_url))
    try:
        fresh.documents.db  # noqa: B018 - connects
    finally:
        fresh.close()
    assert len(command_logger.filters) == 1
    withhold_command_bodies()
    assert len(command_logger.filters) == 1


# --- the filter -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "identifier",
    [
        "+91 98123 98123",
        "+919812398123",
        "09812398123",
        "9812398123",
        "+44 20 7946 0958",
        "vasundhara.iyengar@example.in",
        "91-2468-1357-8642",
        "91246813578642",
        "MRN-PHI-0001",
        "mrn: 000123",
    ],
)
def test_identifiers_are_redacted(identifier):
    assert identifier not in redact(f"patient {identifier}, please call")


def test_ids_timestamps_and_durations_are_left_alone():
    line = "id 3f9c1b2e-4d5a-4b6c-8d7e-919812345678 at 2026-11-24T10:30:00+05:30 took 12.5 ms"
    assert redact(line) == line


def test_the_filter_redacts_arguments_exceptions_and_stacks(caplog):
    logger = logging.getLogger("dr_assistant_data.tests.redaction")
    caplog.handler.addFilter(RedactingFilter())
    try:
        raise ValueError("lookup failed for vasundhara.iyengar@example.in")
    except ValueError:
        logger.exception("calling %s for %s", "+919812398123", "MRN-PHI-0001", stack_info=True)
    text = caplog.text
    assert "[redacted:phone]" in text
    assert "[redacted:email]" in text
    for secret in ("9812398123", "vasundhara", "PHI-0001"):
        assert secret not in text


def test_install_redaction_filters_every_handler_of_the_logger():
    logger = logging.getLogger("dr_assistant_data.tests.install")
    handlers = [logging.NullHandler(), logging.NullHandler()]
    for handler in handlers:
        logger.addHandler(handler)
    try:
        redacting = install_redaction(logger)
        assert all(redacting in handler.filters for handler in handlers)
    finally:
        for handler in handlers:
            logger.removeHandler(handler)
