"""Checks for the values of chart records that no column type describes: an allergy's
reactions and a vital sign's measurement (``rules.OVERRIDES``)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ...errors import ValidationError
from ...values import fields as f
from ..vocabulary import REACTION_SEVERITIES

MAX_REACTIONS = 20
MAX_MANIFESTATIONS = 10
CODING: dict[str, f.Field] = {
    "code": f.Text(max_length=64, strip=True),
    "system": f.Text(max_length=255, strip=True),
    "display": f.Text(max_length=500, strip=True),
}
REACTION: dict[str, f.Field] = {
    "severity": f.Choice(values=REACTION_SEVERITIES),
    "description": f.Text(max_length=2000, strip=True),
    "onset_at": f.Text(max_length=35, strip=True),
}
UCUM_UNIT = f.Text(
    max_length=32,
    pattern=re.compile(r"[!-~]+"),
    expected="a UCUM unit (mm[Hg], /min, Cel, %, kg, cm, kg/m2...)",
    strip=True,
    nullable=False,
)


def _object(
    value: Any, allowed: Mapping[str, f.Field], field: str, also: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """``value``'s ``allowed`` keys, each cleaned (absent ones ``None``); a key neither
    allowed nor in ``also`` is refused."""
    if not isinstance(value, dict):
        raise ValidationError(field, "each entry must be an object")
    names = set(allowed) | also
    if set(value) - names:
        raise ValidationError(field, "holds a key that is not " + ", ".join(sorted(names)))
    return {key: check.clean(value.get(key), field) for key, check in allowed.items()}


@dataclass(frozen=True)
class Reactions(f.Field):
    """A list of reactions: each names at least one manifestation (a coding with a code,
    a display text, or both) and may give a severity (mild, moderate, severe), a
    description and an onset; cleaned to exactly those keys."""

    def convert(self, value: Any, field: str) -> list[dict[str, Any]]:
        if not isinstance(value, list | tuple) or len(value) > MAX_REACTIONS:
            raise ValidationError(field, f"must be a list of at most {MAX_REACTIONS} reactions")
        return [self._reaction(entry, field) for entry in value]

    def _reaction(self, entry: Any, field: str) -> dict[str, Any]:
        reaction = _object(entry, REACTION, field, frozenset({"manifestations"}))
        manifestations = entry.get("manifestations")
        if not isinstance(manifestations, list | tuple) or not (
            0 < len(manifestations) <= MAX_MANIFESTATIONS
        ):
            raise ValidationError(
                field, f"each reaction must name 1 to {MAX_MANIFESTATIONS} manifestations"
            )
        codings = [_object(each, CODING, field) for each in manifestations]
        if any(coding["code"] is None and coding["display"] is None for coding in codings):
            raise ValidationError(field, "each manifestation needs a code or a display text")
        return {"manifestations": codings, **reaction}


@dataclass(frozen=True)
class Measurement(f.Field):
    """A finite number within what a vital sign can measure in any unit."""

    limit: float = 1e6

    def convert(self, value: Any, field: str) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationError(field, "must be a number")
        if not math.isfinite(value) or not -self.limit < value < self.limit:
            raise ValidationError(field, "must be a finite number of a plausible size")
        return float(value)
