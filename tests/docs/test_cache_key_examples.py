"""The cache keys the pages show as examples are keys the code builds: the same parts in
the same order, the id in braces (the Redis Cluster hash tag), a day after it where the
read has one. The database tag, the schema tag and the id are the example's own."""

from __future__ import annotations

import re
import uuid
from datetime import date
from pathlib import Path

from dr_assistant_data.cache.keys import CacheKeys, schema_tag
from dr_assistant_data.relational.caching.policy import POLICY, CachedRead, LocalDay

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
EXAMPLE = re.compile(r"dr_assistant:[0-9a-f]{16}:v1:[^`\s]+")
DATABASE, ID, DAY = "0123456789abcdef", uuid.UUID(int=1), date(2026, 12, 8)


def shape(read: CachedRead) -> re.Pattern[str]:
    """A key of ``read`` as the code builds it, its tags and id left open."""
    parts = [DAY if isinstance(part, LocalDay) else ID for part in read.key]
    built = read.name(_Store(), *parts)  # type: ignore[arg-type]
    built = built.replace(DATABASE, "DATABASETAG").replace(str(ID), "IDPART")
    built = built.replace(str(DAY), "DAYPART")
    built = built.replace(f":{schema_tag(read.model.__table__)}:", ":SCHEMATAG:")
    return re.compile(
        re.escape(built)
        .replace("DATABASETAG", "[0-9a-f]{16}")
        .replace("SCHEMATAG", "[0-9a-f]{8}")
        .replace("IDPART", "[^{}:]+")
        .replace("DAYPART", "[0-9]{4}-[0-9]{2}-[0-9]{2}")
    )


class _Store:
    keys = CacheKeys("dr_assistant:", DATABASE)


def test_every_example_key_has_the_shape_of_a_key_the_policy_builds():
    examples = [match.group(0) for page in PAGES for match in EXAMPLE.finditer(page.read_text())]
    shapes = [shape(read) for read in POLICY]
    assert examples
    assert [key for key in examples if not any(s.fullmatch(key) for s in shapes)] == []
