"""No patient data in logs or errors: a workload with every logger at DEBUG and SQL echo
on leaves none of its patients' data in any log record or exception text; the redacting
filter catches identifiers that other code logs."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Callable, Iterator
from datetime import date

import pytest
from conftest import patient_fields

from dr_assistant_data import DataLayer
from dr_assistant_data.errors import DataLayerError
from dr_assistant_data.protection.redaction import RedactingFilter, install_redaction, redact
from dr_assistant_data.relational.unit_of_work import UnitOfWork
from dr_assistant_data.testing import DoctorFactory, EncounterFactory, bind_factories

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
    """Every logger at DEBUG into one handler, SQL echo and pool echo on."""
    capture = Capture()
    root = logging.getLogger()
    loggers = [root, *(logging.getLogger(name) for name in list(root.manager.loggerDict))]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.DEBUG)
    root.addHandler(capture)
    dl.engine.echo = True
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
    assert "query failed" in logged  # and the failures were logged
    assert len(errors) == 9
    for secret in SECRETS:
        assert secret not in logged, secret
        assert not [e for e in errors if secret in e], secret


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
