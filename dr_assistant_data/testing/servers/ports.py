"""Ports and waiting, shared by every server here: a free port to start on, whether
something listens on one, and a check repeated until it holds."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable

import redis


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    """Whether a server accepts connections on 127.0.0.1:``port``."""
    with socket.socket() as probe:
        probe.settimeout(0.1)
        return probe.connect_ex(("127.0.0.1", port)) == 0


def eventually(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Call ``check`` every 0.1 s until it returns a true value; a Redis or socket error
    counts as not yet. Raises ``AssertionError`` naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.RedisError, OSError):
            if check():
                return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")
