"""What an import did with each resource: created, updated, skipped or refused.

An outcome names the resource by its type and its position in its source (the index of
the input file, and the line or entry number in it: file names may hold patient names),
a refusal by the FHIR element at fault and a reason code. No
outcome carries a value from the resource: no name, identifier, id or text, so a report
can be logged, shown or stored anywhere.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

CREATED, UPDATED, SKIPPED, REFUSED = "created", "updated", "skipped", "refused"
OUTCOMES = (CREATED, UPDATED, SKIPPED, REFUSED)

# reason codes of a refusal
INVALID = "invalid"  # the FHIR model or the layer's rules refuse the value
REQUIRED = "required"  # the schema needs an element the resource lacks
UNSUPPORTED_CODE = "unsupported_code"  # a code the schema has no equivalent for
UNSUPPORTED_TYPE = "unsupported_type"  # a resource type this import does not read
UNRESOLVED_REFERENCE = "unresolved_reference"  # names a resource found nowhere
TOO_LARGE = "too_large"  # a string or the whole resource beyond the limits
FORBIDDEN_KEY = "forbidden_key"  # a key no JSON resource has ('$...', '.')
NOT_JSON = "not_json"  # a line or entry that is not a JSON object
DUPLICATE = "duplicate"  # a unique value (MRN, ABHA number, email) taken by another record
CONFLICT = "conflict"  # the record it maps to cannot take it (another patient's encounter)
NOT_A_RECORD = "not_a_record"  # skipped: an index of other resources (a record's Composition)
SKIPPING = frozenset({UNSUPPORTED_TYPE, NOT_A_RECORD})
"""Codes of resources skipped rather than refused (when the resource type itself says so)."""

MAX_REFUSALS_KEPT = 10_000
"""Refusals listed one by one in a report; past this only their counts grow."""


class Refusal(Exception):
    """A resource the import cannot take: ``field`` (a FHIR path) and a reason ``code``."""

    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code


@dataclass(frozen=True)
class Outcome:
    source: int
    """The index of the input (file) among those given to the import, from 0."""
    position: int
    resource_type: str
    outcome: str
    field: str | None = None
    reason: str | None = None


@dataclass
class ImportReport:
    """Counts by resource type and outcome, and the refusals (without values)."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    refusals: list[Outcome] = field(default_factory=list)

    def add(self, outcome: Outcome) -> None:
        self.counts[(outcome.resource_type, outcome.outcome)] += 1
        if outcome.outcome == REFUSED and len(self.refusals) < MAX_REFUSALS_KEPT:
            self.refusals.append(outcome)

    def total(self, outcome: str | None = None) -> int:
        return sum(n for (_, kind), n in self.counts.items() if outcome in (None, kind))

    def table(self) -> dict[str, dict[str, int]]:
        """``{resource type: {outcome: count}}``, every outcome present, types sorted."""
        types = sorted({kind for kind, _ in self.counts})
        return {kind: {name: self.counts[(kind, name)] for name in OUTCOMES} for kind in types}

    def as_json(self) -> dict[str, object]:
        return {
            "totals": {name: self.total(name) for name in OUTCOMES},
            "by_type": self.table(),
            "refusals": [
                {
                    "source": item.source,
                    "position": item.position,
                    "resource_type": item.resource_type,
                    "field": item.field,
                    "reason": item.reason,
                }
                for item in self.refusals
            ],
        }
