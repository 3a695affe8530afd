"""The official FHIR R4 JSON schema, and exported resources checked against it.

``fhir.schema.json`` is the JSON Schema (draft 6) published with the R4 specification
(``http://hl7.org/fhir/json-schema/4.0``). The ``fhirstore`` distribution (0.4.8) carries
it unchanged; that package pins pymongo 3 and jsonschema 3, which the layer cannot share,
so it is installed without its dependencies (``pip install --no-deps fhirstore==0.4.8``)
and only its data file is read, never its code. The file's digest is pinned: another
file under that name fails every check instead of passing them.

The schema checks what the ``fhir.resources`` models do not all check: no element the
resource type does not define (``additionalProperties: false``), each code in its value
set, each primitive's lexical form (dates, ids, URIs).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
from collections.abc import Iterable
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft6Validator
from jsonschema.exceptions import best_match

DISTRIBUTION, VERSION = "fhirstore", "0.4.8"
SCHEMA_FILE = "fhirstore/schema/fhir.schema.json"
SHA256 = "574dea8798a92e6b77f66243d052b40152636d4b6aa0873a0224da1cef9c4809"
SCHEMA_ID = "http://hl7.org/fhir/json-schema/4.0"


@cache
def schema() -> dict[str, Any]:
    """The R4 schema as published; ``AssertionError`` when it is not installed or is
    another file."""
    try:
        distribution = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise AssertionError(
            f"the FHIR R4 JSON schema comes with {DISTRIBUTION}: "
            f"pip install --no-deps {DISTRIBUTION}=={VERSION}"
        ) from None
    data = Path(str(distribution.locate_file(SCHEMA_FILE))).read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256, f"{SCHEMA_FILE} is not the R4 schema"
    loaded: dict[str, Any] = json.loads(data)
    assert loaded["id"] == SCHEMA_ID
    assert loaded["$schema"].endswith("draft-06/schema#")
    return loaded


@cache
def _validator(kind: str) -> Draft6Validator:
    """A validator of one resource type's definition (the schema's own ``oneOf`` over
    every type would say only "not valid under any" of its 146 branches)."""
    definitions = schema()["definitions"]
    assert kind in schema()["discriminator"]["mapping"], f"{kind} is no R4 resource type"
    return Draft6Validator({"definitions": definitions, "$ref": f"#/definitions/{kind}"})


def problems(resource: dict[str, Any]) -> list[str]:
    """What the schema finds wrong with ``resource``, one line each: the element's path,
    the schema keyword and its message (empty: valid). A Bundle's entries are each checked
    against their own type's definition as well, so an error inside one is named."""
    kind = resource.get("resourceType")
    if kind not in schema()["discriminator"]["mapping"]:
        return [f"resourceType: {kind!r} is no R4 resource type"]
    found = [_line(kind, error) for error in _validator(kind).iter_errors(resource)]
    if kind == "Bundle" and found:
        for number, entry in enumerate(resource.get("entry", [])):
            inner = entry.get("resource") if isinstance(entry, dict) else None
            if isinstance(inner, dict):
                found += [f"Bundle.entry[{number}] {line}" for line in problems(inner)]
    return found


def _line(kind: str, error: Any) -> str:
    """The element and the rule it breaks, without its value (a record's data)."""
    error = best_match([error]) if error.context else error
    path = ".".join([kind, *(str(part) for part in error.absolute_path)])
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"{path} (additionalProperties): not defined: {', '.join(extra)}"
    return f"{path} ({error.validator}): must match {error.validator_value!r:.200}"


def assert_valid(resources: Iterable[dict[str, Any]]) -> int:
    """Every resource valid against the R4 schema; returns how many were checked."""
    checked, failures = 0, []
    for resource in resources:
        checked += 1
        failures += problems(resource)
    assert not failures, "\n".join(failures[:50])
    return checked


def assert_valid_files(files: Iterable[Path]) -> dict[str, int]:
    """Every line of every NDJSON file a bulk export wrote valid against the R4 schema;
    returns the resources checked by type (the file's name)."""
    counts = {}
    for path in files:
        lines = path.read_text(encoding="utf-8").splitlines()
        counts[path.stem] = assert_valid(json.loads(line) for line in lines)
    return counts
