"""Every resource type is one module of ``fhir.resource_types``, registered once: each
is complete, the importer and the exporter know exactly the registered ones, and every
exported type comes back through an import into another database."""

from __future__ import annotations

import json
import pkgutil

from fhir.resources.R4B import get_fhir_model_class

from dr_assistant_data import DataLayer
from dr_assistant_data.fhir import import_files, resource_types
from dr_assistant_data.fhir.exporter import BULK_TYPES, export_bulk
from dr_assistant_data.fhir.importer import TYPE_ORDER
from dr_assistant_data.fhir.resource_types import MODULES, REGISTRY
from dr_assistant_data.relational.rules.validation import columns_of
from tests.helpers.fhir_population import full_clinic
from tests.helpers.layers import scratch_database, settings_for


def test_every_module_of_the_package_is_a_registered_resource_type():
    modules = {info.name for info in pkgutil.iter_modules(resource_types.__path__)}

    assert modules == {module.__name__.rsplit(".", 1)[1] for module in MODULES}
    assert len(REGISTRY) == len(MODULES)


def test_every_registered_resource_type_is_complete():
    for name, kind in REGISTRY.items():
        model = get_fhir_model_class(name)
        elements = {field.alias or key for key, field in model.model_fields.items()}
        assert kind.kept, name
        assert set(kind.kept) <= elements, (name, set(kind.kept) - elements)
        assert kind.essential <= set(kind.kept), name
        assert callable(kind.build), name
        assert callable(kind.write), name
        if kind.checked is not None:
            record, fields = kind.checked
            assert set(fields) <= set(columns_of(record)), name
            assert all(path.startswith(f"{name}.") for path in fields.values()), name
    assert len({kind.rank for kind in REGISTRY.values()}) == len(REGISTRY)


def test_the_importer_and_the_exporter_know_exactly_the_registered_types():
    in_rank_order = tuple(sorted(REGISTRY, key=lambda name: REGISTRY[name].rank))
    assert in_rank_order == TYPE_ORDER
    assert set(BULK_TYPES) == {name for name, kind in REGISTRY.items() if kind.export}


def test_every_exported_resource_type_round_trips_through_another_database(layer, tmp_path):
    full_clinic(layer)
    first = export_bulk(layer, tmp_path / "first", actor="export:test")
    assert {kind for kind, count in first.counts.items() if count} == set(BULK_TYPES)

    with scratch_database() as url, DataLayer(settings_for(url)) as other:
        other.migrate()
        report = import_files(other, first.files, actor="import:test")
        second = export_bulk(other, tmp_path / "second", actor="export:test")

    assert report.total("refused") == report.total("unsupported") == 0, report.refusals
    assert {kind for (kind, outcome) in report.counts if outcome == "created"} == set(BULK_TYPES)
    assert second.counts == first.counts
    for path in second.files:
        for line in path.read_text().splitlines():
            resource = json.loads(line)
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
