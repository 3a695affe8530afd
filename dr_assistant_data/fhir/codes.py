"""Code systems, identifier systems and the code maps between FHIR R4 and the schema."""

from __future__ import annotations

from ..relational.vocabulary import ENCOUNTER_CLASS_OF, ENCOUNTER_CLASSES

BASE = "https://dr-assistant.in/fhir"
"""The namespace of the layer's own systems (identifiers, codes, extensions)."""

ABHA_SYSTEM = "https://healthid.ndhm.gov.in"
"""The ABHA number's identifier system, as in the ABDM FHIR implementation guide."""
ABHA_SYSTEMS = frozenset(
    {ABHA_SYSTEM, "https://healthid.abdm.gov.in", "https://abha.abdm.gov.in", "urn:abha"}
)
MRN_SYSTEM = f"{BASE}/sid/mrn"
PHARMACY_SYSTEM = f"{BASE}/sid/pharmacy"
PROVIDER_SYSTEM = f"{BASE}/sid/provider"
PRESCRIPTION_SYSTEM = f"{BASE}/sid/prescription"
ORDER_SYSTEM = f"{BASE}/sid/order"
NOTE_SECTION_SYSTEM = f"{BASE}/CodeSystem/note-section"
STATUS_EXTENSION = f"{BASE}/StructureDefinition/record-status"
"""The layer's own status of a prescription or order, where FHIR's statuses are coarser."""
NOTE_VITALS_TAG = {"system": f"{BASE}/CodeSystem/record-origin", "code": "clinical-note"}
"""The ``meta.tag`` of a vital-signs Observation exported from a clinical note's content:
the note holds the measurement, so an import of the record skips it (no duplicate)."""
DURATION_EXTENSION = f"{BASE}/StructureDefinition/duration-text"
"""A prescription item's duration as written (\"5 days\", \"till review\")."""

V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V2_0131 = "http://terminology.hl7.org/CodeSystem/v2-0131"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
UCUM = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
ALLERGY_CLINICAL = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VERIFICATION = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
CONDITION_CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
CONDITION_VERIFICATION = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
CONDITION_CATEGORY = "http://terminology.hl7.org/CodeSystem/condition-category"

ENCOUNTER_CLASS = ENCOUNTER_CLASSES
"""Every v3 ActEncounterCode class, one encounter type each (``vocabulary``)."""
ENCOUNTER_CLASS_OUT = ENCOUNTER_CLASS_OF
ENCOUNTER_STATUS = {
    "planned": "in_progress",
    "arrived": "in_progress",
    "triaged": "in_progress",
    "in-progress": "in_progress",
    "onleave": "in_progress",
    "finished": "completed",
    "cancelled": "cancelled",
}
ENCOUNTER_STATUS_OUT = {
    "in_progress": "in-progress",
    "completed": "finished",
    "cancelled": "cancelled",
}

PRESCRIPTION_STATUS = {
    "draft": "draft",
    "active": "signed",
    "on-hold": "on_hold",
    "completed": "completed",
    "cancelled": "cancelled",
    "stopped": "stopped",
    "entered-in-error": "entered_in_error",
}
"""FHIR's MedicationRequest status as the clinic's, each kept as it was (``stopped`` is not
``cancelled``); ``sent`` and ``dispensed``, finer than FHIR, travel in ``STATUS_EXTENSION``."""
PRESCRIPTION_STATUS_OUT = {
    "draft": "draft",
    "signed": "active",
    "sent": "active",
    "dispensed": "completed",
    "cancelled": "cancelled",
    "on_hold": "on-hold",
    "stopped": "stopped",
    "completed": "completed",
    "entered_in_error": "entered-in-error",
}
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ORDER_STATUS = {
    "draft": "draft",
    "active": "ordered",
    "on-hold": "ordered",
    "completed": "completed",
    "revoked": "cancelled",
}
ORDER_STATUS_OUT = {
    "draft": "draft",
    "ordered": "active",
    "in_progress": "active",
    "completed": "completed",
    "cancelled": "revoked",
}
ORDER_CATEGORY = {  # SNOMED CT, as ABDM's diagnostic orders use
    "108252007": "lab",
    "363679005": "imaging",
    "387713003": "procedure",
    "3457005": "referral",
}
ORDER_CATEGORY_OUT = {value: key for key, value in ORDER_CATEGORY.items()}
ORDER_CATEGORY_DISPLAY = {
    "lab": "Laboratory procedure",
    "imaging": "Imaging",
    "procedure": "Surgical procedure",
    "referral": "Patient referral",
}

NOTE_TYPE_OUT = {  # LOINC document types
    "soap": ("34109-9", "Note"),
    "consultation": ("11488-4", "Consult note"),
    "progress": ("11506-3", "Progress note"),
    "procedure": ("28570-0", "Procedure note"),
    "discharge": ("18842-5", "Discharge summary"),
    "referral": ("57133-1", "Referral note"),
}
NOTE_TYPE = {code: kind for kind, (code, _) in NOTE_TYPE_OUT.items()} | {
    "34117-2": "soap",  # History and physical note
    "371530004": "consultation",  # SNOMED: clinical consultation report (ABDM OPConsultRecord)
    "373942005": "discharge",  # SNOMED: discharge summary (ABDM)
}
RECORD_TYPE = ("419891008", "Record artifact")
"""SNOMED: the type of the Composition that indexes an exported record (ABDM's health
document record); it holds no note of its own, so an import skips it."""
ABDM_CONSULTATION = ("371530004", "Clinical consultation report")
ABDM_MEDICATIONS_SECTION = ("721912009", "Medication summary document")
ABDM_ORDERS_SECTION = ("721963009", "Order document")
