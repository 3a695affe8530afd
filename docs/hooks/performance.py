"""MkDocs hook: the performance page's table, rendered at build time from the committed
results of a ``python -m bench`` run, so the page cannot drift from the file.

The page holds the marker ``<!-- bench-table -->``; the rows are those the bench itself
prints (``bench.report.rows``), read from ``explanation/bench-results.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

MARKER = "<!-- bench-table -->"
RESULTS = "explanation/bench-results.json"


def _escape(cell: str) -> str:
    return cell.replace("|", "\\|")


def table(results: dict[str, Any], rows: list[tuple[str, str, str, str, str]]) -> str:
    """The rows as a Markdown table, with the run's options and machine beneath it."""
    lines = [
        "| operation | layer | compared with | its figure | ratio, target |",
        "|---|---|---|---|---|",
    ]
    lines += ["| " + " | ".join(_escape(cell) for cell in row) + " |" for row in rows]
    options = " ".join(
        f"--{name.replace('_', '-')} {value}"
        for name, value in sorted(results["options"].items())
        if name != "json"
    )
    machine = results["machine"]
    lines += [
        "",
        f"Run: `python -m bench {options}`, {results['seconds']:.0f} s, Python "
        f"{machine['python']} on {machine['cpus']} CPUs ({machine['platform']}).",
    ]
    return "\n".join(lines)


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    if MARKER not in markdown:
        return markdown
    root = Path(__file__).resolve().parents[2]  # the checkout holding docs/ and bench/
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))  # the bench is run from a checkout, not installed
    from bench.report import rows

    results = json.loads((Path(config["docs_dir"]) / RESULTS).read_text())
    return markdown.replace(MARKER, table(results, rows(results)))
