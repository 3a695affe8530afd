"""Which stores the application cannot run without, judged from ``dl.health()``.

PostgreSQL (every structured record) and MongoDB (clinical notes, recordings) are
required: without them a request cannot be served correctly, so a container health check
should fail. Redis is optional: the layer serves from the databases when the cache is
down, so an unreachable Redis is reported but keeps the process healthy.

Each store's section names where the store is (:func:`store_addresses`: host, port and
database, never a user name, password or file path), up or down.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url

from .settings import Settings

REQUIRED_STORES = ("postgres", "mongodb")
EMBEDDED = {"sqlite": "embedded (SQLite)", "mongomock": "embedded (in memory)"}
_PORT = re.compile(r":\d+$")


def failing_required(report: dict[str, dict[str, Any]]) -> list[str]:
    """The required stores the report shows as down (or absent), in order."""
    return [store for store in REQUIRED_STORES if not report.get(store, {}).get("ok", False)]


def store_addresses(settings: Settings) -> dict[str, str]:
    """Where each store of ``settings`` is, without credentials: ``host:port/database``
    (several hosts comma-separated), or what an embedded store is."""
    database = make_url(settings.database_url)
    if database.get_backend_name() == "sqlite":
        postgres = EMBEDDED["sqlite"]
    else:
        postgres = f"{database.host or 'localhost'}:{database.port or 5432}/{database.database}"
    if settings.redis_cluster_nodes:
        redis = "cluster " + ",".join(settings.redis_cluster_nodes)
    elif settings.redis_sentinels:
        sentinels = ",".join(settings.redis_sentinels)
        redis = f"sentinels {sentinels}, master {settings.redis_sentinel_master}"
    else:
        redis = _location(settings.redis_url, 6379)
    return {
        "postgres": postgres,
        "mongodb": _location(settings.mongodb_uri, 27017),
        "redis": redis,
    }


def _location(url: str, default_port: int) -> str:
    """``host:port/path`` of a server URL (every host of a multi-host one), its user and
    password left out; a DNS seed list (``+srv``) has no port."""
    parts = urlsplit(url)
    if parts.scheme in EMBEDDED:
        return EMBEDDED[parts.scheme]
    if parts.scheme == "memory":
        return "embedded (in process)"
    if not parts.netloc:
        return f"{parts.scheme} socket"
    hosts = parts.netloc.rpartition("@")[2].split(",")
    if not parts.scheme.endswith("+srv"):
        hosts = [host if _PORT.search(host) else f"{host}:{default_port}" for host in hosts]
    return ",".join(hosts) + parts.path
