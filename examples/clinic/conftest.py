"""Fixtures of the clinic's tests: the app on the test's own stores, a signed-in doctor.

``data_layer`` and ``uow`` come from the pytest plugin the package installs: each test
gets its own migrated database, document store and cache, and a unit of work with the
factories bound to it.
"""

# --8<-- [start:fixtures]
from __future__ import annotations

import secrets

import pytest
from clinic import create_app
from flask import Flask
from flask.testing import FlaskClient

from dr_assistant_data import DataLayer, UnitOfWork
from dr_assistant_data.relational.models import User
from dr_assistant_data.testing import DoctorFactory


@pytest.fixture
def app(data_layer: DataLayer) -> Flask:
    return create_app(data_layer, TESTING=True, SECRET_KEY=secrets.token_hex())


@pytest.fixture
def doctor(uow: UnitOfWork) -> User:
    doctor = DoctorFactory()
    uow.commit()  # the app's requests run in units of work of their own: let them see it
    return doctor


@pytest.fixture
def client(app: Flask, doctor: User) -> FlaskClient:
    """A browser signed in as the doctor."""
    client = app.test_client()
    with client.session_transaction() as session:
        session["user_id"] = str(doctor.id)
    return client


# --8<-- [end:fixtures]
