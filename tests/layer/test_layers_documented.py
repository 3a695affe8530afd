"""The layers CONTRIBUTING.md and the architecture page show are the ones ``setup.cfg``'s
contracts check, in the same order: a package placed anew in a contract is placed anew in
the docs, or this fails."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARCHITECTURE = ROOT / "docs" / "explanation" / "architecture.md"


def contract(name: str) -> list[set[str]]:
    """The layers of one contract, top first, each a set of names relative to its container."""
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    lines = config[f"importlinter:contract:{name}"]["layers"].strip().splitlines()
    return [
        {name.strip().removeprefix("dr_assistant_data.") for name in line.split("|")}
        for line in lines
    ]


def code_blocks(text: str) -> list[str]:
    """The text of every fenced block (every other fence opens one)."""
    return re.split(r"^```.*\n", text, flags=re.MULTILINE)[1::2]


def arrows(block: str) -> list[set[str]]:
    """``a | b -> c -> d`` as [{a, b}, {c}, {d}]: what each step names, its comment left out."""
    steps = " ".join(re.split(r"\s{2,}", line.strip())[0] for line in block.splitlines())
    return [{name.strip() for name in step.split("|")} for step in steps.split("->")]


def test_the_contributors_guide_lists_the_layers_of_the_contract():
    text = (ROOT / "CONTRIBUTING.md").read_text()
    section = text.split("## The layers\n")[1].split("\n## ")[0]
    items = re.findall(r"^\d+\. (.+?):", section, flags=re.MULTILINE)
    assert [set(re.findall(r"`(\w+)`", item)) for item in items] == contract("layers")


def test_the_architecture_page_draws_the_layers_of_the_contract():
    [block] = [b for b in code_blocks(ARCHITECTURE.read_text()) if b.startswith("flask |")]
    assert arrows(block) == contract("layers")


def test_the_architecture_page_draws_the_layers_inside_relational():
    [block] = [b for b in code_blocks(ARCHITECTURE.read_text()) if b.startswith("session |")]
    assert arrows(block) == contract("relational")
