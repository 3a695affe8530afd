"""A PgBouncer of one's own, in transaction mode, in front of a PostgreSQL server.

Started like the throwaway PostgreSQL servers: a configuration in a temporary directory, a
free port, trust authentication to the server, run as the ``postgres`` OS user (PgBouncer
refuses to run as root). It forwards every database name (``*``) to the server of the URL
it is given, keeps one server connection per database and user (so consecutive
transactions share it, as they do on a busy production pooler), and refuses startup
parameters it does not know, ``options`` included, as PgBouncer does by default. Stopped by
the PID it recorded, and its directory removed, when the ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy.engine import make_url

from .ports import free_port, listening
from .throwaway_postgres import OS_USER, own_root

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
    """A PgBouncer in ``root`` forwarding to the server of ``server_url`` (any database
    URL on it)."""

    def __init__(self, root: Path, server_url: str) -> None:
        self.root = root
        self.server = make_url(server_url)
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
                server_host=self.server.host or "127.0.0.1",
                server_port=self.server.port or 5432,
            )
        )
        (self.root / "users.txt").write_text('"postgres" ""\n')
        prefix = ["runuser", "-u", OS_USER, "--"] if os.geteuid() == 0 else []
        subprocess.run(  # noqa: S603 - pgbouncer on a configuration of ours
            [*prefix, BINARY, "-d", str(config)], check=True, timeout=30
        )
        deadline = time.monotonic() + 30
        while not listening(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"pgbouncer is not listening on port {self.port}")
            time.sleep(0.1)

    def stop(self) -> None:
        pidfile = self.root / "pgbouncer.pid"
        if pidfile.exists():
            os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)


@contextlib.contextmanager
def pgbouncer_server(server_url: str) -> Iterator[PgBouncer]:
    """A running PgBouncer in front of the server of ``server_url``."""
    if not Path(BINARY).exists():
        raise RuntimeError("pgbouncer is not installed: set PGBOUNCER_BIN or apt-get install it")
    root = own_root()
    bouncer = PgBouncer(root, server_url)
    try:
        bouncer.start()
        yield bouncer
    finally:
        bouncer.stop()
        shutil.rmtree(root, ignore_errors=True)
