"""Two bulk exports compared across databases: the second database's records got ids of
their own, and what records the moment of writing differs; everything else must not."""

from __future__ import annotations

import json
import re
from pathlib import Path

from dr_assistant_data import DataLayer
from dr_assistant_data.fhir.identity import Mapping

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def ids_in(dl: DataLayer, files: list[Path]) -> dict[str, str]:
    """The ids the first export's records got in the database it was imported into."""
    keys: dict[str, str] = {}
    for path in files:
        for line in path.read_text().splitlines():
            resource = json.loads(line)
            kind, id = resource["resourceType"], resource["id"]
            keys[f"{kind}|id|{id}"] = id
            keys[f"item|{kind}|id|{id}"] = id
            for group in ("groupIdentifier", "requisition"):
                if group in resource:
                    value = resource[group]
                    keys[f"{kind}-group|{value['system']}|{value['value']}"] = value["value"]
    with dl.unit_of_work(actor="test") as uow:
        found = Mapping(uow.session).find(keys)
    return {keys[key]: str(id) for key, (_, id) in found.items()}


def stable(line: str, renamed: dict[str, str]) -> str:
    """The resource with the first database's ids as the second's, without what records
    the moment of writing (meta.lastUpdated, a document's date, the signing time)."""
    resource = json.loads(UUID.sub(lambda m: renamed.get(m.group(0), m.group(0)), line))
    resource.pop("meta", None)
    if resource["resourceType"] == "Composition":
        resource.pop("date")
        for attester in resource.get("attester", []):
            attester.pop("time")
    return json.dumps(resource, sort_keys=True)


def differences(first: list[Path], second: Path, renamed: dict[str, str]) -> dict[str, int]:
    """For each file of the first export, how many of its resources (as ``stable`` makes
    them) the same file of the second export in ``second`` lacks or adds."""
    found = {}
    for path in first:
        ours = {stable(line, renamed) for line in path.read_text().splitlines()}
        theirs = {stable(line, {}) for line in (second / path.name).read_text().splitlines()}
        if ours != theirs:
            found[path.name] = len(ours ^ theirs)
    return found
