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

ENCOUNTER_TYPES = ("office_visit", "telemedicine", "emergency", "home_visit")
ENCOUNTER_STATUSES = ("in_progress", "completed", "cancelled")

PRESCRIPTION_STATUSES = ("draft", "signed", "sent", "dispensed", "cancelled")

ORDER_TYPES = ("lab", "imaging", "procedure", "referral")
ORDER_STATUSES = ("draft", "ordered", "in_progress", "completed", "cancelled")

TASK_PRIORITIES = ("low", "medium", "high", "urgent")
TASK_STATUSES = ("pending", "in_progress", "completed", "cancelled")
OPEN_TASK_STATUSES = ("pending", "in_progress")
TASK_TYPES = ("documentation", "review", "follow_up", "referral", "order", "other")

ALERT_TYPES = ("lab_result", "medication", "appointment", "task", "system", "other")
ALERT_SEVERITIES = ("low", "medium", "high", "critical")

AUDIT_ACTIONS = ("create", "update", "delete", "sign", "amend", "read")
