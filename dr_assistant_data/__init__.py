"""dr-assistant-data: the data layer of Dr. Assistant.

from dr_assistant_data import DataLayer, Settings

dl = DataLayer(Settings.from_env())
with dl.unit_of_work(actor=str(user_id)) as uow:
    patient = uow.patients.get(patient_id)
"""

from .errors import (
    BackendUnavailableError,
    ConfigurationError,
    ConflictError,
    DataLayerError,
    DuplicateError,
    ImmutableRecordError,
    NotFoundError,
    SchemaNotMigratedError,
    ValidationError,
)
from .layer import DataLayer
from .settings import Settings
from .unit_of_work import UnitOfWork

__all__ = [
    "BackendUnavailableError",
    "ConfigurationError",
    "ConflictError",
    "DataLayer",
    "DataLayerError",
    "DuplicateError",
    "ImmutableRecordError",
    "NotFoundError",
    "SchemaNotMigratedError",
    "Settings",
    "UnitOfWork",
    "ValidationError",
]
