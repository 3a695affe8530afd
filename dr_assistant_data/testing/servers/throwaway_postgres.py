"""PostgreSQL servers of one's own, for faults a shared server must not suffer, and a
primary with a streaming replica (``pg_basebackup -R``) for the read-replica tests.

``initdb`` refuses to run as root, so the server runs as the ``postgres`` OS user (through
``runuser`` when run as root), in a temporary directory, on a free port, with trust
authentication on 127.0.0.1 only. Callers stop, kill and restart it; the context managers
stop it (a crash stop: nothing is worth a checkpoint) and remove its directory when the
block ends, also on an exception.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .ports import free_port

BIN = Path(os.environ.get("POSTGRES_BIN", "/usr/lib/postgresql/15/bin"))
OS_USER = "postgres"


class ThrowawayPostgres:
    def __init__(self, root: Path, name: str = "data", options: str = "") -> None:
        self.options = options  # extra server options, e.g. "-c ssl=on"
        self.data = root / name
        self.port = free_port()
        self.url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", OS_USER, "--"] if os.geteuid() == 0 else []
        result = subprocess.run(  # noqa: S603 - the PostgreSQL programs of BIN
            [*prefix, *command], capture_output=True, text=True, timeout=60, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stderr.strip()}")

    def _pg_ctl(self, *arguments: str) -> None:
        self._run(str(BIN / "pg_ctl"), "-D", str(self.data), "-w", *arguments)

    def init(self) -> None:
        self._run(str(BIN / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")

    def clone_of(self, primary: ThrowawayPostgres) -> None:
        """Make this server a streaming replica of ``primary`` (a base backup that writes
        its own ``standby.signal`` and ``primary_conninfo``)."""
        self._run(
            str(BIN / "pg_basebackup"),
            *("-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres"),
            *("-D", str(self.data), "-R", "-X", "stream", "-c", "fast"),
        )

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.data} "
            f"-c fsync=off -c max_connections=40 {self.options}"
        )
        self._pg_ctl("-o", options, "-l", str(self.data / "server.log"), "start")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: a clean shutdown that ends sessions; ``immediate``: a crash."""
        self._pg_ctl("-m", mode, "stop")

    def promote(self) -> None:
        """End a standby's recovery: it becomes a primary, on a new timeline."""
        self._pg_ctl("-w", "promote")

    def restart(self) -> None:
        self.stop()
        self.start()

    @property
    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()


def own_root() -> Path:
    root = Path(tempfile.mkdtemp(prefix="dr-assistant-pg-"))
    if os.geteuid() == 0:
        user = pwd.getpwnam(OS_USER)
        os.chown(root, user.pw_uid, user.pw_gid)
    return root


@contextlib.contextmanager
def postgres_server(options: str = "") -> Iterator[ThrowawayPostgres]:
    """A running server of one's own (``options``: extra server options)."""
    root = own_root()
    server = ThrowawayPostgres(root, options=options)
    try:
        server.init()
        server.start()
        yield server
    finally:
        _remove(root, server)


@contextlib.contextmanager
def primary_with_replica() -> Iterator[tuple[ThrowawayPostgres, ThrowawayPostgres]]:
    """A primary and a hot-standby streaming replica of it, each on a port of its own."""
    root = own_root()
    primary, replica = ThrowawayPostgres(root, "primary"), ThrowawayPostgres(root, "replica")
    try:
        primary.init()
        primary.start()
        replica.clone_of(primary)
        replica.start()
        yield primary, replica
    finally:
        _remove(root, replica, primary)


def _remove(root: Path, *servers: ThrowawayPostgres) -> None:
    for server in servers:
        if server.running:
            server.stop("immediate")
    shutil.rmtree(root, ignore_errors=True)
