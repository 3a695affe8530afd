"""Users (clinic staff) and patients."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Date, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from ..base import SECRET, Entity, SoftDeleted, Versioned, choice, partial_index, trigram_index
from ..encryption import EncryptedText, blind_index
from ..types import MutableJSONDict, MutableJSONList
from ..vocabulary import BLOOD_GROUPS, GENDERS, PATIENT_STATUSES, USER_ROLES, USER_STATUSES


class User(Versioned, SoftDeleted, Entity):
    """Clinic staff. Email and phone reach a person outside the clinic: they are stored
    encrypted and looked up through blind indexes (``encryption.py``). Emails are indexed
    lower-cased (validation normalizes them), so the unique blind index keeps them unique
    whatever their case."""

    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_email_index", "email_index", unique=True),
        partial_index("ix_users_phone_index", "phone_index"),
    )

    username: Mapped[str] = mapped_column(String(50), unique=True)
    email: Mapped[str] = mapped_column(EncryptedText("users.email"))
    email_index: Mapped[str | None] = blind_index("email")
    full_name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(choice("user_role", USER_ROLES))
    specialty: Mapped[str | None] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(EncryptedText("users.phone"))
    phone_index: Mapped[str | None] = blind_index("phone")
    profile_image_url: Mapped[str | None] = mapped_column(String(2048))
    password_hash: Mapped[str] = mapped_column(String(255), info={SECRET: True})
    status: Mapped[str] = mapped_column(choice("user_status", USER_STATUSES), default="active")
    preferences: Mapped[dict[str, Any]] = mapped_column(MutableJSONDict, default=dict)
    last_login_at: Mapped[datetime | None]


class Patient(Versioned, SoftDeleted, Entity):
    """A person under care. ABHA number, phone and email identify them outside the clinic:
    they are stored encrypted and looked up through blind indexes (``encryption.py``)."""

    __tablename__ = "patients"
    __table_args__ = (
        partial_index("uq_patients_mrn", "mrn", unique=True),
        partial_index("uq_patients_abha_id_index", "abha_id_index", unique=True),
        partial_index("ix_patients_phone_index", "phone_index"),
        partial_index("ix_patients_email_index", "email_index"),
        Index("ix_patients_last_name_first_name", "last_name", "first_name"),
        trigram_index("ix_patients_first_name_trgm", "first_name"),
        trigram_index("ix_patients_last_name_trgm", "last_name"),
    )

    mrn: Mapped[str | None] = mapped_column(String(32))
    abha_id: Mapped[str | None] = mapped_column(EncryptedText("patients.abha_id"))
    abha_id_index: Mapped[str | None] = blind_index("abha_id")
    first_name: Mapped[str] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(100))
    date_of_birth: Mapped[date] = mapped_column(Date)
    gender: Mapped[str] = mapped_column(choice("patient_gender", GENDERS))
    phone: Mapped[str | None] = mapped_column(EncryptedText("patients.phone"))
    phone_index: Mapped[str | None] = blind_index("phone")
    email: Mapped[str | None] = mapped_column(EncryptedText("patients.email"))
    email_index: Mapped[str | None] = blind_index("email")
    address: Mapped[dict[str, Any] | None] = mapped_column(MutableJSONDict)
    emergency_contact: Mapped[dict[str, Any] | None] = mapped_column(MutableJSONDict)
    blood_group: Mapped[str | None] = mapped_column(choice("patient_blood_group", BLOOD_GROUPS))
    allergies: Mapped[list[str]] = mapped_column(MutableJSONList, default=list)
    status: Mapped[str] = mapped_column(
        choice("patient_status", PATIENT_STATUSES), default="active"
    )

    @property
    def full_name(self) -> str:
        return f"{self.first_name} {self.last_name}"

    def age_on(self, day: date) -> int:
        """Completed years of age on ``day``."""
        born = self.date_of_birth
        return day.year - born.year - ((day.month, day.day) < (born.month, born.day))
