"""What an import did with each resource, and what it kept of it.

Outcomes: ``created``, ``updated`` (something changed), ``linked`` (the resource is a
record another source brought, now known by this source's identifiers too, left as it
was), ``skipped`` (the record already holds exactly this), ``conflict`` (the record
holds other content, written by another source or earlier in this run, and was left as
it was), ``unsupported`` (a resource type the import does not read) and ``refused``.
A resource kept without one of its elements (an optional element that is not valid, an
element the schema does not hold) is listed among the elements dropped, with the element
and a reason.

An outcome names the resource by its type and its position in its source (the index of
the input file, and the line or entry number in it: file names may hold patient names),
a refusal by the FHIR element at fault and a reason code. No outcome carries a value
from the resource: no name, identifier, id or text, so a report can be logged, shown or
stored anywhere.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

CREATED, UPDATED, LINKED, SKIPPED = "created", "updated", "linked", "skipped"
CONFLICTED, UNSUPPORTED, REFUSED = "conflict", "unsupported", "refused"
OUTCOMES = (CREATED, UPDATED, LINKED, SKIPPED, CONFLICTED, UNSUPPORTED, REFUSED)
LISTED = (CONFLICTED, REFUSED)
"""Outcomes listed one by one in a report (the others are counted)."""

# reason codes of a refusal
INVALID = "invalid"  # the FHIR model or the layer's rules refuse the value
REQUIRED = "required"  # the schema needs an element the resource lacks
UNSUPPORTED_CODE = "unsupported_code"  # a code the schema has no equivalent for
UNSUPPORTED_TYPE = "unsupported_type"  # a resource type this import does not read
UNRESOLVED_REFERENCE = "unresolved_reference"  # names a resource found nowhere
CROSS_PATIENT = "cross_patient_reference"  # joins or moves a record of another patient
TOO_LARGE = "too_large"  # a string or the whole resource beyond the limits
TOO_DEEP = "too_deep"  # nested deeper than MAX_DEPTH
FORBIDDEN_KEY = "forbidden_key"  # a key no JSON resource has ('$...', '.')
NOT_JSON = "not_json"  # a line or entry that is not a JSON object
DUPLICATE = "duplicate"  # a unique value (MRN, ABHA number, email) taken by another record
CONFLICT = "conflict"  # the record it maps to cannot take it
NOT_A_RECORD = "not_a_record"  # skipped: an index of other resources (a record's Composition)
HELD_BY_NOTE = "held_by_note"  # skipped: a vital sign exported from a note, which holds it
# reason codes of a conflict
OTHER_SOURCE = "held_by_other_source"  # a record another source brought holds other values
SAME_RUN = "differs_within_run"  # this run wrote the record already, with other values
# reason codes of a file that could not be read
UNREADABLE = "unreadable"  # missing, a directory, a symlink loop, no permission
NOT_A_FILE = "not_a_file"  # a device, a pipe, a socket
# reason codes of an element dropped
NOT_KEPT = "not_kept"  # an element the schema has no place for
KEPT_AS_TEXT = "kept_as_text"  # a part of a note's text its fields cannot hold: in the text only
STOPPED = "stopped"  # the run stopped before the resource could be written

MAX_LISTED = 10_000
"""Refusals, conflicts and dropped elements listed one by one in a report; past this
only their counts grow."""


class Refusal(Exception):
    """A resource the import does not write: ``field`` (a FHIR path), a reason ``code``,
    and the ``outcome`` it counts as (refused, unless said otherwise)."""

    def __init__(self, field: str, code: str, outcome: str = REFUSED) -> None:
        super().__init__(f"{field}: {code}")
        self.field = field
        self.code = code
        self.outcome = outcome


@dataclass(frozen=True)
class Outcome:
    source: int
    """The index of the input (file) among those given to the import, from 0."""
    position: int
    resource_type: str
    outcome: str
    field: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Dropped:
    """An element left out of a resource that was kept."""

    source: int
    position: int
    resource_type: str
    field: str
    reason: str


@dataclass
class ImportReport:
    """Counts by resource type and outcome, the refusals and conflicts, and the elements
    dropped (without values). ``stopped`` is the reason the run ended early, if it did:
    the counts are then what was written before."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)
    refusals: list[Outcome] = field(default_factory=list)
    conflicts: list[Outcome] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)
    dropped_counts: Counter[tuple[str, str, str]] = field(default_factory=Counter)
    stopped: str | None = None

    def add(self, outcome: Outcome) -> None:
        self.counts[(outcome.resource_type, outcome.outcome)] += 1
        listed = {REFUSED: self.refusals, CONFLICTED: self.conflicts}.get(outcome.outcome)
        if listed is not None and len(listed) < MAX_LISTED:
            listed.append(outcome)

    def drop(self, element: Dropped) -> None:
        self.dropped_counts[(element.resource_type, element.field, element.reason)] += 1
        if len(self.dropped) < MAX_LISTED:
            self.dropped.append(element)

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
            "stopped": self.stopped,
            "refusals": [_listed(item) for item in self.refusals],
            "conflicts": [_listed(item) for item in self.conflicts],
            "dropped": [
                {"resource_type": kind, "field": path, "reason": reason, "count": count}
                for (kind, path, reason), count in sorted(self.dropped_counts.items())
            ],
        }


def _listed(item: Outcome) -> dict[str, object]:
    return {
        "source": item.source,
        "position": item.position,
        "resource_type": item.resource_type,
        "field": item.field,
        "reason": item.reason,
    }
