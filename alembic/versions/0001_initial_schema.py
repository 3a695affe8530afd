"""Initial schema: staff, patients, scheduling, encounters, prescriptions, orders, tasks,
alerts and the audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-24

Written from the models and checked by hand. Types are spelled out here rather than
imported from the package, so this revision stays what it was when later models change.
The rule "a doctor never holds two live appointments that overlap" is an exclusion
constraint on PostgreSQL (``btree_gist``) and a pair of triggers on embedded SQLite.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIMESTAMPTZ = sa.DateTime(timezone=True)
JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")

# SQLite has no exclusion constraints: refuse an overlapping live appointment in triggers.
# The message carries the PostgreSQL constraint's name, so both map to the same error.
_SQLITE_OVERLAP = """
CREATE TRIGGER appointments_no_overlap_{event}
BEFORE {event} ON appointments
WHEN NEW.status NOT IN ('cancelled', 'no_show') AND EXISTS (
    SELECT 1 FROM appointments AS other
    WHERE other.doctor_id = NEW.doctor_id
      AND other.id != NEW.id
      AND other.status NOT IN ('cancelled', 'no_show')
      AND other.start_time < NEW.end_time
      AND other.end_time > NEW.start_time
)
BEGIN
    SELECT RAISE(ABORT, 'ex_appointments_doctor_overlap');
END
"""


def _id() -> sa.Column[Any]:
    return sa.Column("id", sa.Uuid(), nullable=False)


def _timestamps() -> tuple[sa.Column[Any], ...]:
    return (
        sa.Column("created_at", TIMESTAMPTZ, nullable=False),
        sa.Column("updated_at", TIMESTAMPTZ, nullable=False),
    )


def _choice(name: str, *values: str) -> sa.Enum:
    """A VARCHAR with a CHECK constraint listing the values (no native enum)."""
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True)


def _partial_index(name: str, table: str, *columns: str, unique: bool = False) -> None:
    """An index of the rows whose first column is set."""
    condition = sa.text(f"{columns[0]} IS NOT NULL")
    op.create_index(
        name,
        table,
        list(columns),
        unique=unique,
        postgresql_where=condition,
        sqlite_where=condition,
    )


def _no_overlap() -> tuple[sa.Constraint, ...]:
    return (
        postgresql.ExcludeConstraint(
            (sa.column("doctor_id"), "="),
            (sa.text("tstzrange(start_time, end_time, '[)')"), "&&"),
            where=sa.text("status NOT IN ('cancelled', 'no_show')"),
            using="gist",
            name="ex_appointments_doctor_overlap",
        ),
    )


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        # Left in place on downgrade: other schemas of the database may use it.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.create_table(
        "audit_events",
        _id(),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("occurred_at", TIMESTAMPTZ, nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column(
            "action",
            _choice("audit_action", "create", "update", "delete", "sign", "amend", "read"),
            nullable=False,
        ),
        sa.Column("entity_type", sa.String(length=50), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column("changed_fields", JSON_DOCUMENT, nullable=False),
        sa.Column("correlation_id", sa.String(length=64), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
        sa.UniqueConstraint("row_hash", name=op.f("uq_audit_events_row_hash")),
        sa.UniqueConstraint("seq", name=op.f("uq_audit_events_seq")),
    )
    op.create_index(
        "ix_audit_events_entity_type_entity_id_seq",
        "audit_events",
        ["entity_type", "entity_id", "seq"],
        unique=False,
    )
    op.create_table(
        "patients",
        _id(),
        sa.Column("mrn", sa.String(length=32), nullable=True),
        sa.Column("abha_id", sa.String(length=17), nullable=True),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column("gender", _choice("patient_gender", "male", "female", "other"), nullable=False),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("address", JSON_DOCUMENT, nullable=True),
        sa.Column("emergency_contact", JSON_DOCUMENT, nullable=True),
        sa.Column(
            "blood_group",
            _choice("patient_blood_group", "A+", "A-", "B+", "B-", "AB+", "AB-", "O+", "O-"),
            nullable=True,
        ),
        sa.Column("allergies", JSON_DOCUMENT, nullable=False),
        sa.Column(
            "status", _choice("patient_status", "active", "inactive", "deceased"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", TIMESTAMPTZ, nullable=True),
        *_timestamps(),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
    )
    op.create_index(
        "ix_patients_last_name_first_name", "patients", ["last_name", "first_name"], unique=False
    )
    _partial_index("uq_patients_abha_id", "patients", "abha_id", unique=True)
    _partial_index("uq_patients_mrn", "patients", "mrn", unique=True)
    op.create_table(
        "users",
        _id(),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column(
            "role", _choice("user_role", "doctor", "nurse", "admin", "receptionist"), nullable=False
        ),
        sa.Column("specialty", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("profile_image_url", sa.String(length=2048), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "status", _choice("user_status", "active", "inactive", "suspended"), nullable=False
        ),
        sa.Column("preferences", JSON_DOCUMENT, nullable=False),
        sa.Column("last_login_at", TIMESTAMPTZ, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("deleted_at", TIMESTAMPTZ, nullable=True),
        *_timestamps(),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lowercase")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "alerts",
        _id(),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column(
            "alert_type",
            _choice(
                "alert_type", "lab_result", "medication", "appointment", "task", "system", "other"
            ),
            nullable=False,
        ),
        sa.Column(
            "severity",
            _choice("alert_severity", "low", "medium", "high", "critical"),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("is_read", sa.Boolean(), nullable=False),
        sa.Column("read_at", TIMESTAMPTZ, nullable=True),
        sa.Column("source", sa.String(length=50), nullable=True),
        sa.Column("source_id", sa.String(length=64), nullable=True),
        sa.Column("action_url", sa.String(length=2048), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_alerts_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_alerts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    _partial_index("ix_alerts_patient_id", "alerts", "patient_id")
    op.create_index(
        "ix_alerts_user_id_is_read_created_at",
        "alerts",
        ["user_id", "is_read", "created_at"],
        unique=False,
    )
    op.create_table(
        "appointments",
        _id(),
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("start_time", TIMESTAMPTZ, nullable=False),
        sa.Column("end_time", TIMESTAMPTZ, nullable=False),
        sa.Column(
            "status",
            _choice(
                "appointment_status",
                "scheduled",
                "confirmed",
                "checked_in",
                "in_progress",
                "completed",
                "cancelled",
                "no_show",
            ),
            nullable=False,
        ),
        sa.Column(
            "appointment_type",
            _choice(
                "appointment_type", "in_person", "telemedicine", "follow_up", "urgent", "routine"
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("check_in_time", TIMESTAMPTZ, nullable=True),
        sa.Column("check_out_time", TIMESTAMPTZ, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        *(_no_overlap() if dialect == "postgresql" else ()),
        sa.CheckConstraint("end_time > start_time", name=op.f("ck_appointments_end_after_start")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_appointments_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"], ["users.id"], name=op.f("fk_appointments_doctor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_appointments_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_appointments")),
    )
    _partial_index("ix_appointments_created_by", "appointments", "created_by")
    op.create_index(
        "ix_appointments_doctor_id_start_time",
        "appointments",
        ["doctor_id", "start_time"],
        unique=False,
    )
    op.create_index(
        "ix_appointments_patient_id_start_time",
        "appointments",
        ["patient_id", "start_time"],
        unique=False,
    )
    op.create_index("ix_appointments_status", "appointments", ["status"], unique=False)
    if dialect == "sqlite":
        for event in ("INSERT", "UPDATE"):
            op.execute(_SQLITE_OVERLAP.format(event=event))
    op.create_table(
        "encounters",
        _id(),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column(
            "encounter_type",
            _choice("encounter_type", "office_visit", "telemedicine", "emergency", "home_visit"),
            nullable=False,
        ),
        sa.Column("start_time", TIMESTAMPTZ, nullable=False),
        sa.Column("end_time", TIMESTAMPTZ, nullable=True),
        sa.Column("chief_complaint", sa.Text(), nullable=True),
        sa.Column(
            "status",
            _choice("encounter_status", "in_progress", "completed", "cancelled"),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(
            "end_time IS NULL OR end_time > start_time", name=op.f("ck_encounters_end_after_start")
        ),
        sa.ForeignKeyConstraint(
            ["appointment_id"],
            ["appointments.id"],
            name=op.f("fk_encounters_appointment_id_appointments"),
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"], ["users.id"], name=op.f("fk_encounters_doctor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_encounters_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_encounters")),
    )
    _partial_index("ix_encounters_appointment_id", "encounters", "appointment_id")
    op.create_index(
        "ix_encounters_doctor_id_start_time",
        "encounters",
        ["doctor_id", "start_time"],
        unique=False,
    )
    op.create_index(
        "ix_encounters_patient_id_start_time",
        "encounters",
        ["patient_id", "start_time"],
        unique=False,
    )
    op.create_table(
        "orders",
        _id(),
        sa.Column("encounter_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column(
            "order_type",
            _choice("order_type", "lab", "imaging", "procedure", "referral"),
            nullable=False,
        ),
        sa.Column(
            "status",
            _choice("order_status", "draft", "ordered", "in_progress", "completed", "cancelled"),
            nullable=False,
        ),
        sa.Column("ordered_at", TIMESTAMPTZ, nullable=True),
        sa.Column("completed_at", TIMESTAMPTZ, nullable=True),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(
            "completed_at IS NULL OR ordered_at IS NULL OR completed_at >= ordered_at",
            name=op.f("ck_orders_completed_after_ordered"),
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"], ["users.id"], name=op.f("fk_orders_doctor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id"], ["encounters.id"], name=op.f("fk_orders_encounter_id_encounters")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_orders_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
    )
    op.create_index("ix_orders_doctor_id", "orders", ["doctor_id"], unique=False)
    op.create_index("ix_orders_encounter_id", "orders", ["encounter_id"], unique=False)
    op.create_index(
        "ix_orders_patient_id_created_at", "orders", ["patient_id", "created_at"], unique=False
    )
    op.create_index("ix_orders_status", "orders", ["status"], unique=False)
    op.create_table(
        "prescriptions",
        _id(),
        sa.Column("encounter_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            _choice("prescription_status", "draft", "signed", "sent", "dispensed", "cancelled"),
            nullable=False,
        ),
        sa.Column("signed_at", TIMESTAMPTZ, nullable=True),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("pharmacy_id", sa.String(length=64), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.CheckConstraint(
            "valid_until IS NULL OR valid_from IS NULL OR valid_until >= valid_from",
            name=op.f("ck_prescriptions_valid_until_after_valid_from"),
        ),
        sa.ForeignKeyConstraint(
            ["doctor_id"], ["users.id"], name=op.f("fk_prescriptions_doctor_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id"],
            ["encounters.id"],
            name=op.f("fk_prescriptions_encounter_id_encounters"),
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_prescriptions_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prescriptions")),
    )
    op.create_index("ix_prescriptions_doctor_id", "prescriptions", ["doctor_id"], unique=False)
    op.create_index(
        "ix_prescriptions_encounter_id", "prescriptions", ["encounter_id"], unique=False
    )
    op.create_index(
        "ix_prescriptions_patient_id_created_at",
        "prescriptions",
        ["patient_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "tasks",
        _id(),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("assigned_to", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("encounter_id", sa.Uuid(), nullable=True),
        sa.Column("due_date", TIMESTAMPTZ, nullable=True),
        sa.Column(
            "priority", _choice("task_priority", "low", "medium", "high", "urgent"), nullable=False
        ),
        sa.Column(
            "status",
            _choice("task_status", "pending", "in_progress", "completed", "cancelled"),
            nullable=False,
        ),
        sa.Column(
            "task_type",
            _choice(
                "task_type", "documentation", "review", "follow_up", "referral", "order", "other"
            ),
            nullable=False,
        ),
        sa.Column("completed_at", TIMESTAMPTZ, nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["assigned_to"], ["users.id"], name=op.f("fk_tasks_assigned_to_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_tasks_created_by_users")
        ),
        sa.ForeignKeyConstraint(
            ["encounter_id"], ["encounters.id"], name=op.f("fk_tasks_encounter_id_encounters")
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_tasks_patient_id_patients")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    _partial_index(
        "ix_tasks_assigned_to_status_due_date", "tasks", "assigned_to", "status", "due_date"
    )
    op.create_index("ix_tasks_created_by", "tasks", ["created_by"], unique=False)
    _partial_index("ix_tasks_encounter_id", "tasks", "encounter_id")
    _partial_index("ix_tasks_patient_id", "tasks", "patient_id")
    op.create_index("ix_tasks_status", "tasks", ["status"], unique=False)
    op.create_table(
        "order_items",
        _id(),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_code", sa.String(length=64), nullable=True),
        sa.Column("item_name", sa.String(length=200), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=True),
        *_timestamps(),
        sa.ForeignKeyConstraint(
            ["order_id"],
            ["orders.id"],
            name=op.f("fk_order_items_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_items")),
    )
    op.create_index(op.f("ix_order_items_order_id"), "order_items", ["order_id"], unique=False)
    op.create_table(
        "prescription_items",
        _id(),
        sa.Column("prescription_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("medication_name", sa.String(length=200), nullable=False),
        sa.Column("dosage", sa.String(length=100), nullable=False),
        sa.Column("frequency", sa.String(length=100), nullable=False),
        sa.Column("duration", sa.String(length=100), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("refills", sa.Integer(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=True),
        *_timestamps(),
        sa.CheckConstraint(
            "quantity IS NULL OR quantity > 0", name=op.f("ck_prescription_items_quantity_positive")
        ),
        sa.CheckConstraint("refills >= 0", name=op.f("ck_prescription_items_refills_not_negative")),
        sa.ForeignKeyConstraint(
            ["prescription_id"],
            ["prescriptions.id"],
            name=op.f("fk_prescription_items_prescription_id_prescriptions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prescription_items")),
    )
    op.create_index(
        op.f("ix_prescription_items_prescription_id"),
        "prescription_items",
        ["prescription_id"],
        unique=False,
    )


def downgrade() -> None:
    # Indexes, constraints and the SQLite triggers go with their tables.
    for table in (
        "prescription_items",
        "order_items",
        "tasks",
        "prescriptions",
        "orders",
        "encounters",
        "appointments",
        "alerts",
        "users",
        "patients",
        "audit_events",
    ):
        op.drop_table(table)
