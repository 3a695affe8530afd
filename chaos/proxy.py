"""A TCP proxy in front of PostgreSQL that reads the client's protocol messages, so it can
lose a COMMIT, or the reply to one, as a real network can.

``arm_drop_commit_reply()``: the next COMMIT of a transaction that wrote is forwarded; the
server commits, and its reply is thrown away as both sides' sockets are closed (the
client cannot tell whether it committed). ``arm_drop_commit()``: the next such COMMIT is
never forwarded; the connection is closed and the server rolls back. ``cut_all()``
closes every connection. Each arming fires once; ``fired`` counts the drops done.

Only the simple-query protocol (what psycopg2 speaks) is inspected; any other message is
passed through untouched.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

from .servers import free_port

REQUESTS_BEFORE_STARTUP = {80877103, 80877104}  # SSLRequest, GSSENCRequest
WRITES = (b"INSERT", b"UPDATE", b"DELETE")


class _Connection:
    """One client and its server socket; the client-to-server side is parsed."""

    def __init__(self, client: socket.socket, server: socket.socket) -> None:
        self.client = client
        self.server = server
        self.wrote = False
        self.drop_reply = False

    def close(self) -> None:
        for sock in (self.client, self.server):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()


class CommitProxy:
    def __init__(self, target_port: int) -> None:
        self.target = target_port
        self.port = free_port()
        self.fired = 0
        self._armed: str | None = None
        self._lock = threading.Lock()
        self._connections: set[_Connection] = set()
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.05)
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def arm_drop_commit_reply(self) -> None:
        self._armed = "reply"

    def arm_drop_commit(self) -> None:
        self._armed = "commit"

    def disarm(self) -> None:
        self._armed = None

    def cut_all(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, set()
        for connection in connections:
            connection.close()

    def close(self) -> None:
        self._stopped.set()
        self._thread.join(5)
        self._listener.close()
        self.cut_all()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            try:
                server = socket.create_connection(("127.0.0.1", self.target), 5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            connection = _Connection(client, server)
            with self._lock:
                self._connections.add(connection)
            threading.Thread(target=self._requests, args=(connection,), daemon=True).start()
            threading.Thread(target=self._replies, args=(connection,), daemon=True).start()

    def _take(self) -> str | None:
        with self._lock:
            armed, self._armed = self._armed, None
            if armed:
                self.fired += 1
            return armed

    def _requests(self, connection: _Connection) -> None:
        buffer = b""
        started = False
        with contextlib.suppress(OSError):
            while chunk := connection.client.recv(65536):
                buffer += chunk
                while True:
                    message, buffer, started = _next_message(buffer, started)
                    if message is None:
                        break
                    if not self._forward(connection, message):
                        connection.close()
                        return
        connection.close()

    def _forward(self, connection: _Connection, message: bytes) -> bool:
        """Send ``message`` on, or act on an armed drop; False ends the connection."""
        if message[:1] == b"Q":
            query = message[5:].lstrip().upper()
            if query.startswith(WRITES):
                connection.wrote = True
            elif query.startswith(b"ROLLBACK"):
                connection.wrote = False
            elif query.startswith((b"COMMIT", b"END")):
                wrote, connection.wrote = connection.wrote, False
                if wrote and self._armed and (armed := self._take()):
                    if armed == "commit":
                        return False
                    connection.drop_reply = True
        connection.server.sendall(message)
        return True

    def _replies(self, connection: _Connection) -> None:
        with contextlib.suppress(OSError):
            while chunk := connection.server.recv(65536):
                if connection.drop_reply:
                    break  # the server answered the COMMIT: it is done; the client never hears
                connection.client.sendall(chunk)
        connection.close()
        with self._lock:
            self._connections.discard(connection)


def _next_message(buffer: bytes, started: bool) -> tuple[bytes | None, bytes, bool]:
    """The first whole message of ``buffer`` (None if incomplete), the rest, and whether
    the startup message has gone by (before it, messages have no type byte)."""
    header = 4 if not started else 5
    if len(buffer) < header:
        return None, buffer, started
    length = struct.unpack("!I", buffer[header - 4 : header])[0] + header - 4
    if len(buffer) < length:
        return None, buffer, started
    message, rest = buffer[:length], buffer[length:]
    if not started:
        code = struct.unpack("!I", message[4:8])[0] if length >= 8 else 0
        started = code not in REQUESTS_BEFORE_STARTUP
    return message, rest, started
