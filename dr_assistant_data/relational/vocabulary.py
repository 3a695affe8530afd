"""The allowed values of every enumerated column: part of the public contract."""

from __future__ import annotations

USER_ROLES = ("doctor", "nurse", "admin", "receptionist")
USER_STATUSES = ("active", "inactive", "suspended")

GENDERS = ("male", "female", "other")
BLOOD_GROUPS = ("A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-")
PATIENT_STATUSES = ("active", "inactive", "deceased")

APPOINTMENT_STATUSES = (
    "scheduled",
    "confirmed",
    "checked_in",
    "in_progress",
    "completed",
    "cancelled",
    "no_show",
)
INACTIVE_APPOINTMENT_STATUSES = ("cancelled", "no_show")
APPOINTMENT_TYPES = ("in_person", "telemedicine", "follow_up", "urgent", "routine")

ENCOUNTER_TYPES = (
    "office_visit",
    "telemedicine",
    "emergency",
    "home_visit",
    "inpatient",
    "acute_care",
    "non_acute",
    "observation",
    "preadmission",
    "short_stay",
    "field_visit",
)
ENCOUNTER_CLASSES = {
    "AMB": "office_visit",
    "VR": "telemedicine",
    "EMER": "emergency",
    "HH": "home_visit",
    "IMP": "inpatient",
    "ACUTE": "acute_care",
    "NONAC": "non_acute",
    "OBSENC": "observation",
    "PRENC": "preadmission",
    "SS": "short_stay",
    "FLD": "field_visit",
}
"""The encounter type of each v3 ActEncounterCode class (system
``http://terminology.hl7.org/CodeSystem/v3-ActCode``): one type per class and one class
per type, so a class read in comes back out as it was (``ENCOUNTER_CLASS_OF``)."""
ENCOUNTER_CLASS_OF = {kind: code for code, kind in ENCOUNTER_CLASSES.items()}
ENCOUNTER_STATUSES = ("in_progress", "completed", "cancelled")

PRESCRIPTION_STATUSES = (
    "draft",
    "signed",
    "sent",
    "dispensed",
    "cancelled",
    "on_hold",
    "stopped",
    "completed",
    "entered_in_error",
)
"""``cancelled``: withdrawn before any of it was taken; ``stopped``: ended after it began
(FHIR MedicationRequest ``stopped``); ``entered_in_error``: never valid."""

ORDER_TYPES = ("lab", "imaging", "procedure", "referral")
ORDER_STATUSES = ("draft", "ordered", "in_progress", "completed", "cancelled")

CLINICAL_STATUSES = ("active", "recurrence", "relapse", "inactive", "remission", "resolved")
"""A problem's clinical status (FHIR ``condition-clinical``, same codes)."""
CONDITION_VERIFICATION_STATUSES = (
    "unconfirmed",
    "provisional",
    "differential",
    "confirmed",
    "refuted",
    "entered_in_error",
)
"""FHIR ``condition-ver-status``; ``entered_in_error`` is FHIR's ``entered-in-error``."""
CONDITION_CATEGORIES = ("problem_list_item", "encounter_diagnosis")
"""FHIR ``condition-category``: ``problem-list-item``, ``encounter-diagnosis``."""

ALLERGY_CLINICAL_STATUSES = ("active", "inactive", "resolved")
ALLERGY_VERIFICATION_STATUSES = ("unconfirmed", "confirmed", "refuted", "entered_in_error")
NOT_ALLERGIC = ("refuted", "entered_in_error")
"""Verification statuses that say the patient does not have the allergy."""
ALLERGY_CRITICALITIES = ("low", "high", "unable_to_assess")
ALLERGY_CATEGORIES = ("food", "medication", "environment", "biologic")
ALLERGY_TYPES = ("allergy", "intolerance")
REACTION_SEVERITIES = ("mild", "moderate", "severe")

VITAL_SIGNS = {
    "systolic_bp": ("8480-6", "mm[Hg]"),
    "diastolic_bp": ("8462-4", "mm[Hg]"),
    "heart_rate": ("8867-4", "/min"),
    "temperature": ("8310-5", "Cel"),
    "respiratory_rate": ("9279-1", "/min"),
    "oxygen_saturation": ("2708-6", "%"),
    "weight": ("29463-7", "kg"),
    "height": ("8302-2", "cm"),
    "bmi": ("39156-5", "kg/m2"),
}
"""Each vital sign's LOINC code and usual UCUM unit (the FHIR vital-signs profile's)."""
VITAL_SIGN_KINDS = tuple(VITAL_SIGNS)
BLOOD_PRESSURE_PANEL = ("85354-9", "Blood pressure panel with all children optional")
"""The LOINC code of the observation a blood pressure's two readings (``panel_id``) form."""
OBSERVATION_STATUSES = (
    "registered",
    "preliminary",
    "final",
    "amended",
    "corrected",
    "cancelled",
    "entered_in_error",
    "unknown",
)
"""FHIR ``observation-status``; ``entered_in_error`` is FHIR's ``entered-in-error``."""

TASK_PRIORITIES = ("low", "medium", "high", "urgent")
TASK_STATUSES = ("pending", "in_progress", "completed", "cancelled")
OPEN_TASK_STATUSES = ("pending", "in_progress")
TASK_TYPES = ("documentation", "review", "follow_up", "referral", "order", "other")

ALERT_TYPES = ("lab_result", "medication", "appointment", "task", "system", "other")
ALERT_SEVERITIES = ("low", "medium", "high", "critical")

AUDIT_ACTIONS = ("create", "update", "delete", "sign", "amend", "read")
