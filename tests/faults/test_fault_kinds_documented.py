"""The fault model's page names every fault the campaign can inject: a kind added to
``chaos/faults.py`` is described where readers look for what the guarantees survive, or
this fails."""

from __future__ import annotations

import re
from pathlib import Path

from chaos.faults import SENTINEL_KINDS, SINGLE_KINDS

GUARANTEES = Path(__file__).resolve().parents[2] / "docs" / "explanation" / "guarantees.md"


def test_the_fault_model_describes_every_fault_kind_of_the_campaign():
    faults = GUARANTEES.read_text().split("- **Faults**")[1].split("\n- **")[0]
    described = set(re.findall(r"`([a-z]+(?:_[a-z]+)+)`", faults))
    assert sorted((set(SINGLE_KINDS) | set(SENTINEL_KINDS)) - described) == []
