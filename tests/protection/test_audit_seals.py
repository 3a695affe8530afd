"""The audit log is sealed into keyed batches anchored by exported checkpoints: whoever
holds the whole database, but not the audit key nor the checkpoint store, cannot remove,
edit, add or re-hash events unseen; one event's inclusion can be proven."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import create_engine, delete, func, insert, select, text, update

from dr_assistant_data import DataLayer
from dr_assistant_data.cli.main import main
from dr_assistant_data.errors import NotFoundError
from dr_assistant_data.protection.audit_key import AuditKey, audit_key_from
from dr_assistant_data.relational.audit.checkpoints import Checkpoint, FileCheckpointStore
from dr_assistant_data.relational.audit.merkle import RootBuilder
from dr_assistant_data.relational.audit.seal import event_leaf, seal_content
from dr_assistant_data.relational.audit.trail import chain_hash
from dr_assistant_data.relational.audit.verify import check_proof
from dr_assistant_data.relational.models import AuditEvent, AuditSeal
from dr_assistant_data.testing import PatientFactory, bind_factories
from tests.protection.test_least_privilege import app_login_url  # noqa: F401 - a fixture used below

EVENTS, SEALS = AuditEvent.__table__, AuditSeal.__table__


def create_patients(dl: DataLayer, count: int) -> list:
    with dl.unit_of_work(actor="test") as uow, bind_factories(uow):
        return [PatientFactory() for _ in range(count)]


def seal_everything(dl: DataLayer) -> None:
    """Seal until no committed event is left unsealed (the database server is shared: a
    transaction of another client may hold the horizon back for a moment)."""
    deadline = time.monotonic() + 30
    while dl.verify_audit_chain().unsealed:
        assert time.monotonic() < deadline, "events stayed unsealed"
        dl.seal_audit()
        time.sleep(0.05)


def tamper(dl: DataLayer, *statements) -> None:
    """What a superuser can do: bypass the append-only triggers for one transaction."""
    with dl.engine.begin() as connection:
        connection.execute(text("SET LOCAL session_replication_role = replica"))
        for statement in statements:
            connection.execute(statement)


def seqs(dl: DataLayer) -> list[int]:
    with dl.engine.connect() as connection:
        return list(connection.scalars(select(EVENTS.c.seq).order_by(EVENTS.c.seq)))


def sealed_log(dl: DataLayer, batches: int = 2, per_batch: int = 3) -> list[int]:
    for _ in range(batches):
        create_patients(dl, per_batch)
        seal_everything(dl)
    return seqs(dl)


# --- sealing ----------------------------------------------------------------------------


def test_sealed_events_verify_against_the_latest_checkpoint(audited):
    sealed_log(audited, batches=2, per_batch=3)
    report = audited.verify_audit_chain()
    assert (report.ok, report.rows_checked, report.unsealed) == (True, 6, 0)
    assert report.checkpoint_batch == report.batches_checked >= 2


def test_committed_events_wait_unsealed_until_sealed(audited):
    create_patients(audited, 2)
    report = audited.verify_audit_chain()
    assert (report.ok, report.unsealed, report.batches_checked) == (True, 2, 0)


def test_events_of_a_transaction_still_open_are_sealed_only_after_it_ends(audited):
    create_patients(audited, 1)
    seal_everything(audited)
    with audited.unit_of_work(actor="slow") as slow, bind_factories(slow):
        PatientFactory()
        slow.session.flush()
        slow.session.execute(select(func.pg_current_xact_id()))  # holds the horizon back
        create_patients(audited, 1)  # commits after the slow one began
        audited.seal_audit()
        assert audited.verify_audit_chain().unsealed == 1
    seal_everything(audited)
    report = audited.verify_audit_chain()
    assert (report.ok, report.rows_checked, report.unsealed) == (True, 3, 0)


def test_only_one_sealer_holds_the_role_at_a_time(audited):
    create_patients(audited, 1)
    leader = audited.audit_sealer()
    try:
        deadline = time.monotonic() + 30
        while leader.run_once() is None:  # the horizon may lag behind another client
            assert time.monotonic() < deadline
        create_patients(audited, 1)
        time.sleep(0.1)
        assert audited.seal_audit() is None  # the leader still holds the role
    finally:
        leader.resign()


# --- tampering by someone holding the whole database, without the key -------------------


def test_an_edited_sealed_event_is_found_at_its_seq(audited):
    second = sealed_log(audited)[1]
    tamper(audited, update(EVENTS).where(EVENTS.c.seq == second).values(actor="someone-else"))
    report = audited.verify_audit_chain()
    assert (report.ok, report.first_broken_seq) == (False, second)


def test_an_edited_event_whose_hash_is_recomputed_without_the_key_is_found(audited):
    second = sealed_log(audited)[1]
    with audited.engine.connect() as connection:
        row = dict(
            connection.execute(select(EVENTS).where(EVENTS.c.seq == second)).mappings().one()
        )
    forged = chain_hash(row | {"actor": "someone-else"})
    tamper(
        audited,
        update(EVENTS).where(EVENTS.c.seq == second).values(actor="someone-else", row_hash=forged),
    )
    assert audited.verify_audit_chain().first_broken_seq == second


def test_a_removed_sealed_event_is_found_in_its_batch(audited):
    second = sealed_log(audited)[1]
    tamper(audited, delete(EVENTS).where(EVENTS.c.seq == second))
    report = audited.verify_audit_chain()
    assert (report.ok, report.first_broken_batch) == (False, 1)


def test_removing_the_last_events_and_their_seal_is_found_against_the_checkpoint(audited):
    sealed_log(audited)
    with audited.engine.connect() as connection:
        last = connection.execute(select(SEALS).order_by(SEALS.c.batch.desc()).limit(1)).one()
    tamper(
        audited,
        delete(EVENTS).where(EVENTS.c.xid >= last.xid_low),
        delete(SEALS).where(SEALS.c.batch == last.batch),
    )
    report = audited.verify_audit_chain()
    assert not report.ok
    assert "truncated" in report.problem


def test_removing_every_event_and_seal_is_found_against_the_checkpoint(audited):
    sealed_log(audited)
    tamper(audited, delete(EVENTS), delete(SEALS))
    report = audited.verify_audit_chain()
    assert (report.ok, report.rows_checked) == (False, 0)


def test_an_edit_re_sealed_down_to_the_last_batch_without_the_key_is_found(audited):
    """Edit an event, then recompute its batch's root and every later head with a key of
    one's own: the heads no longer verify."""
    second = sealed_log(audited)[1]
    tamper(audited, update(EVENTS).where(EVENTS.c.seq == second).values(actor="x"))
    guess = AuditKey(b"\x00" * 32)
    with audited.engine.connect() as connection:
        seals = connection.execute(select(SEALS).order_by(SEALS.c.batch)).all()
        rows = connection.execute(
            select(EVENTS.c.seq, EVENTS.c.row_hash, EVENTS.c.xid).order_by(EVENTS.c.seq)
        ).all()
    statements, previous = [], "0" * 64
    for seal in seals:
        builder = RootBuilder()
        for seq, row_hash, xid in rows:
            if seal.xid_low <= xid < seal.xid_high:
                builder.add(event_leaf(seq, row_hash))
        content = seal_content(seal) | {"root": builder.root(), "prev_head": previous}
        previous = guess.mac("seal", content)
        statements.append(
            update(SEALS)
            .where(SEALS.c.batch == seal.batch)
            .values(root=content["root"], prev_head=content["prev_head"], head=previous)
        )
    tamper(audited, *statements)
    report = audited.verify_audit_chain()
    assert not report.ok
    assert report.problem is not None


def test_an_event_appended_by_an_application_login_without_the_key_is_found(
    audited,
    app_login_url,  # noqa: F811 - the fixture
):
    sealed_log(audited, batches=1)
    engine = create_engine(app_login_url)
    forged = {
        "id": uuid.uuid4(),
        "occurred_at": datetime(2026, 11, 28, 10, tzinfo=UTC),
        "actor": "dr-someone-else",
        "action": "read",
        "entity_type": "patients",
        "entity_id": str(uuid.uuid4()),
        "changed_fields": ["demographics"],
        "correlation_id": "forged",
        "reason": None,
    }
    forged["row_hash"] = audit_key_from("", production=False).mac("event", forged)  # public key
    try:
        with engine.begin() as connection:
            connection.execute(insert(EVENTS), forged)
    finally:
        engine.dispose()
    report = audited.verify_audit_chain()
    assert not report.ok
    assert "HMAC" in report.problem


def test_a_checkpoint_not_signed_with_the_key_is_refused(audited, tmp_path):
    sealed_log(audited, batches=1)
    latest = FileCheckpointStore(tmp_path).latest()
    FileCheckpointStore(tmp_path).append(dataclasses.replace(latest, batch=latest.batch + 5))
    report = audited.verify_audit_chain()
    assert (report.ok, report.problem) == (
        False,
        "the latest checkpoint was not signed with the audit key",
    )


def test_a_sealed_log_whose_checkpoints_were_removed_is_reported(audited, tmp_path):
    sealed_log(audited, batches=1)
    FileCheckpointStore(tmp_path).path.unlink()
    report = audited.verify_audit_chain()
    assert (report.ok, report.problem) == (
        False,
        "the log is sealed but the checkpoint store holds no checkpoint",
    )


def test_a_torn_last_checkpoint_line_leaves_the_one_before(tmp_path):
    store = FileCheckpointStore(tmp_path)
    key = AuditKey(b"\x01" * 32)
    store.append(Checkpoint.sign(key, 3, "f" * 64, 9))
    with store.path.open("a") as file:
        file.write('{"batch": 4, "he')
    assert store.latest().batch == 3


# --- inclusion proofs -------------------------------------------------------------------


def test_a_sealed_events_inclusion_is_proven_to_the_checkpoint(audited):
    sealed_log(audited, batches=3, per_batch=3)
    with audited.engine.connect() as connection:
        event_id = connection.scalar(select(EVENTS.c.id).order_by(EVENTS.c.seq).offset(4))
    proof = audited.prove_audit_event(event_id)
    assert check_proof(proof, audited.settings.audit_signing_key)
    assert proof.checkpoint["batch"] == proof.seals[-1]["batch"]


def test_a_proof_of_a_changed_event_does_not_check(audited):
    sealed_log(audited, batches=1, per_batch=4)
    with audited.engine.connect() as connection:
        event_id = connection.scalar(select(EVENTS.c.id).order_by(EVENTS.c.seq).offset(2))
    proof = audited.prove_audit_event(event_id)
    changed = dataclasses.replace(proof, event=proof.event | {"actor": "someone-else"})
    assert not check_proof(changed, audited.settings.audit_signing_key)


def test_an_unsealed_event_has_no_proof_yet(audited):
    [patient] = create_patients(audited, 1)
    with audited.unit_of_work(actor="auditor") as uow:
        [event] = uow.audit.for_entity("patients", patient.id)
    with pytest.raises(NotFoundError):
        audited.prove_audit_event(event.id)


# --- command line -----------------------------------------------------------------------


def test_verify_audit_command_exits_1_and_names_the_broken_event(
    audited, database_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AUDIT_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("AUDIT_KEY", audited.settings.audit_key)
    second = sealed_log(audited)[1]
    assert main(["verify-audit"]) == 0
    assert json.loads(capsys.readouterr().out)["rows_checked"] == 6

    tamper(audited, update(EVENTS).where(EVENTS.c.seq == second).values(entity_type="users"))
    assert main(["verify-audit"]) == 1
    captured = capsys.readouterr()
    assert json.loads(captured.out)["first_broken_seq"] == second
    assert f"broken at seq {second}" in captured.err


def test_seal_audit_command_seals_and_verify_audit_proves_an_event(
    audited, database_url, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AUDIT_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("AUDIT_KEY", audited.settings.audit_key)
    create_patients(audited, 2)
    deadline = time.monotonic() + 30
    while audited.verify_audit_chain().unsealed:
        assert time.monotonic() < deadline
        assert main(["seal-audit"]) == 0
    capsys.readouterr()
    with audited.engine.connect() as connection:
        event_id = connection.scalar(select(EVENTS.c.id).limit(1))
    assert main(["verify-audit", "--event", str(event_id)]) == 0
    assert json.loads(capsys.readouterr().out)["intact"] is True
