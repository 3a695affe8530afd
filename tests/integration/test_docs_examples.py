"""The manual's promises about itself: its examples run (the root ``conftest.py`` runs
them), the few that cannot are marked, no page installs the package from an index it is not
on, and the changelog names the version installed."""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^[ \t]*(`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
PYTHON = re.compile(r"^(py|python|python3|pycon)\b|\.(py|python)\b")
INCLUDE = re.compile(r'^--8<-- "[^"]+"$')
MOST_SKIPPED = 5


def python_blocks(page: Path) -> Iterator[tuple[str, str, list[str]]]:
    """``(info string, the line before the fence, the block's lines)`` of each fenced block
    whose info string names Python, in any form (``python``, ``py``, ``{ .python }``)."""
    lines = page.read_text().splitlines()
    opened: tuple[int, str, str] | None = None
    for number, line in enumerate(lines):
        fence = FENCE.match(line)
        if fence is None:
            continue
        if opened is None:
            opened = (number, fence.group(1), fence.group("info").strip())
        elif line.strip().startswith(opened[1]) and not fence.group("info").strip():
            start, _, info = opened
            if PYTHON.search(info):
                yield info, lines[start - 1] if start else "", lines[start + 1 : number]
            opened = None


def blocks(kind: str) -> list[str]:
    """Every Python block of the pages of one kind: ``run`` (Sybil runs it), ``skip``
    (fenced ``python skip``), ``included`` (a file's part the page includes, marked "not
    run" on the line before: the file's own tests run it) or ``unmarked`` (none of these)."""
    found = []
    for page in PAGES:
        for info, before, body in python_blocks(page):
            if info == "python":
                found_kind = "run"
            elif info == "python skip":
                found_kind = "skip"
            elif "not run" in before and body and all(INCLUDE.match(line) for line in body):
                found_kind = "included"
            else:
                found_kind = "unmarked"
            if found_kind == kind:
                found.append(f"{page.relative_to(ROOT)}: ```{info}")
    return found


def test_every_python_block_is_run_or_marked_not_run() -> None:
    assert blocks("run")
    assert blocks("unmarked") == []


def test_at_most_a_handful_of_python_blocks_are_not_run() -> None:
    assert len(blocks("skip")) <= MOST_SKIPPED, blocks("skip")


def test_every_page_is_one_whose_examples_run() -> None:
    spec = importlib.util.spec_from_file_location("root_conftest", ROOT / "conftest.py")
    assert spec is not None
    assert spec.loader is not None
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    missed = [
        page.relative_to(ROOT)
        for page in PAGES
        if not any(page.relative_to(ROOT).match(pattern) for pattern in conftest.PAGES)
    ]
    assert missed == []


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
