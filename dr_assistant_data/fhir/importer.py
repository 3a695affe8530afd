"""The FHIR import: files in, records written through the repositories, one outcome each.

    report = FhirImport(dl, actor="import:hospital-a").run([Path("Patient.ndjson"), ...])

Resources are read as a stream (``reading.py``), turned into record fields
(``inbound.py``) and buffered by type; every ``batch_size`` resources (or
``MAX_BATCH_BYTES`` of them) the buffers are written in one unit of work, in the order
references need (practitioners and patients, then encounters, then what happens in
them). New patients, practitioners and encounters go through ``create_many``;
prescriptions and orders, which have items, and notes, which are documents, one record
at a time. Everything a write through the layer does happens:
validation, encryption, audit, cache invalidation.

Logical ids (``Patient/123``) are unique only within the system that gave them: an
import from several systems names each (``source``), so that one's ``Patient/1`` is not
another's; every key a resource is known by (its id, even one shaped like a UUID, its
``fullUrl``, its identifiers) belongs to its source (``identity.py``).

A resource whose reference names nothing written yet is set aside in a temporary file
and tried again after every file has been read, so a ``MedicationRequest`` that comes
before its ``Encounter`` (later in the file, or in another file) still lands; what still
names nothing then is refused (``unresolved_reference``). A resource seen again — by its
identifier, its id, its ``fullUrl``, a patient by ABHA number or MRN — updates the record
it became, or is skipped when nothing changed (``writers.py`` says what it may change).
Memory stays bounded by the batch, whatever the size of the files.

One resource never stops the run: whatever is wrong with it is its own outcome, and a
file that cannot be read is one line of the report. A failure of the database stops the
run with the report of what was written (``stopped``); the resources it could not write
are counted as refused with the reason ``stopped``.
"""

from __future__ import annotations

import json
import logging
import tempfile
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from ..errors import BackendUnavailableError, DataLayerError, ValidationError
from ..layer import DataLayer
from ..progress import ProgressCallback
from . import reading
from .checks import Checked, Checks
from .elements import Draft
from .identity import Mapping, Target
from .outcomes import (
    CREATED,
    LINKED,
    SKIPPED,
    STOPPED,
    UNRESOLVED_REFERENCE,
    UPDATED,
    Dropped,
    ImportReport,
    Outcome,
    Refusal,
)
from .resource_types import REGISTRY
from .writers import Resolved, Run

TYPE_ORDER = tuple(REGISTRY)
"""The resource types read, in the order references need (``ResourceType.rank``)."""
logger = logging.getLogger(__name__)
KEPT_OUTCOMES = frozenset({CREATED, UPDATED, LINKED, SKIPPED})
"""Outcomes of a resource whose record holds it: its dropped elements are listed."""
MAX_BATCH_BYTES = 64 * 1024 * 1024
"""Resources buffered for one unit of work, by what they weigh in memory
(``reading.Raw.size``: their text and their values)."""


class FhirImport:
    """One import run; ``run`` may be called once.

    ``source`` names the system the files come from (their ids, ``fullUrl``s and
    identifiers are its own; ``""`` is the default source). ``update_linked`` lets a
    resource update a record it matches from another source (a patient by ABHA number or
    MRN) instead of reporting what differs as a conflict. ``strict`` refuses a resource
    with an optional element that is not valid instead of keeping it without it.
    ``workers`` processes parse NDJSON lines and check the resources while the run
    writes (``checks.py``; 0: in this process, one after the other)."""

    def __init__(
        self,
        dl: DataLayer,
        *,
        actor: str,
        batch_size: int = 500,
        source: str = "",
        update_linked: bool = False,
        strict: bool = False,
        workers: int = 1,
        progress: ProgressCallback | None = None,
    ) -> None:
        if not isinstance(batch_size, int) or not 1 <= batch_size <= 10_000:
            raise ValidationError("batch_size", "must be a whole number from 1 to 10000")
        if not isinstance(workers, int) or not 0 <= workers <= 8:
            raise ValidationError("workers", "must be a whole number from 0 to 8")
        if not isinstance(source, str) or len(source) > 100 or "|" in source:
            raise ValidationError("source", "must be a name of at most 100 characters, no '|'")
        self.source = source
        self.update_linked = update_linked
        self.strict = strict
        self.workers = workers
        self._touched: set[uuid.UUID] = set()
        self.dl = dl
        self.actor = actor
        self.batch_size = batch_size
        self.progress = progress
        self.report = ImportReport()
        self._buffers: dict[str, list[Draft]] = {kind: [] for kind in TYPE_ORDER}
        self._buffered = 0
        self._buffered_bytes = 0
        self._done = 0
        self._replayed: Counter[str] = Counter()

    def run(self, paths: Iterable[Path]) -> ImportReport:
        """Import every file (NDJSON or Bundle); returns the report, also when the run
        stops early (``report.stopped``: the database failed). Nothing about the files
        raises: each problem is a line of the report."""
        ordered = sorted(enumerate(paths), key=lambda pair: _rank(reading.first_type(pair[1])))
        with tempfile.TemporaryFile() as deferred:
            try:
                self._import(ordered, deferred)
            except DataLayerError as error:
                unavailable = isinstance(error, BackendUnavailableError)
                self._stop(deferred, "backend_unavailable" if unavailable else "write_failed")
            except Exception as error:  # a fault of the import itself: the run still reports
                logger.error("FHIR import stopped by %s", type(error).__name__)
                self._stop(deferred, "failed")
            except BaseException:  # interrupted: the caller gets self.report as it stands
                self._stop(deferred, "interrupted")
                raise
        return self.report

    def _import(self, ordered: list[tuple[int, Path]], deferred: IO[bytes]) -> None:
        with Checks(strict=self.strict, source=self.source, workers=self.workers) as checks:
            read = (
                item for index, path in ordered for item in reading.read(path, index, parse=False)
            )
            for raw, checked in checks.drafts(read):
                self._take(raw, checked, deferred)
            self._flush(deferred)
            for kind in TYPE_ORDER:  # all encounters before what names them, and so on
                deferred.seek(0)
                for raw, checked in checks.drafts(_replayed(deferred, kind)):
                    self._replayed[kind] += 1
                    self._take(raw, checked, None)
            self._flush(None)

    def _stop(self, deferred: IO[bytes], reason: str) -> None:
        """End the run early: what is buffered, and what was set aside and not tried
        again, is counted as not written."""
        self.report.stopped = reason
        stopped = Refusal("resource", STOPPED)
        for drafts in self._buffers.values():
            for item in drafts:
                self._count(item.raw, item.resource_type, stopped)
            drafts.clear()
        deferred.seek(0)
        seen: Counter[str] = Counter()
        for kind in TYPE_ORDER:
            deferred.seek(0)
            for raw in _replayed(deferred, kind):
                seen[kind] += 1
                if seen[kind] > self._replayed[kind]:
                    self._count(raw, kind, stopped)

    def _take(self, raw: reading.Raw, checked: Checked, deferred: IO[bytes] | None) -> None:
        if isinstance(checked, Refusal):
            self._count(raw, raw.resource_type, checked)
            return
        self._buffers[checked.resource_type].append(checked)
        self._buffered += 1
        self._buffered_bytes += raw.size
        if self._buffered >= self.batch_size or self._buffered_bytes >= MAX_BATCH_BYTES:
            self._flush(deferred)

    def _flush(self, deferred: IO[bytes] | None) -> None:
        """Write what is buffered in one unit of work, in reference order. With
        ``deferred`` (the first pass), a resource whose reference is not found yet is
        set aside there; without it (the replay), it is refused. The outcomes are
        counted once the unit of work has committed; when it fails the buffers are left
        as they were (and what this flush set aside is taken back) for ``_stop``."""
        if not self._buffered:
            return
        mark = deferred.tell() if deferred is not None else 0
        outcomes: list[tuple[Draft, str | Refusal]] = []
        try:
            with self.dl.unit_of_work(actor=self.actor) as uow:
                uow.use_primary()  # the mappings just committed must be seen
                mapping = Mapping(uow.session, self.source)
                run = Run(uow, mapping, self.update_linked, self._touched)
                for kind in TYPE_ORDER:
                    resolved = self._resolved(mapping, self._buffers[kind], deferred, outcomes)
                    outcomes += [
                        (item.draft, outcome)
                        for item, outcome in REGISTRY[kind].write(run, resolved)
                    ]
        except BaseException:
            if deferred is not None:
                deferred.seek(mark)
                deferred.truncate()
            raise
        self._touched |= run.touched
        for item, outcome in outcomes:
            self._count(item.raw, item.resource_type, outcome)
            if outcome in KEPT_OUTCOMES:
                for path, reason in item.dropped:
                    position = (item.raw.source, item.raw.position, item.resource_type)
                    self.report.drop(Dropped(*position, path, reason))
        for drafts in self._buffers.values():
            drafts.clear()
        self._done += self._buffered
        self._buffered = self._buffered_bytes = 0
        if self.progress is not None:
            self.progress(self._done, None)

    def _resolved(
        self,
        mapping: Mapping,
        drafts: list[Draft],
        deferred: IO[bytes] | None,
        outcomes: list[tuple[Draft, str | Refusal]],
    ) -> list[Resolved]:
        """Each draft with its references as record ids; the others set aside or refused."""
        targets = [target for item in drafts for target in item.refs.values()]
        found = mapping.find(key for target in targets for key in target.keys)
        result = []
        for item in drafts:
            ids: dict[str, uuid.UUID] = {}
            missing: Target | None = None
            for name, target in item.refs.items():
                id = _lookup(target, found)
                if id is not None:
                    ids[name] = id
                elif deferred is not None or name not in item.optional_refs:
                    missing = missing or target
            if missing is None:
                result.append(Resolved(item, ids))
            elif deferred is not None:
                _set_aside(deferred, item.raw)
            else:
                outcomes.append((item, Refusal(missing.path, UNRESOLVED_REFERENCE)))
        return result

    def _count(self, raw: reading.Raw, kind: str, outcome: str | Refusal) -> None:
        """Count ``outcome``; a ``Refusal`` counts as its own outcome (refused, conflict,
        unsupported...) with its field and reason."""
        if isinstance(outcome, Refusal):
            self.report.add(
                Outcome(
                    raw.source, raw.position, kind, outcome.outcome, outcome.field, outcome.code
                )
            )
        else:
            self.report.add(Outcome(raw.source, raw.position, kind, outcome))


def import_files(
    dl: DataLayer, paths: Iterable[Path], *, actor: str, **options: Any
) -> ImportReport:
    """Import FHIR files (``FhirImport``); returns the report."""
    return FhirImport(dl, actor=actor, **options).run(paths)


def _rank(kind: str | None) -> int:
    return TYPE_ORDER.index(kind) if kind in TYPE_ORDER else -1  # Bundles first


def _lookup(target: Target, found: dict[str, tuple[str, uuid.UUID]]) -> uuid.UUID | None:
    named = REGISTRY.get(target.resource_type or "")
    wanted = named.referable_as if named is not None else None
    for key in target.keys:
        if key in found and found[key][0] == wanted:
            return found[key][1]
    return None


def _set_aside(deferred: IO[bytes], raw: reading.Raw) -> None:
    line = {"s": raw.source, "p": raw.position, "u": raw.full_url, "r": raw.resource}
    deferred.write(json.dumps(line).encode() + b"\n")  # ASCII: any string survives


def _replayed(deferred: IO[bytes], kind: str) -> Iterator[reading.Raw]:
    for line in deferred:
        entry = json.loads(line)
        raw = reading.Raw(entry["s"], entry["p"], entry["r"], entry["u"], size=len(line))
        if raw.resource_type == kind:
            yield raw
