"""A database whose history forked (a replica promoted after a failover that lost the last
commits, a backup restored to an earlier point) shares its copies' identity, as a replica
must; its newer timeline tells it apart: the namespace is emptied before it is used."""

from __future__ import annotations

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import ProgrammingError

from dr_assistant_data import DataLayer
from dr_assistant_data.testing.servers.ports import eventually
from tests.helpers.cache_helpers import new_patient
from tests.helpers.layers import CACHE_PREFIX, settings_for
from tests.helpers.process_steps import in_process, last_name, rename

pytestmark = pytest.mark.servers

SHARED = {"cache_prefix": CACHE_PREFIX}


def replayed(url: str, patient_id: object) -> bool:
    """Whether the replica holds the patient (False while it has not replayed the table)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            query = text("SELECT count(*) FROM patients WHERE id = :id")
            return connection.execute(query, {"id": patient_id}).scalar() == 1
    except ProgrammingError:
        return False
    finally:
        engine.dispose()


def test_a_promoted_replica_never_serves_what_its_old_primary_cached_after_the_fork(
    primary_and_replica,
):
    primary, replica = primary_and_replica
    with DataLayer(settings_for(primary.url)) as layer:
        layer.migrate()
        patient = new_patient(layer).id
    eventually(lambda: replayed(replica.url, patient), "the replica to replay the patient")
    assert in_process(last_name, primary.url, SHARED, patient) == "Rao"

    replica.promote()  # the old primary goes on: a commit the new one never receives
    in_process(rename, primary.url, SHARED, patient, "Sharma")
    assert in_process(last_name, primary.url, SHARED, patient) == "Sharma"  # cached

    assert in_process(last_name, replica.url, SHARED, patient) == "Rao"
