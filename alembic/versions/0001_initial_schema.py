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
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column(
            "occurred_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column(
            "action",
            sa.Enum(
                "create",
                "update",
                "delete",
                "sign",
                "amend",
                "read",
                name="audit_action",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("entity_type", sa.String(length=50), nullable=False),
        sa.Column("entity_id", sa.String(length=64), nullable=False),
        sa.Column(
            "changed_fields",
            JSON_DOCUMENT,
            nullable=False,
        ),
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
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("mrn", sa.String(length=32), nullable=True),
        sa.Column("abha_id", sa.String(length=17), nullable=True),
        sa.Column("first_name", sa.String(length=100), nullable=False),
        sa.Column("last_name", sa.String(length=100), nullable=False),
        sa.Column("date_of_birth", sa.Date(), nullable=False),
        sa.Column(
            "gender",
            sa.Enum(
                "male",
                "female",
                "other",
                name="patient_gender",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column(
            "address",
            JSON_DOCUMENT,
            nullable=True,
        ),
        sa.Column(
            "emergency_contact",
            JSON_DOCUMENT,
            nullable=True,
        ),
        sa.Column(
            "blood_group",
            sa.Enum(
                "A+",
                "A-",
                "B+",
                "B-",
                "AB+",
                "AB-",
                "O+",
                "O-",
                name="patient_blood_group",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=True,
        ),
        sa.Column(
            "allergies",
            JSON_DOCUMENT,
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "inactive",
                "deceased",
                name="patient_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "deleted_at",
            TIMESTAMPTZ,
            nullable=True,
        ),
        sa.Column(
            "created_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patients")),
    )
    op.create_index(
        "ix_patients_last_name_first_name", "patients", ["last_name", "first_name"], unique=False
    )
    op.create_index(
        "uq_patients_abha_id",
        "patients",
        ["abha_id"],
        unique=True,
        postgresql_where=sa.text("abha_id IS NOT NULL"),
        sqlite_where=sa.text("abha_id IS NOT NULL"),
    )
    op.create_index(
        "uq_patients_mrn",
        "patients",
        ["mrn"],
        unique=True,
        postgresql_where=sa.text("mrn IS NOT NULL"),
        sqlite_where=sa.text("mrn IS NOT NULL"),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("username", sa.String(length=50), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "doctor",
                "nurse",
                "admin",
                "receptionist",
                name="user_role",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("specialty", sa.String(length=100), nullable=True),
        sa.Column("phone", sa.String(length=20), nullable=True),
        sa.Column("profile_image_url", sa.String(length=2048), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "active",
                "inactive",
                "suspended",
                name="user_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "preferences",
            JSON_DOCUMENT,
            nullable=False,
        ),
        sa.Column(
            "last_login_at",
            TIMESTAMPTZ,
            nullable=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "deleted_at",
            TIMESTAMPTZ,
            nullable=True,
        ),
        sa.Column(
            "created_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.CheckConstraint("email = lower(email)", name=op.f("ck_users_email_lowercase")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("email", name=op.f("uq_users_email")),
        sa.UniqueConstraint("username", name=op.f("uq_users_username")),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column(
            "alert_type",
            sa.Enum(
                "lab_result",
                "medication",
                "appointment",
                "task",
                "system",
                "other",
                name="alert_type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "severity",
            sa.Enum(
                "low",
                "medium",
                "high",
                "critical",
                name="alert_severity",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("is_read", sa.Boolean(), nullable=False),
        sa.Column("read_at", TIMESTAMPTZ, nullable=True),
        sa.Column("source", sa.String(length=50), nullable=True),
        sa.Column("source_id", sa.String(length=64), nullable=True),
        sa.Column("action_url", sa.String(length=2048), nullable=True),
        sa.Column(
            "created_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["patient_id"], ["patients.id"], name=op.f("fk_alerts_patient_id_patients")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_alerts_user_id_users")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index(
        "ix_alerts_patient_id",
        "alerts",
        ["patient_id"],
        unique=False,
        postgresql_where=sa.text("patient_id IS NOT NULL"),
        sqlite_where=sa.text("patient_id IS NOT NULL"),
    )
    op.create_index(
        "ix_alerts_user_id_is_read_created_at",
        "alerts",
        ["user_id", "is_read", "created_at"],
        unique=False,
    )
    op.create_table(
        "appointments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column(
            "start_time",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column(
            "end_time",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "scheduled",
                "confirmed",
                "checked_in",
                "in_progress",
                "completed",
                "cancelled",
                "no_show",
                name="appointment_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "appointment_type",
            sa.Enum(
                "in_person",
                "telemedicine",
                "follow_up",
                "urgent",
                "routine",
                name="appointment_type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column(
            "check_in_time",
            TIMESTAMPTZ,
            nullable=True,
        ),
        sa.Column(
            "check_out_time",
            TIMESTAMPTZ,
            nullable=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
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
    op.create_index(
        "ix_appointments_created_by",
        "appointments",
        ["created_by"],
        unique=False,
        postgresql_where=sa.text("created_by IS NOT NULL"),
        sqlite_where=sa.text("created_by IS NOT NULL"),
    )
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
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("appointment_id", sa.Uuid(), nullable=True),
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column(
            "encounter_type",
            sa.Enum(
                "office_visit",
                "telemedicine",
                "emergency",
                "home_visit",
                name="encounter_type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "start_time",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column("end_time", TIMESTAMPTZ, nullable=True),
        sa.Column("chief_complaint", sa.Text(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "in_progress",
                "completed",
                "cancelled",
                name="encounter_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
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
    op.create_index(
        "ix_encounters_appointment_id",
        "encounters",
        ["appointment_id"],
        unique=False,
        postgresql_where=sa.text("appointment_id IS NOT NULL"),
        sqlite_where=sa.text("appointment_id IS NOT NULL"),
    )
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
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("encounter_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column(
            "order_type",
            sa.Enum(
                "lab",
                "imaging",
                "procedure",
                "referral",
                name="order_type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "ordered",
                "in_progress",
                "completed",
                "cancelled",
                name="order_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "ordered_at",
            TIMESTAMPTZ,
            nullable=True,
        ),
        sa.Column(
            "completed_at",
            TIMESTAMPTZ,
            nullable=True,
        ),
        sa.Column("provider_id", sa.String(length=64), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
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
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("encounter_id", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=False),
        sa.Column("doctor_id", sa.Uuid(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "signed",
                "sent",
                "dispensed",
                "cancelled",
                name="prescription_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "signed_at",
            TIMESTAMPTZ,
            nullable=True,
        ),
        sa.Column("valid_from", sa.Date(), nullable=True),
        sa.Column("valid_until", sa.Date(), nullable=True),
        sa.Column("pharmacy_id", sa.String(length=64), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
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
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("assigned_to", sa.Uuid(), nullable=True),
        sa.Column("created_by", sa.Uuid(), nullable=False),
        sa.Column("patient_id", sa.Uuid(), nullable=True),
        sa.Column("encounter_id", sa.Uuid(), nullable=True),
        sa.Column("due_date", TIMESTAMPTZ, nullable=True),
        sa.Column(
            "priority",
            sa.Enum(
                "low",
                "medium",
                "high",
                "urgent",
                name="task_priority",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "in_progress",
                "completed",
                "cancelled",
                name="task_status",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "task_type",
            sa.Enum(
                "documentation",
                "review",
                "follow_up",
                "referral",
                "order",
                "other",
                name="task_type",
                native_enum=False,
                create_constraint=True,
            ),
            nullable=False,
        ),
        sa.Column(
            "completed_at",
            TIMESTAMPTZ,
            nullable=True,
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
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
    op.create_index(
        "ix_tasks_assigned_to_status_due_date",
        "tasks",
        ["assigned_to", "status", "due_date"],
        unique=False,
        postgresql_where=sa.text("assigned_to IS NOT NULL"),
        sqlite_where=sa.text("assigned_to IS NOT NULL"),
    )
    op.create_index("ix_tasks_created_by", "tasks", ["created_by"], unique=False)
    op.create_index(
        "ix_tasks_encounter_id",
        "tasks",
        ["encounter_id"],
        unique=False,
        postgresql_where=sa.text("encounter_id IS NOT NULL"),
        sqlite_where=sa.text("encounter_id IS NOT NULL"),
    )
    op.create_index(
        "ix_tasks_patient_id",
        "tasks",
        ["patient_id"],
        unique=False,
        postgresql_where=sa.text("patient_id IS NOT NULL"),
        sqlite_where=sa.text("patient_id IS NOT NULL"),
    )
    op.create_index("ix_tasks_status", "tasks", ["status"], unique=False)
    op.create_table(
        "order_items",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("item_code", sa.String(length=64), nullable=True),
        sa.Column("item_name", sa.String(length=200), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
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
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("prescription_id", sa.Uuid(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("medication_name", sa.String(length=200), nullable=False),
        sa.Column("dosage", sa.String(length=100), nullable=False),
        sa.Column("frequency", sa.String(length=100), nullable=False),
        sa.Column("duration", sa.String(length=100), nullable=True),
        sa.Column("quantity", sa.Integer(), nullable=True),
        sa.Column("refills", sa.Integer(), nullable=False),
        sa.Column("instructions", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            TIMESTAMPTZ,
            nullable=False,
        ),
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
    op.drop_index(op.f("ix_prescription_items_prescription_id"), table_name="prescription_items")
    op.drop_table("prescription_items")
    op.drop_index(op.f("ix_order_items_order_id"), table_name="order_items")
    op.drop_table("order_items")
    op.drop_index("ix_tasks_status", table_name="tasks")
    op.drop_index(
        "ix_tasks_patient_id",
        table_name="tasks",
        postgresql_where=sa.text("patient_id IS NOT NULL"),
        sqlite_where=sa.text("patient_id IS NOT NULL"),
    )
    op.drop_index(
        "ix_tasks_encounter_id",
        table_name="tasks",
        postgresql_where=sa.text("encounter_id IS NOT NULL"),
        sqlite_where=sa.text("encounter_id IS NOT NULL"),
    )
    op.drop_index("ix_tasks_created_by", table_name="tasks")
    op.drop_index(
        "ix_tasks_assigned_to_status_due_date",
        table_name="tasks",
        postgresql_where=sa.text("assigned_to IS NOT NULL"),
        sqlite_where=sa.text("assigned_to IS NOT NULL"),
    )
    op.drop_table("tasks")
    op.drop_index("ix_prescriptions_patient_id_created_at", table_name="prescriptions")
    op.drop_index("ix_prescriptions_encounter_id", table_name="prescriptions")
    op.drop_index("ix_prescriptions_doctor_id", table_name="prescriptions")
    op.drop_table("prescriptions")
    op.drop_index("ix_orders_status", table_name="orders")
    op.drop_index("ix_orders_patient_id_created_at", table_name="orders")
    op.drop_index("ix_orders_encounter_id", table_name="orders")
    op.drop_index("ix_orders_doctor_id", table_name="orders")
    op.drop_table("orders")
    op.drop_index("ix_encounters_patient_id_start_time", table_name="encounters")
    op.drop_index("ix_encounters_doctor_id_start_time", table_name="encounters")
    op.drop_index(
        "ix_encounters_appointment_id",
        table_name="encounters",
        postgresql_where=sa.text("appointment_id IS NOT NULL"),
        sqlite_where=sa.text("appointment_id IS NOT NULL"),
    )
    op.drop_table("encounters")
    op.drop_index("ix_appointments_status", table_name="appointments")
    op.drop_index("ix_appointments_patient_id_start_time", table_name="appointments")
    op.drop_index("ix_appointments_doctor_id_start_time", table_name="appointments")
    op.drop_index(
        "ix_appointments_created_by",
        table_name="appointments",
        postgresql_where=sa.text("created_by IS NOT NULL"),
        sqlite_where=sa.text("created_by IS NOT NULL"),
    )
    op.drop_table("appointments")
    op.drop_index("ix_alerts_user_id_is_read_created_at", table_name="alerts")
    op.drop_index(
        "ix_alerts_patient_id",
        table_name="alerts",
        postgresql_where=sa.text("patient_id IS NOT NULL"),
        sqlite_where=sa.text("patient_id IS NOT NULL"),
    )
    op.drop_table("alerts")
    op.drop_table("users")
    op.drop_index(
        "uq_patients_mrn",
        table_name="patients",
        postgresql_where=sa.text("mrn IS NOT NULL"),
        sqlite_where=sa.text("mrn IS NOT NULL"),
    )
    op.drop_index(
        "uq_patients_abha_id",
        table_name="patients",
        postgresql_where=sa.text("abha_id IS NOT NULL"),
        sqlite_where=sa.text("abha_id IS NOT NULL"),
    )
    op.drop_index("ix_patients_last_name_first_name", table_name="patients")
    op.drop_table("patients")
    op.drop_index("ix_audit_events_entity_type_entity_id_seq", table_name="audit_events")
    op.drop_table("audit_events")
