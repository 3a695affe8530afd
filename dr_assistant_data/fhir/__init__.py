"""FHIR R4: records in (``importer.py``) and out (``exporter.py``), ready for ABDM exchange."""

from .importer import FhirImport, import_files
from .outcomes import ImportReport, Outcome

__all__ = ["FhirImport", "ImportReport", "Outcome", "import_files"]
