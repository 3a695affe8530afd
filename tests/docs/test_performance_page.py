"""The performance page's table is rendered from the committed results file at build time
(``docs/hooks/performance.py``); the commentary around it quotes the same run's ratios by
hand. Held here to that table, so a new results file cannot leave the page quoting the
previous run."""

from __future__ import annotations

import json
import re
from pathlib import Path

from bench.report import rows
from docs.hooks.performance import MARKER, RESULTS, on_page_markdown, table

DOCS = Path(__file__).parents[2] / "docs"
PAGE = (DOCS / "explanation" / "performance.md").read_text()
TIMES = "\N{MULTIPLICATION SIGN}"
RATIO = re.compile(rf"{TIMES}(\d+\.\d+)|(\d+\.\d+){TIMES}")


def rendered_table() -> str:
    results = json.loads((DOCS / RESULTS).read_text())
    return table(results, rows(results))


def test_the_page_holds_the_table_rendered_from_the_results_file():
    assert MARKER in PAGE
    assert rendered_table() in on_page_markdown(PAGE, None, {"docs_dir": str(DOCS)}, None)


def test_every_ratio_the_commentary_quotes_is_one_of_the_rendered_table():
    figures = rendered_table()
    quoted = [
        match.group(0)
        for match in RATIO.finditer(PAGE)
        # the whole figure: x1.1 is not quoting a table's x1.14
        if not re.search(
            rf"(?<![\d.])x{match.group(1)}(?![\d.])"
            if match.group(1)
            else rf"(?<![\d.]){match.group(2)}x(?![\d.])",
            figures,
        )
    ]
    assert quoted == []
