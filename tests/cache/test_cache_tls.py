"""TLS to Redis: a ``rediss://`` URL with ``REDIS_SSL_CA_CERT`` caches through a real
``redis-server`` that listens with TLS only; a certificate the CA did not sign is refused and
the cache falls back to the databases. MongoDB's TLS options reach the driver."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from dr_assistant_data import DataLayer, Settings
from dr_assistant_data.errors import ConfigurationError
from dr_assistant_data.testing.queries import counting_queries
from dr_assistant_data.testing.servers.ports import free_port
from dr_assistant_data.testing.servers.redis_servers import NO_PERSISTENCE, redis_processes
from tests.helpers.cache_helpers import new_patient, read_patient
from tests.helpers.certificates import self_signed
from tests.helpers.layers import layer_with
from tests.helpers.process_steps import listening

pytestmark = pytest.mark.servers


@pytest.fixture(scope="module")
def tls_redis() -> Iterator[tuple[int, Path, Path]]:
    """A throwaway ``redis-server`` whose only data port speaks TLS (the plain port it also
    opens is used only to see it started), its certificate, and an unrelated one."""
    folder = Path(tempfile.mkdtemp(prefix="dr-assistant-redis-tls-"))
    cert, key = self_signed(folder, "redis")
    other, _ = self_signed(folder, "other")
    tls_port = free_port()
    tls = ("--tls-port", str(tls_port), "--tls-cert-file", str(cert), "--tls-key-file", str(key))
    try:
        with redis_processes() as start:
            start(*NO_PERSISTENCE, *tls, "--tls-auth-clients", "no")
            yield tls_port, cert, other
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_the_tls_port_refuses_a_plain_connection(tls_redis):
    port, _cert, _other = tls_redis
    plain = redis.Redis(port=port, socket_timeout=1)
    with pytest.raises(redis.RedisError):
        plain.ping()
    plain.close()


def test_a_cached_read_works_over_tls_with_the_trusted_ca(dl, tls_redis):
    port, cert, _other = tls_redis
    settings = {"redis_url": f"rediss://127.0.0.1:{port}/0", "redis_ssl_ca_cert": str(cert)}
    with layer_with(dl, **settings) as layer:
        patient = new_patient(listening(layer))
        read_patient(layer, patient.id)
        with counting_queries(layer.engine) as queries:
            assert read_patient(layer, patient.id).first_name == "Ananya"
        assert queries.count == 0
        assert layer.health()["redis"]["ok"]


def test_a_server_certificate_the_ca_did_not_sign_is_refused_and_the_clinic_reads_on(dl, tls_redis):
    port, _cert, other = tls_redis
    settings = {"redis_url": f"rediss://127.0.0.1:{port}/0", "redis_ssl_ca_cert": str(other)}
    with layer_with(dl, **settings) as layer:
        patient = new_patient(listening(layer))
        assert read_patient(layer, patient.id).first_name == "Ananya"
        assert not layer.health()["redis"]["ok"]
        assert layer.cache_stats()["entities"]["error"] >= 1


def test_a_redis_ca_certificate_needs_a_rediss_url():
    with pytest.raises(ConfigurationError) as raised:
        Settings(database_url="sqlite://", redis_ssl_ca_cert="/etc/ssl/ca.pem")
    assert "REDIS_SSL_CA_CERT" in str(raised.value)


def test_the_redis_ca_certificate_is_read_from_the_environment():
    settings = Settings.from_env(
        {"REDIS_URL": "rediss://cache.clinic.internal:6380/0", "REDIS_SSL_CA_CERT": "/ca.pem"}
    )
    assert settings.redis_ssl_ca_cert == "/ca.pem"


def test_mongodb_tls_options_in_the_uri_reach_the_driver(tls_redis):
    _port, cert, _other = tls_redis
    uri = f"mongodb://127.0.0.1:27017/clinic?tls=true&tlsCAFile={cert}"
    with DataLayer(Settings(database_url="sqlite://", mongodb_uri=uri)) as layer:
        client = layer.documents._connect()  # connect=False: nothing dialled
        options = client.options
        client.close()
    assert options.pool_options._ssl_context is not None
    assert options._options["tlsCAFile"] == str(cert)
