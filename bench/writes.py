"""``patients.create`` and its commit, in a fresh unit of work as a request makes it,
alternated with a raw psycopg2 INSERT + COMMIT and with the plain ORM's add + commit."""

from __future__ import annotations

import uuid
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from dr_assistant_data import DataLayer
from dr_assistant_data.relational.models import Patient

from . import peers
from .round_trips import Counter, trips_of
from .scratch import raw_postgres
from .timing import nothing, race

FIELDS = {
    "first_name": "Asha",
    "last_name": "Created",
    "date_of_birth": date(1980, 1, 1),
    "gender": "female",
}
INSERT = (
    "INSERT INTO patients (id, version, created_at, updated_at, status, allergies, first_name,"
    " last_name, date_of_birth, gender) VALUES (%s, 1, now(), now(), 'active', '[]', %s, %s,"
    " %s, %s)"
)


def create(dl: DataLayer, counter: Counter, *, calls: int, runs: int) -> dict[str, Any]:
    connection = raw_postgres(dl)
    cursor = connection.cursor()
    engine = peers.plain_engine(dl)
    counter.watch(engine)

    def layer_create() -> object:
        with dl.unit_of_work(actor="bench") as uow:
            return uow.patients.create(**FIELDS)

    def raw_create() -> None:
        cursor.execute(INSERT, (str(uuid.uuid4()), *FIELDS.values()))
        connection.commit()

    def orm_create() -> None:
        with Session(engine) as session:
            session.add(Patient(id=uuid.uuid4(), **FIELDS))
            session.commit()

    contenders = {
        "create": (layer_create, nothing),
        "raw_insert_commit": (raw_create, nothing),
        "orm_create": (orm_create, nothing),
    }
    timed = race(contenders, calls=calls, runs=runs)
    figures: dict[str, Any] = {f"{name}_us": timed.us(name) for name in contenders}
    for name, (call, _) in contenders.items():
        figures[f"{name}_round_trips"] = str(trips_of(counter, name, call))
    for figure, first in (("create_ratio", "create"), ("orm_create_ratio", "orm_create")):
        ratio = timed.ratio(first, "raw_insert_commit")
        figures[figure] = ratio.median
        figures[f"{figure}_p10"], figures[f"{figure}_p90"] = ratio.p10, ratio.p90
    connection.close()
    engine.dispose()
    return figures
