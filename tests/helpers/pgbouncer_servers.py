"""A PgBouncer of the tests' own, in transaction mode, in front of the shared PostgreSQL.

Started like the throwaway PostgreSQL servers: a configuration in a temporary directory, a
free port, trust authentication to the local server, run as the ``postgres`` OS user
(PgBouncer refuses to run as root). It forwards every database name (``*``) to the
server of ``TEST_DATABASE_ADMIN_URL``, keeps one server connection per database and user
(so consecutive transactions share it, as they do on a busy production pooler), and refuses startup
parameters it does not know, ``options`` included, as PgBouncer does by default. Stopped by
the PID it recorded, and its directory removed, at the end of the module.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.helpers.layers import ADMIN_URL
from tests.helpers.throwaway_postgres import OS_USER, free_port, own_root

SERVER = make_url(ADMIN_URL)

BINARY = os.environ.get("PGBOUNCER_BIN", "/usr/sbin/pgbouncer")

CONFIG = """\
[databases]
* = host={server_host} port={server_port}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {root}/users.txt
pool_mode = transaction
default_pool_size = 1
max_client_conn = 50
logfile = {root}/pgbouncer.log
pidfile = {root}/pgbouncer.pid
"""


class PgBouncer:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()

    def url(self, database_url: str) -> str:
        """``database_url`` (a database on the shared server) reached through the pooler."""
        url = make_url(database_url).set(host="127.0.0.1", port=self.port)
        return url.render_as_string(hide_password=False)

    def start(self) -> None:
        config = self.root / "pgbouncer.ini"
        config.write_text(
            CONFIG.format(
                port=self.port,
                root=self.root,
                server_host=SERVER.host or "127.0.0.1",
                server_port=SERVER.port or 5432,
            )
        )
        (self.root / "users.txt").write_text('"postgres" ""\n')
        prefix = ["runuser", "-u", OS_USER, "--"] if os.geteuid() == 0 else []
        subprocess.run([*prefix, BINARY, "-d", str(config)], check=True, timeout=30)
        deadline = time.monotonic() + 30
        while not _listening(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer is not listening on port {self.port}")
            time.sleep(0.1)

    def stop(self) -> None:
        pidfile = self.root / "pgbouncer.pid"
        if pidfile.exists():
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)


def _listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def pgbouncer() -> Iterator[PgBouncer]:
    if not Path(BINARY).exists():
        pytest.fail(f"{BINARY} is missing: apt-get install pgbouncer (.ci/run does)")
    root = own_root()
    bouncer = PgBouncer(root)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(root, ignore_errors=True)
