"""The audit checkpoint store fails loudly, never silently: the sealer survives a store
that refuses checkpoints (retrying, backing off, reporting it), ``verify-audit`` reports
every store problem in its JSON report without a traceback or the file's path, an append
never loses the checkpoint after a torn line, and a store behind the log is reported."""

from __future__ import annotations

import base64
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from dr_assistant_data import DataLayer
from dr_assistant_data.cli.main import main
from dr_assistant_data.errors import DataLayerError
from dr_assistant_data.protection.audit_key import AuditKey
from dr_assistant_data.relational.audit import verify as audit_verify
from dr_assistant_data.relational.audit.checkpoints import (
    FILE_NAME,
    Checkpoint,
    FileCheckpointStore,
)
from dr_assistant_data.relational.audit.seal import Sealer
from tests.helpers.layers import layer_with
from tests.protection.test_audit_seals import create_patients, sealed_log

KEY = AuditKey(b"\x01" * 32)


def checkpoint(batch: int) -> Checkpoint:
    return Checkpoint.sign(KEY, batch, f"{batch:064x}", batch * 3)


# --- appends ----------------------------------------------------------------------------


def test_a_checkpoint_appended_after_a_torn_line_is_read_back(tmp_path):
    store = FileCheckpointStore(tmp_path)
    store.append(checkpoint(3))
    with store.path.open("a") as file:
        file.write('{"batch": 4, "he')  # the sealer died mid-append
    store.append(checkpoint(5))
    assert store.latest().batch == 5


def test_a_torn_line_between_checkpoints_is_skipped(tmp_path):
    store = FileCheckpointStore(tmp_path)
    store.append(checkpoint(3))
    with store.path.open("a") as file:
        file.write('{"batch": 4, "he')
    store.append(checkpoint(5))
    store.append(checkpoint(6))
    assert store.latest().batch == 6
    assert store.path.read_text().count("\n") == 4


# --- problems of the store, reported by verify-audit --------------------------------------


def not_utf8(path: Path) -> None:
    with path.open("ab") as file:
        file.write(b'{"batch": 9, "head": "\xff\xfe"}\n')


def string_batch(path: Path) -> None:
    line = json.loads(path.read_text().splitlines()[-1]) | {"batch": "9"}
    with path.open("a") as file:
        file.write(json.dumps(line) + "\n")


def not_json(path: Path) -> None:
    with path.open("a") as file:
        file.write("checkpoint 9\n")


def a_directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


STORE_PROBLEMS = {
    "a line that is not UTF-8": (not_utf8, "of the checkpoint store is not UTF-8 text"),
    "a string batch": (string_batch, "is not a well-formed checkpoint"),
    "a line that is not JSON": (not_json, "is not a checkpoint"),
    "a directory in its place": (a_directory, "cannot be read (IsADirectoryError EISDIR)"),
}


@pytest.mark.parametrize(
    ("damage", "problem"), STORE_PROBLEMS.values(), ids=list(STORE_PROBLEMS.keys())
)
def test_a_damaged_store_is_a_problem_in_the_report(audited, tmp_path, damage, problem):
    sealed_log(audited, batches=1)
    damage(tmp_path / FILE_NAME)
    report = audited.verify_audit_chain()
    assert not report.ok
    assert problem in report.problem


@pytest.mark.parametrize("damage", [d for d, _ in STORE_PROBLEMS.values()], ids=STORE_PROBLEMS)
def test_verify_audit_reports_a_damaged_store_as_json_and_one_error_line(
    audited, database_url, tmp_path, monkeypatch, capsys, damage
):
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AUDIT_CHECKPOINT_DIR", str(tmp_path))
    monkeypatch.setenv("AUDIT_KEY", audited.settings.audit_key)
    sealed_log(audited, batches=1)
    damage(tmp_path / FILE_NAME)

    assert main(["verify-audit"]) == 1

    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert report["ok"] is False
    assert "checkpoint store" in report["problem"]
    assert captured.err.startswith("error: audit log not verified: ")
    assert captured.err.count("\n") == 1
    assert "None" not in captured.err
    assert str(tmp_path) not in captured.out + captured.err


def test_proving_an_event_against_a_damaged_store_is_an_error_not_a_traceback(audited, tmp_path):
    sealed_log(audited, batches=1)
    not_json(tmp_path / FILE_NAME)
    with pytest.raises(DataLayerError, match="not a checkpoint"):
        audited.prove_audit_event("00000000-0000-0000-0000-000000000000")


# --- a store behind the log (restored from an older copy) --------------------------------


def verified(dl: DataLayer, store: FileCheckpointStore, lag: timedelta) -> audit_verify.AuditReport:
    with dl.engine.connect() as connection:
        return audit_verify.verify(
            connection,
            dl.settings.audit_signing_key,
            store.latest(),
            anchored_store=True,
            checkpoint_lag=lag,
        )


def test_a_store_restored_from_an_older_copy_is_reported_behind_the_log(audited, tmp_path):
    store = FileCheckpointStore(tmp_path)
    sealed_log(audited, batches=1)
    older = tmp_path / "older-copy"
    shutil.copy(store.path, older)
    first = store.latest().batch
    sealed_log(audited, batches=1)
    older.replace(store.path)

    report = verified(audited, store, lag=timedelta(0))

    assert not report.ok
    assert report.first_broken_batch == first + 1
    assert "behind the log" in report.problem


def test_a_seal_whose_checkpoint_may_still_be_on_its_way_is_not_reported(audited, tmp_path):
    store = FileCheckpointStore(tmp_path)
    sealed_log(audited, batches=1)
    older = store.path.read_bytes()
    sealed_log(audited, batches=1)
    store.path.write_bytes(older)

    assert verified(audited, store, lag=timedelta(minutes=1)).ok


# --- the sealer survives a store that refuses checkpoints ---------------------------------


class FullDisk(FileCheckpointStore):
    """A file store whose disk is full until ``full`` is cleared; counts the appends."""

    full = True
    appends = 0

    def append(self, checkpoint: Checkpoint) -> None:
        self.appends += 1
        if self.full:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.path))
        super().append(checkpoint)


def sealer_on(dl: DataLayer, store: FileCheckpointStore, interval: float) -> Sealer:
    return Sealer(dl.engine, dl.settings.audit_signing_key, store, interval)


def first_sealed_round(sealer: Sealer) -> str | None:
    """The failure of the first round that sealed something (the shared server's other
    clients may hold the horizon back for a moment)."""
    deadline = time.monotonic() + 30
    while True:
        unexported = sealer.health()["unexported_batch"]
        failure = sealer.attempt()
        if sealer.health()["unexported_batch"] != unexported:
            return failure
        assert time.monotonic() < deadline, "nothing was sealed"
        time.sleep(0.05)


def test_a_refused_checkpoint_is_reported_without_the_path_and_sealing_goes_on(audited, tmp_path):
    store = FullDisk(tmp_path)
    sealer = sealer_on(audited, store, interval=0.05)
    try:
        create_patients(audited, 1)
        failure = first_sealed_round(sealer)
        assert failure is not None
        assert "OSError ENOSPC" in failure
        assert str(tmp_path) not in failure
        health = sealer.health()
        assert (health["ok"], health["checkpoint_failures"], health["error"]) == (
            False,
            1,
            "OSError ENOSPC",
        )
        create_patients(audited, 1)
        first_sealed_round(sealer)  # sealing goes on while the store refuses
        assert sealer.health()["unexported_batch"] == 2
    finally:
        sealer.resign()


def test_a_refused_checkpoint_is_retried_with_back_off_and_written_once_the_store_recovers(
    audited, tmp_path
):
    store = FullDisk(tmp_path)
    sealer = sealer_on(audited, store, interval=0.05)
    try:
        create_patients(audited, 1)
        first_sealed_round(sealer)
        for _ in range(10):  # half a second of rounds: the back-off allows one more attempt
            sealer.attempt()
            time.sleep(0.05)
        assert store.appends <= 4  # eleven rounds; without the back-off, eleven appends
        store.full = False
        deadline = time.monotonic() + 30
        while not sealer.health()["ok"]:
            assert time.monotonic() < deadline, "the checkpoint was never retried"
            sealer.attempt()
            time.sleep(0.05)
        assert store.latest().batch == 1
        assert audited.verify_audit_chain().ok
    finally:
        sealer.resign()


def test_the_layers_sealer_reports_refused_checkpoints_in_health(dl, tmp_path):
    not_a_directory = tmp_path / "unmounted"
    not_a_directory.write_text("")
    with layer_with(
        dl,
        audit_checkpoint_dir=str(not_a_directory),
        audit_key=base64.b64encode(os.urandom(32)).decode(),
        audit_sealer=True,
        audit_seal_interval=0.05,
    ) as layer:
        create_patients(layer, 1)
        deadline = time.monotonic() + 30
        while (health := layer.health()["audit_sealer"])["ok"]:
            assert time.monotonic() < deadline, "the refused checkpoint was not reported"
            time.sleep(0.05)
    assert health["error"].endswith(("EEXIST", "ENOTDIR"))
    assert str(tmp_path) not in json.dumps(health)


def test_seal_audit_follow_survives_a_store_that_refuses_and_catches_up(
    audited, database_url, tmp_path
):
    directory = tmp_path / "checkpoints"
    directory.write_text("")  # the mount is missing: a file where the directory should be
    environment = {
        **os.environ,
        "DATABASE_URL": database_url,
        "AUDIT_CHECKPOINT_DIR": str(directory),
        "AUDIT_KEY": audited.settings.audit_key,
        "AUDIT_SEAL_INTERVAL": "50",
    }
    create_patients(audited, 2)
    follower = subprocess.Popen(
        [sys.executable, "-m", "dr_assistant_data.cli.main", "seal-audit", "--follow"],
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        warning = follower.stderr.readline()
        assert warning.startswith("warning: sealing round failed: the checkpoint of audit")
        time.sleep(1)
        assert follower.poll() is None  # still sealing
        directory.unlink()
        directory.mkdir()
        store = FileCheckpointStore(directory)
        deadline = time.monotonic() + 30
        while store.latest() is None:
            assert time.monotonic() < deadline, "the refused checkpoint was never written"
            time.sleep(0.1)
        assert verified(audited, store, lag=timedelta(minutes=1)).ok
    finally:
        follower.send_signal(signal.SIGINT)
        remaining = follower.communicate(timeout=30)[1]
    assert str(tmp_path) not in warning + remaining
    assert "Traceback" not in remaining


def test_seal_audit_reports_a_refused_checkpoint_as_one_error_line(
    audited, database_url, tmp_path, monkeypatch, capsys
):
    unmounted = tmp_path / "unmounted"
    unmounted.write_text("")
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("AUDIT_CHECKPOINT_DIR", str(unmounted))
    monkeypatch.setenv("AUDIT_KEY", audited.settings.audit_key)
    create_patients(audited, 1)
    deadline = time.monotonic() + 30
    while main(["seal-audit"]) == 0:  # nothing sealed yet: the horizon lags for a moment
        assert time.monotonic() < deadline, "nothing was sealed"
        time.sleep(0.05)
    error = capsys.readouterr().err
    assert error.startswith("error: the checkpoint of audit batch 1 could not be written (")
    assert str(tmp_path) not in error
