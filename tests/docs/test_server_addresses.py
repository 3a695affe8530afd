"""The README's promise about the tests' servers: every test takes PostgreSQL from
``TEST_DATABASE_ADMIN_URL`` and Redis from ``TEST_REDIS_URL`` (``tests/helpers/layers.py``
reads both, with the local defaults). No other test file, fault campaign or test helper
names the default servers' addresses, so a run pointed elsewhere never touches them."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
SOURCES = ("tests", "chaos", "examples", "dr_assistant_data/testing")
DEFAULT_SERVER = re.compile(
    r"(127\.0\.0\.1|localhost):(5432|6379)\b|Settings\(\)\.(redis_url|database_url)"
)
ALLOWED = {
    "tests/helpers/layers.py": "where the two variables are read, with their defaults",
    "tests/layer/test_settings.py": "the defaults of Settings are what it tests",
    "tests/integration/test_compose.py": "the port compose.yaml publishes is what it tests",
    "tests/docs/test_server_addresses.py": "this file",
}


def test_only_the_helper_reading_the_variables_names_the_default_servers():
    naming = sorted(
        str(path.relative_to(ROOT))
        for source in SOURCES
        for path in (ROOT / source).rglob("*.py")
        if str(path.relative_to(ROOT)) not in ALLOWED and DEFAULT_SERVER.search(path.read_text())
    )
    assert naming == []
