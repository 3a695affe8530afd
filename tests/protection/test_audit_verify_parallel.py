"""The audit log is verified in chunks of events, in worker processes when it is large: the
report is the one a walk of every event in one process makes, whatever was tampered with,
the hash links before revision 0008 hold across chunks, and the workers never outlive the
walk."""

from __future__ import annotations

import dataclasses
import functools
import multiprocessing
import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import OperationalError

from dr_assistant_data import DataLayer
from dr_assistant_data.relational.audit import verify as audit_verify
from dr_assistant_data.relational.audit.merkle import RootBuilder, leaf_hash
from dr_assistant_data.relational.audit.trail import GENESIS, chain_hash
from dr_assistant_data.relational.connection.engine import build_engine
from tests.protection.test_audit_seals import EVENTS, SEALS, sealed_log, seqs, tamper

CHUNK = 2
"""Events per chunk: the batches of ``sealed_log`` (three events) span two chunks."""


def workers(dl: DataLayer, database_url: str | None = None) -> audit_verify.Parallel:
    settings = dataclasses.replace(
        dl.settings, database_url=database_url or dl.settings.database_url
    )
    return audit_verify.Parallel(2, functools.partial(build_engine, settings))


def report(dl: DataLayer, **options) -> audit_verify.AuditReport:
    store = dl.audit_checkpoints
    with dl.engine.connect() as connection:
        return audit_verify.verify(
            connection,
            dl.settings.audit_signing_key,
            store.latest() if store else None,
            anchored_store=store is not None,
            **options,
        )


def edit_second(dl: DataLayer, log: list[int]) -> None:
    tamper(dl, update(EVENTS).where(EVENTS.c.seq == log[1]).values(actor="someone-else"))


def remove_third(dl: DataLayer, log: list[int]) -> None:
    tamper(dl, delete(EVENTS).where(EVENTS.c.seq == log[2]))


def swap_first_two(dl: DataLayer, log: list[int]) -> None:
    """Events re-ordered: their places swapped, each HMAC still its own."""
    tamper(
        dl,
        update(EVENTS).where(EVENTS.c.seq == log[0]).values(seq=-1),
        update(EVENTS).where(EVENTS.c.seq == log[1]).values(seq=log[0]),
        update(EVENTS).where(EVENTS.c.seq == -1).values(seq=log[1]),
    )


def insert_forged(dl: DataLayer, log: list[int]) -> None:
    """An event with a made-up HMAC, among the sealed ones of the first batch."""
    with dl.engine.connect() as connection:
        first = connection.execute(select(SEALS).order_by(SEALS.c.batch).limit(1)).one()
    forged = {
        "id": uuid.uuid4(),
        "seq": log[0] - 1 if log[0] > 1 else log[-1] + 1000,
        "xid": first.xid_low,
        "occurred_at": datetime(2026, 11, 28, 10, tzinfo=UTC),
        "actor": "dr-someone-else",
        "action": "read",
        "entity_type": "patients",
        "entity_id": str(uuid.uuid4()),
        "changed_fields": ["demographics"],
        "correlation_id": "forged",
        "row_hash": "f" * 64,
    }
    tamper(dl, insert(EVENTS).values(forged))


def truncate_tail(dl: DataLayer, log: list[int]) -> None:
    with dl.engine.connect() as connection:
        last = connection.execute(select(SEALS).order_by(SEALS.c.batch.desc()).limit(1)).one()
    tamper(
        dl,
        delete(EVENTS).where(EVENTS.c.xid >= last.xid_low),
        delete(SEALS).where(SEALS.c.batch == last.batch),
    )


def forge_seal(dl: DataLayer, log: list[int]) -> None:
    tamper(dl, update(SEALS).where(SEALS.c.batch == 2).values(root="0" * 64))


def nothing(dl: DataLayer, log: list[int]) -> None:
    pass


@pytest.mark.parametrize(
    "damage",
    [
        nothing,
        edit_second,
        remove_third,
        swap_first_two,
        insert_forged,
        truncate_tail,
        forge_seal,
    ],
)
def test_verifying_in_worker_processes_reports_what_one_process_reports(
    audited, database_url, damage
):
    log = sealed_log(audited, batches=3, per_batch=3)
    damage(audited, log)
    in_one_process = report(audited, page=1000)
    assert (damage is nothing) == in_one_process.ok
    assert report(audited, page=CHUNK) == in_one_process
    assert report(audited, page=CHUNK, parallel=workers(audited)) == in_one_process


def test_a_batch_root_built_from_aligned_parts_is_the_root_of_all_its_leaves():
    leaves = [leaf_hash(bytes([n])) for n in range(11)]
    whole, parts = RootBuilder(), RootBuilder()
    for leaf in leaves:
        whole.add(leaf)
    for start in range(0, len(leaves), 4):
        part = RootBuilder()
        for leaf in leaves[start : start + 4]:
            part.add(leaf)
        for size, digest in part.subtrees:
            parts.add_subtree(size, digest)
    assert (parts.size, parts.root()) == (whole.size, whole.root())


def legacy_log(dl: DataLayer, count: int) -> list[int]:
    """``count`` events chained as before revision 0008 (``xid`` 0, SHA-256 links)."""
    previous, statements = GENESIS, []
    for seq in range(1, count + 1):
        row = {
            "id": uuid.uuid4(),
            "seq": seq,
            "occurred_at": datetime(2025, 1, seq, tzinfo=UTC),
            "actor": "dr-legacy",
            "action": "update",
            "entity_type": "patients",
            "entity_id": str(uuid.uuid4()),
            "changed_fields": ["phone"],
            "correlation_id": "legacy",
            "prev_hash": previous,
        }
        previous = chain_hash(row)
        statements.append(
            insert(EVENTS).values({**row, "xid": 0, "reason": None, "row_hash": previous})
        )
    tamper(dl, *statements)
    return seqs(dl)


def test_links_before_revision_0008_are_checked_across_chunks(audited):
    legacy_log(audited, 5)
    verified = report(audited, page=CHUNK, parallel=workers(audited))
    assert (verified.ok, verified.rows_checked, verified.unsealed) == (True, 5, 5)


@pytest.mark.parametrize("change", ["edit", "remove"])
def test_a_broken_link_at_a_chunks_first_event_is_found(audited, change):
    log = legacy_log(audited, 5)
    third = EVENTS.c.seq == log[2]  # the second chunk's first event
    tamper(
        audited,
        update(EVENTS).where(third).values(actor="x")
        if change == "edit"
        else delete(EVENTS).where(third),
    )
    verified = report(audited, page=CHUNK, parallel=workers(audited))
    assert verified.ok is False
    assert verified.first_broken_seq == (log[2] if change == "edit" else log[3])
    assert verified.rows_checked == 2
    assert verified == report(audited, page=1000)


def test_an_interrupted_verification_leaves_no_worker_process_behind(audited):
    sealed_log(audited, batches=2, per_batch=3)

    def interrupt(done: int, total: int | None) -> None:
        if done > CHUNK:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        report(audited, page=CHUNK, parallel=workers(audited), progress=interrupt)
    assert multiprocessing.active_children() == []


def test_a_worker_that_cannot_reach_the_database_fails_the_verification_and_exits(audited):
    sealed_log(audited, batches=2, per_batch=3)
    unreachable = workers(audited, "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere")
    with pytest.raises(OperationalError):
        report(audited, page=CHUNK, parallel=unreachable)
    assert multiprocessing.active_children() == []
