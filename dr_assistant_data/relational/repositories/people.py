"""Users (staff) and patients."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from ..fields import USERNAME
from ..models import Patient, User
from .base import Repository, check_page


class UserRepository(Repository[User]):
    model = User
    filterable = frozenset({"role", "status", "specialty", "username", "email"})
    sortable = frozenset({"created_at", "updated_at", "full_name", "username", "last_login_at"})
    default_order = "full_name"

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

    def find_by_mrn(self, mrn: Any) -> Patient | None:
        """The patient with this medical record number, or ``None``."""
        return self.session.scalars(select(Patient).where(self._equals("mrn", mrn))).first()

    def find_by_abha_id(self, abha_id: Any) -> Patient | None:
        """The patient with this ABHA number (any usual formatting), or ``None``.

        One indexed query on the blind index: the stored number is encrypted."""
        statement = select(Patient).where(self._equals("abha_id", abha_id))
        return self.session.scalars(statement).first()

    def find_by_phone(self, phone: Any, *, limit: int = 50) -> list[Patient]:
        """Patients with this phone number (any usual formatting; a family may share one),
        by name. One indexed query on the blind index."""
        check_page(limit, 0)
        statement = (
            select(Patient)
            .where(self._equals("phone", phone))
            .order_by(*self._ordering(None))
            .limit(limit)
        )
        return list(self.session.scalars(statement))
