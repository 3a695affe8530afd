"""A TCP proxy in front of PostgreSQL that loses a COMMIT, or its reply, on demand.

    with PostgresProxy(("127.0.0.1", 5432)) as proxy:
        url = f"postgresql+psycopg2://postgres@127.0.0.1:{proxy.port}/db?sslmode=disable"
        proxy.arm_drop_commit_reply()   # the next COMMIT reaches the server and commits;
                                        # its reply is dropped and the connection cut
        proxy.arm_drop_commit()         # the next COMMIT never reaches the server
        proxy.cut_all()                 # close every connection now
        proxy.go_down()                 # cut all, and refuse new connections ...
        proxy.come_back()               # ... until this

The proxy runs its own threads, so a test (or any process) starts it and goes on. It reads
the frontend stream as PostgreSQL's wire protocol (the untyped startup and SSL/GSS requests,
then typed messages) to find a simple query ending with ``COMMIT``; use ``sslmode=disable`` so the
stream stays readable. An armed fault fires once, on the first COMMIT of any connection.

Run as a program (``python -m dr_assistant_data.testing.servers.tcp_proxy TARGET_PORT``) it
prints its port, then reads commands, one a line, on its standard input:
``drop-commit-reply``, ``drop-commit``, ``cut``, ``down``, ``up``, so a process of a fault
campaign can drive it through a pipe.
"""

from __future__ import annotations

import contextlib
import select
import socket
import struct
import sys
import threading
from types import TracebackType
from typing import Self

SSL_REQUEST = 80877103
GSS_REQUEST = 80877104
READY_FOR_QUERY = b"Z"


class Fault:
    NONE = "none"
    DROP_COMMIT = "drop-commit"
    DROP_COMMIT_REPLY = "drop-commit-reply"


class PostgresProxy:
    """Forwards 127.0.0.1:``port`` to ``target``; see the module docstring for faults."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._lock = threading.Lock()
        self._fault = Fault.NONE
        self._pairs: set[_Pair] = set()
        self._closed = False
        self._down = False
        self._down_after_fault = False
        self.fired = threading.Event()
        """Set when an armed fault has fired."""
        self._thread = threading.Thread(target=self._accept, daemon=True, name="pg-proxy")

    def start(self) -> Self:
        self._thread.start()
        return self

    def arm_drop_commit_reply(self, *, then_go_down: bool = False) -> None:
        """The next COMMIT is forwarded; once the server has answered, the answer is
        dropped and both sockets of that connection are closed. ``then_go_down``: the
        server then becomes unreachable (``go_down``) until ``come_back``."""
        self._arm(Fault.DROP_COMMIT_REPLY, then_go_down=then_go_down)

    def arm_drop_commit(self) -> None:
        """The next COMMIT is not forwarded: both sockets of that connection are closed,
        so the server sees its client vanish inside the transaction."""
        self._arm(Fault.DROP_COMMIT)

    def cut_all(self) -> None:
        """Close every connection open through the proxy."""
        with self._lock:
            pairs = list(self._pairs)
        for pair in pairs:
            pair.close()

    def go_down(self) -> None:
        """Cut every connection and close new ones at once, as an unreachable server."""
        self._down = True
        self.cut_all()

    def come_back(self) -> None:
        self._down = False

    def close(self) -> None:
        self._closed = True
        self._listener.close()
        self.cut_all()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _arm(self, fault: str, *, then_go_down: bool = False) -> None:
        with self._lock:
            self._fault, self._down_after_fault = fault, then_go_down
            self.fired.clear()

    def disarm(self) -> None:
        """Withdraw an armed fault that has not fired."""
        self._take_fault()

    def _take_fault(self) -> str:
        """The armed fault, disarmed: it fires once."""
        with self._lock:
            fault, self._fault = self._fault, Fault.NONE
            return fault

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _address = self._listener.accept()
            except OSError:
                return
            if self._down:
                client.close()
                continue
            try:
                server = socket.create_connection(self.target)
            except OSError:
                client.close()
                continue
            pair = _Pair(self, client, server)
            with self._lock:
                self._pairs.add(pair)
            threading.Thread(target=pair.run, daemon=True, name="pg-proxy-pair").start()

    def _fired(self) -> None:
        if self._down_after_fault:
            self.go_down()
        self.fired.set()

    def _forget(self, pair: _Pair) -> None:
        with self._lock:
            self._pairs.discard(pair)


class _Pair:
    """One client connection and its server connection."""

    def __init__(self, proxy: PostgresProxy, client: socket.socket, server: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.server = server
        self._frontend = _FrontendParser()

    def run(self) -> None:
        try:
            self._pump()
        except (OSError, ValueError):  # ValueError: a socket closed by cut_all meanwhile
            pass
        finally:
            self.close()
            self.proxy._forget(self)

    def close(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _pump(self) -> None:
        while True:
            readable, _, _ = select.select([self.client, self.server], [], [])
            if self.server in readable:
                data = self.server.recv(65536)
                if not data:
                    return
                self.client.sendall(data)
            if self.client in readable:
                data = self.client.recv(65536)
                if not data:
                    return
                if not self._forward_frontend(data):
                    return

    def _forward_frontend(self, data: bytes) -> bool:
        """Forward client bytes; False once a fault has ended the connection."""
        for message in self._frontend.feed(data):
            if _is_commit(message):
                fault = self.proxy._take_fault()
                if fault == Fault.DROP_COMMIT:
                    self.proxy._fired()
                    return False
                if fault == Fault.DROP_COMMIT_REPLY:
                    self.server.sendall(message)
                    self._await_reply()
                    self.proxy._fired()
                    return False
            self.server.sendall(message)
        return True

    def _await_reply(self) -> None:
        """Read (and drop) the server's answer, up to its ReadyForQuery."""
        received = b""
        while READY_FOR_QUERY not in received:
            data = self.server.recv(65536)
            if not data:
                return
            received += data


class _FrontendParser:
    """Splits the client's byte stream into whole protocol messages."""

    def __init__(self) -> None:
        self._buffer = b""
        self._started = False

    def feed(self, data: bytes) -> list[bytes]:
        self._buffer += data
        messages: list[bytes] = []
        while True:
            header = 4 if not self._started else 5
            if len(self._buffer) < header:
                return messages
            length = struct.unpack("!I", self._buffer[header - 4 : header])[0]
            size = length + header - 4
            if len(self._buffer) < size:
                return messages
            message, self._buffer = self._buffer[:size], self._buffer[size:]
            if not self._started:
                code = struct.unpack("!I", message[4:8])[0] if length >= 8 else 0
                self._started = code not in (SSL_REQUEST, GSS_REQUEST)
            messages.append(message)


def _is_commit(message: bytes) -> bool:
    """A simple query that is, or ends with, ``COMMIT`` (the layer sends a transaction's
    last statements and its COMMIT in one query)."""
    query = message[5:].rstrip(b"\x00").strip().upper()
    return message[:1] == b"Q" and (query == b"COMMIT" or query.endswith(b"; COMMIT"))


def main() -> None:
    commands = {
        Fault.DROP_COMMIT_REPLY: "arm_drop_commit_reply",
        Fault.DROP_COMMIT: "arm_drop_commit",
        "cut": "cut_all",
        "down": "go_down",
        "up": "come_back",
    }
    with PostgresProxy(("127.0.0.1", int(sys.argv[1]))) as proxy:
        print(proxy.port, flush=True)
        for line in sys.stdin:
            command = commands.get(line.strip())
            if command is not None:
                getattr(proxy, command)()


if __name__ == "__main__":
    main()
