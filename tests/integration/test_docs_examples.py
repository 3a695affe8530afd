"""The manual's promises about itself: its examples run (the root ``conftest.py`` runs
them), the few that cannot are marked, no page installs the package from an index it is not
on, and the changelog names the version installed."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
PYTHON_FENCE = re.compile(r"^[ \t]*```+[ \t]*(py|python|python3)\b(?P<info>[^\n]*)$", re.M)
MOST_SKIPPED = 5


def test_every_python_block_is_run_or_marked_skip() -> None:
    unmarked = [
        f"{page.relative_to(ROOT)}: ```{match.group(1)}{match.group('info')}"
        for page in PAGES
        for match in PYTHON_FENCE.finditer(page.read_text())
        if (match.group(1), match.group("info").strip()) not in {("python", ""), ("python", "skip")}
    ]
    assert unmarked == []


def test_at_most_a_handful_of_python_blocks_are_not_run() -> None:
    skipped = [
        page.relative_to(ROOT)
        for page in PAGES
        for match in PYTHON_FENCE.finditer(page.read_text())
        if match.group("info").strip() == "skip"
    ]
    assert len(skipped) <= MOST_SKIPPED, skipped


def test_the_changelog_names_the_version_the_package_reports() -> None:
    releases = re.findall(r"^## \[(\d[^\]]*)\]", (ROOT / "CHANGELOG.md").read_text(), re.M)
    assert releases[0] == metadata.version("dr-assistant-data")


def test_no_page_installs_the_package_by_name_from_an_index() -> None:
    by_name = re.compile(r"pip install (-\S+ +)*[\"']?dr-assistant-data\b")
    naming = [
        f"{page.relative_to(ROOT)}: {match.group(0)}"
        for page in [*PAGES, ROOT / "CONTRIBUTING.md"]
        for match in by_name.finditer(page.read_text())
    ]
    assert naming == []  # it is on no index: from a checkout (".[extra]") or a built wheel
