"""The tutorial shows the files of ``examples/clinic`` by inclusion (``--8<--``), and
those files' tests are what proves it runs: both links are held here."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).parents[2]
TUTORIAL = ROOT / "docs" / "tutorial" / "index.md"
INCLUDE = re.compile(r'^--8<-- "([^":]+):([a-z-]+)"$', re.MULTILINE)


def test_every_part_the_tutorial_includes_is_marked_in_its_example_file():
    included = INCLUDE.findall(TUTORIAL.read_text())
    assert len(included) >= 8
    for path, section in included:
        source = (ROOT / path).read_text()
        assert f"# --8<-- [start:{section}]" in source, (path, section)
        assert f"# --8<-- [end:{section}]" in source, (path, section)


def test_the_plain_pytest_command_runs_the_examples_tests():
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    assert "examples" in config["tool:pytest"]["testpaths"].split()
