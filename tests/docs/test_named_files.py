"""The pages name the files they describe (`relational/caching/policy.py`,
`tests/migrations/test_migrations.py`): each such path names a file or folder that exists,
from the repository's root or the package's, so a module moved or split cannot leave the
manual pointing at nothing."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
PAGES = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]
PATH = re.compile(r"`([\w.-]+(?:/[\w.-]+)+/?)`")
NOT_FILES_HERE = {
    "models/__init__.py": "relational/models/, named just before it",
    "AUDIT_CHECKPOINT_DIR/audit-checkpoints.jsonl": "under a directory a setting names",
    "Patient/1": "a FHIR reference",
    "tests/test_schedule.py": "an application's own test module",
    "Asia/Kolkata": "a time zone",
}


def test_every_path_a_page_names_exists():
    missing = sorted(
        f"{page.relative_to(ROOT)}: {path}"
        for page in PAGES
        for path in PATH.findall(page.read_text())
        if not any(mark in path for mark in ("<", "*", "NNNN"))
        and path not in NOT_FILES_HERE
        and not (ROOT / path).exists()
        and not (ROOT / "dr_assistant_data" / path).exists()
    )
    assert missing == []
