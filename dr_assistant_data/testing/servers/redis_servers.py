"""Throwaway Redis servers (one, a Sentinel-watched master and replica, a Cluster) and a TCP
proxy that can cut the line while Redis keeps its data."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

from .ports import eventually, free_port, listening


@contextlib.contextmanager
def redis_processes() -> Iterator[Callable[..., int]]:
    """``start(*arguments)`` runs a ``redis-server`` on a free port and returns the port;
    every server started is stopped when the block ends."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is not installed"
    processes: list[subprocess.Popen[bytes]] = []

    def start(*arguments: str, port: int | None = None) -> int:
        port = port or free_port()
        command = [binary, *arguments, "--port", str(port), "--bind", "127.0.0.1"]
        server = subprocess.Popen(command, stdout=subprocess.DEVNULL)  # noqa: S603 - redis-server
        processes.append(server)
        eventually(lambda: listening(port), f"redis on port {port}")
        return port

    try:
        yield start
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(10)


NO_PERSISTENCE = ("--save", "", "--appendonly", "no")


@contextlib.contextmanager
def throwaway_redis() -> Iterator[int]:
    """A ``redis-server`` on a free port, without persistence; stopped afterwards."""
    with redis_processes() as start:
        yield start(*NO_PERSISTENCE)


def start_sentinel_set(
    start: Callable[..., int], folder: Path, master_name: str = "clinic"
) -> tuple[int, int, list[int]]:
    """With ``start`` (from :func:`redis_processes`), run a master, a replica of it and
    three sentinels watching them (configs in ``folder``); returns their ports."""
    prompt = ("--repl-diskless-sync-delay", "0")  # a replica syncs at once, not after 5 s
    own_dir = ("--dir", str(folder))  # where a replica writes the RDB file it is sent
    master = start(*NO_PERSISTENCE, *prompt, *own_dir)
    replica = start(*NO_PERSISTENCE, *prompt, *own_dir, "--replicaof", "127.0.0.1", str(master))
    following = redis.Redis(port=replica)
    eventually(
        lambda: following.info("replication")["master_link_status"] == "up",
        "the replica to sync",
    )
    following.close()
    sentinels = []
    for _ in range(3):
        port = free_port()
        config = Path(folder, f"sentinel-{port}.conf")
        config.write_text(
            f"sentinel monitor {master_name} 127.0.0.1 {master} 2\n"
            f"sentinel down-after-milliseconds {master_name} 1000\n"
            f"sentinel failover-timeout {master_name} 5000\n"
        )
        sentinels.append(start(str(config), "--sentinel", port=port))
    first = redis.Redis(port=sentinels[0])
    eventually(
        lambda: [r for r in first.sentinel_slaves(master_name) if r["flags"] == "slave"],
        "the sentinels to see the replica",
    )
    first.close()
    return master, replica, sentinels


@contextlib.contextmanager
def sentinel_deployment(master_name: str = "clinic") -> Iterator[list[int]]:
    """A master, a replica of it and three sentinels watching them; yields the sentinels'
    ports. A failover (``SENTINEL FAILOVER``) promotes the replica."""
    with tempfile.TemporaryDirectory() as folder, redis_processes() as start:
        yield start_sentinel_set(start, Path(folder), master_name)[2]


class Cluster:
    """A Redis Cluster of primaries (no replicas), every slot assigned, each node writing
    its RDB file in the cluster's folder: a node can be snapshotted (``SAVE``) and
    restarted (SIGKILL, then the same node again) from an older snapshot."""

    def __init__(self, start: Callable[..., int], folder: Path, masters: int) -> None:
        self._start = start
        self._folder = folder
        self._buses: dict[int, int] = {}
        self.ports = [free_port() for _ in range(masters)]
        for port in self.ports:
            self._buses[port] = free_port()
            self._launch(port)
        cli = shutil.which("redis-cli")
        assert cli, "redis-cli is not installed"
        subprocess.run(  # noqa: S603 - redis-cli on the ports just started
            [cli, "--cluster", "create", *(f"127.0.0.1:{p}" for p in self.ports), "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self._wait_until_ok()

    def _launch(self, port: int) -> None:
        self._start(
            *NO_PERSISTENCE,
            *("--cluster-enabled", "yes", "--cluster-node-timeout", "2000"),
            *("--cluster-config-file", str(self._folder / f"nodes-{port}.conf")),
            *("--cluster-port", str(self._buses[port])),
            *("--dir", str(self._folder), "--dbfilename", f"dump-{port}.rdb"),
            port=port,
        )

    def _wait_until_ok(self) -> None:
        for port in self.ports:
            node = redis.Redis(port=port)
            eventually(functools.partial(_cluster_ok, node), "the cluster to be ok")
            node.close()

    def snapshot(self, port: int) -> Path:
        """The node's data now, as an RDB file."""
        node = redis.Redis(port=port)
        node.save()
        node.close()
        kept = self._folder / f"snapshot-{port}-{time.monotonic_ns()}.rdb"
        shutil.copy(self._folder / f"dump-{port}.rdb", kept)
        return kept

    def restart(self, port: int, rdb: Path) -> None:
        """SIGKILL the node and start it again, same node of the cluster, from ``rdb``."""
        node = redis.Redis(port=port)
        os.kill(int(node.info("server")["process_id"]), signal.SIGKILL)
        node.close()
        eventually(lambda: not listening(port), f"redis on port {port} to die")
        shutil.copy(rdb, self._folder / f"dump-{port}.rdb")
        self._launch(port)
        self._wait_until_ok()


@contextlib.contextmanager
def cluster_deployment(masters: int = 3) -> Iterator[Cluster]:
    """A :class:`Cluster` of ``masters`` primaries, stopped when the block ends."""
    with tempfile.TemporaryDirectory() as folder, redis_processes() as start:
        yield Cluster(start, Path(folder), masters)


class Proxy:
    """Forwards 127.0.0.1:<port> to a Redis at ``host:target``. ``cut()`` drops every connection and
    refuses new ones (Redis itself keeps running, with its data); ``restore()`` reconnects.
    ``black_hole()`` accepts and reads but never answers (a hung server)."""

    def __init__(self, target: int, host: str = "127.0.0.1") -> None:
        self.target = target
        self.host = host
        self.port = free_port()
        self._mode = "open"
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.05)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def cut(self) -> None:
        self._mode = "cut"
        self._drop_all()

    def black_hole(self) -> None:
        self._mode = "black_hole"
        self._drop_all()

    def restore(self) -> None:
        self._mode = "open"

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(5)
        self._listener.close()
        self._drop_all()

    def _drop_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            if self._mode == "cut":
                client.close()
                continue
            with self._lock:
                self._sockets.append(client)
            if self._mode == "black_hole":
                continue
            upstream = socket.create_connection((self.host, self.target))
            with self._lock:
                self._sockets.append(upstream)
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _cluster_ok(node: redis.Redis) -> bool:
    return bool(node.cluster("info")["cluster_state"] == "ok")
