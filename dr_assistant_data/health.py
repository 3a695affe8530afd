"""Which stores the application cannot run without, judged from ``dl.health()``.

PostgreSQL (every structured record) and MongoDB (clinical notes, recordings) are
required: without them a request cannot be served correctly, so a container health check
should fail. Redis is optional: the layer serves from the databases when the cache is
down, so an unreachable Redis is reported but keeps the process healthy.
"""

from __future__ import annotations

from typing import Any

REQUIRED_STORES = ("postgres", "mongodb")


def failing_required(report: dict[str, dict[str, Any]]) -> list[str]:
    """The required stores the report shows as down (or absent), in order."""
    return [store for store in REQUIRED_STORES if not report.get(store, {}).get("ok", False)]
