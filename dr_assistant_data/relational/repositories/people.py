"""Users (staff) and patients."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..fields import ABHA_NUMBER, MRN, USERNAME
from ..models import Patient, User
from .base import Repository


class UserRepository(Repository[User]):
    model = User
    filterable = frozenset({"role", "status", "specialty", "username", "email"})
    sortable = frozenset({"created_at", "updated_at", "full_name", "username", "last_login_at"})
    default_order = "full_name"
    cached = True

    def get_by_username(self, username: Any) -> User | None:
        """The active user who logs in with ``username``, or ``None``."""
        name = USERNAME.clean(username, "username")
        statement = select(User).where(User.username == name, User.status == "active")
        return self.session.scalars(statement).first()


class PatientRepository(Repository[Patient]):
    model = Patient
    filterable = frozenset(
        {"status", "gender", "blood_group", "mrn", "abha_id", "phone", "email", "date_of_birth"}
    )
    sortable = frozenset(
        {"created_at", "updated_at", "last_name", "first_name", "date_of_birth", "mrn"}
    )
    default_order = "last_name"
    cached = True

    def find_by_mrn(self, mrn: Any) -> Patient | None:
        """The patient with this medical record number, or ``None``."""
        value = MRN.clean(mrn, "mrn")
        return self.session.scalars(select(Patient).where(Patient.mrn == value)).first()

    def find_by_abha_id(self, abha_id: Any) -> Patient | None:
        """The patient with this ABHA number (any usual formatting), or ``None``."""
        value = ABHA_NUMBER.clean(abha_id, "abha_id")
        return self.session.scalars(select(Patient).where(Patient.abha_id == value)).first()
