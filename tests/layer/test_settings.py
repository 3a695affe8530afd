"""Settings: the old layer's environment names, clear errors, no silent embedded fallback."""

from __future__ import annotations

import pytest

from dr_assistant_data import ConfigurationError, Settings
from dr_assistant_data.settings import (
    DEFAULT_DATABASE_URL,
    ENVIRONMENT_VARIABLES,
    misspelt_settings,
)
from tests.helpers.error_chains import assert_carries_no_caller_value


def test_defaults_point_at_local_servers():
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.redis_url == "redis://127.0.0.1:6379/0"
    assert settings.cache_prefix == "dr_assistant:"
    assert not settings.is_embedded


def test_database_url_is_built_from_the_old_layers_variables():
    settings = Settings.from_env(
        {
            "DB_HOST": "db.internal",
            "DB_PORT": "6432",
            "DB_NAME": "clinic",
            "DB_USER": "app",
            "DB_PASSWORD": "p@ss:word/1",
        }
    )
    assert settings.database_url == (
        "postgresql+psycopg2://app:p%40ss%3Aword%2F1@db.internal:6432/clinic"
    )


def test_database_url_wins_over_the_parts_and_legacy_schemes_are_upgraded():
    settings = Settings.from_env(
        {"DATABASE_URL": "postgres://app@primary/clinic", "DB_HOST": "ignored"}
    )
    assert settings.database_url == "postgresql+psycopg2://app@primary/clinic"


def test_millisecond_variables_become_seconds():
    settings = Settings.from_env(
        {"DB_POOL_IDLE_TIMEOUT": "30000", "DB_POOL_CONNECTION_TIMEOUT": "2500", "DB_POOL_MAX": "7"}
    )
    assert settings.db_pool_recycle == 30.0
    assert settings.db_pool_timeout == 2.5
    assert settings.db_connect_timeout == 2.5
    assert settings.db_pool_size == 7


def test_redis_url_is_built_from_parts_with_the_password_escaped():
    settings = Settings.from_env(
        {"REDIS_HOST": "cache", "REDIS_PORT": "6380", "REDIS_DB": "2", "REDIS_PASSWORD": "a/b"}
    )
    assert settings.redis_url == "redis://:a%2Fb@cache:6380/2"
    assert Settings.from_env({"REDIS_URL": "redis://x:1/0", "REDIS_HOST": "no"}).redis_url == (
        "redis://x:1/0"
    )


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("DB_POOL_MAX", "many"),
        ("DB_PORT", "54x"),
        ("DB_POOL_CONNECTION_TIMEOUT", "-5"),
        ("DB_SSL", "perhaps"),
        ("MONGODB_POOL_SIZE", "1.5"),
        ("REDIS_PORT", "not-a-port"),
        ("DB_SLOW_QUERY_MS", "-1"),
    ],
)
def test_a_bad_value_names_its_variable(variable, value):
    env = {"DB_HOST": "db", variable: value}
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(env)
    assert raised.value.variable == variable
    assert variable in str(raised.value)


def test_the_slow_query_threshold_is_read_in_milliseconds():
    assert Settings.from_env({"DB_SLOW_QUERY_MS": "250"}).db_slow_query_ms == 250


def test_pool_size_below_one_is_refused():
    with pytest.raises(ConfigurationError, match="DB_POOL_MAX"):
        Settings(db_pool_size=0)


def test_production_never_falls_back_to_a_default_or_embedded_database():
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"APP_ENV": "production"})
    assert raised.value.variable == "DATABASE_URL"
    with pytest.raises(ConfigurationError, match="embedded"):
        Settings.from_env({"APP_ENV": "production", "DATABASE_URL": "sqlite:///clinic.db"})


def test_sqlite_is_embedded_mode_outside_production():
    assert Settings(database_url="sqlite:///clinic.db").is_embedded


def test_unknown_environment_and_time_zone_are_refused():
    with pytest.raises(ConfigurationError, match="APP_ENV"):
        Settings.from_env({"APP_ENV": "staging-ish"})
    with pytest.raises(ConfigurationError, match="CLINIC_TIMEZONE"):
        Settings.from_env({"CLINIC_TIMEZONE": "Mars/Olympus"})


def test_non_database_urls_are_refused():
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        Settings(database_url="mysql://root@localhost/clinic")
    with pytest.raises(ConfigurationError, match="DATABASE_URL"):
        Settings(database_url="not a url")


def test_repr_masks_every_password():
    settings = Settings(
        database_url="postgresql+psycopg2://app:s3cret@db/clinic",
        redis_url="redis://:hunter2@cache:6379/0",
        mongodb_uri="mongodb://notes:m0ngo@mongo/clinic",
    )
    shown = repr(settings)
    for secret in ("s3cret", "hunter2", "m0ngo"):
        assert secret not in shown
    assert "db/clinic" in shown


def test_range_errors_name_the_environment_variable():
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"DB_POOL_MAX": "0"})
    assert raised.value.variable == "DB_POOL_MAX"
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"DB_POOL_IDLE_TIMEOUT": "-1"})
    assert raised.value.variable == "DB_POOL_IDLE_TIMEOUT"


def test_a_mongodb_timeout_of_zero_is_refused():
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"MONGODB_TIMEOUT": "0"})
    assert raised.value.variable == "MONGODB_TIMEOUT"


def test_cache_settings_come_from_their_variables():
    settings = Settings.from_env(
        {
            "REDIS_SOCKET_TIMEOUT": "150",
            "CACHE_LOCK_TIMEOUT": "2500",
            "CACHE_BREAKER_BACKOFF": "1000",
            "CACHE_TTL_ENTITY": "600",
            "CACHE_TTL_SCHEDULE": "30",
            "REDIS_KEY_PREFIX": "clinic7:",
        }
    )
    assert (settings.redis_socket_timeout, settings.cache_lock_timeout) == (0.15, 2.5)
    assert settings.cache_breaker_backoff == 1.0
    assert (settings.cache_ttl_entity, settings.cache_ttl_schedule) == (600.0, 30.0)
    assert settings.cache_prefix == "clinic7:"


@pytest.mark.parametrize("variable", ["CACHE_TTL_COUNT", "REDIS_SOCKET_TIMEOUT"])
def test_a_cache_setting_that_is_not_a_positive_number_names_its_variable(variable):
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({variable: "-5"})
    assert raised.value.variable == variable


def test_replica_urls_lag_and_sticky_window_come_from_the_environment():
    settings = Settings.from_env(
        {
            "DATABASE_REPLICA_URLS": "postgres://app@r1/clinic, postgresql+psycopg2://app@r2/clinic",
            "DB_REPLICA_MAX_LAG": "2500",
            "DB_REPLICA_STICKY": "0",
        }
    )
    assert settings.database_replica_urls == (
        "postgresql+psycopg2://app@r1/clinic",
        "postgresql+psycopg2://app@r2/clinic",
    )
    assert settings.db_replica_max_lag == 2.5
    assert settings.db_replica_sticky == 0


def test_a_replica_password_is_masked_in_the_settings_repr():
    settings = Settings(database_replica_urls=("postgresql+psycopg2://app:secret@r1/clinic",))
    assert "secret" not in repr(settings)


def test_redis_nodes_must_be_host_and_port():
    with pytest.raises(ConfigurationError, match="REDIS_SENTINELS"):
        Settings.from_env({"REDIS_SENTINELS": "10.0.0.1:26379,10.0.0.2"})


def test_sentinels_and_a_cluster_cannot_both_be_configured():
    with pytest.raises(ConfigurationError, match="REDIS_CLUSTER_NODES"):
        Settings.from_env({"REDIS_SENTINELS": "s1:26379", "REDIS_CLUSTER_NODES": "c1:7000"})


def test_a_cache_prefix_with_braces_is_refused():
    with pytest.raises(ConfigurationError, match="REDIS_KEY_PREFIX"):
        Settings(cache_prefix="{clinic}:")


def test_security_variables_are_read():
    settings = Settings.from_env({"AUDIT_READS": "true", "DB_SSL_ROOT_CERT": "/etc/ssl/ca.pem"})
    assert settings.audit_reads is True
    assert settings.db_ssl_root_cert == "/etc/ssl/ca.pem"


def test_audit_reads_must_be_a_flag():
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"AUDIT_READS": "sometimes"})
    assert raised.value.variable == "AUDIT_READS"


@pytest.mark.parametrize(
    ("environ", "variable", "secret"),
    [
        ({"DB_POOL_MAX": "ten-secretpw"}, "DB_POOL_MAX", "ten-secretpw"),
        (
            {"DATABASE_URL": "postgresql://app:secretpw@db:notaport/clinic"},
            "DATABASE_URL",
            "secretpw",
        ),
        ({"DATABASE_URL": "secretpw://"}, "DATABASE_URL", "secretpw"),
        ({"CLINIC_TIMEZONE": "Asia/secretpw"}, "CLINIC_TIMEZONE", "secretpw"),
    ],
)
def test_a_refused_setting_names_the_variable_and_chains_nothing_quoting_it(
    environ, variable, secret
):
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(environ)
    assert raised.value.variable == variable
    assert_carries_no_caller_value(raised.value, secret)


def test_a_refused_mongodb_uri_chains_nothing_quoting_it():
    from dr_assistant_data.documents.store import DocumentStore

    with pytest.raises(ConfigurationError) as raised:
        DocumentStore(Settings(mongodb_uri="mongodb://app:secretpw@db:notaport/clinic"))
    assert raised.value.variable == "MONGODB_URI"
    assert_carries_no_caller_value(raised.value, "secretpw")


class _RecordingEnviron(dict[str, str]):
    """An environment that remembers every variable asked for."""

    def __init__(self, values: dict[str, str]) -> None:
        super().__init__(values)
        self.asked: set[str] = set()

    def get(self, name, default=None):  # type: ignore[no-untyped-def]
        self.asked.add(name)
        return super().get(name, default)

    def __getitem__(self, name: str) -> str:
        self.asked.add(name)
        return super().__getitem__(name)


def test_environment_variables_names_exactly_what_from_env_reads():
    from_parts = _RecordingEnviron({"DB_HOST": "db"})
    from_urls = _RecordingEnviron({"APP_ENV": "", "DATABASE_URL": DEFAULT_DATABASE_URL})
    Settings.from_env(from_parts)
    Settings.from_env(from_urls)

    assert from_parts.asked | from_urls.asked == ENVIRONMENT_VARIABLES


def test_a_transaction_pooler_without_a_direct_url_is_refused_naming_the_variable():
    with pytest.raises(ConfigurationError, match=r"^DATABASE_DIRECT_URL: "):
        Settings.from_env({"DATABASE_URL": DEFAULT_DATABASE_URL, "DB_TRANSACTION_POOLER": "true"})


MISSPELT = {
    "DATABSE_URL": "postgresql://app:secretpw@db/clinic",
    "REDIS_KEY_PREFX": "clinic-a:",
    "MONGO_URI": "mongodb://app:secretpw@mongo/clinic",
    "DB_PASWORD": "secretpw",
}


def test_a_misspelt_variable_is_warned_about_with_the_setting_it_resembles(caplog):
    with caplog.at_level("WARNING", logger="dr_assistant_data.settings"):
        Settings.from_env(MISSPELT)

    assert [record.args[1:] for record in caplog.records] == [
        ("DATABSE_URL", "; did you mean DATABASE_URL?"),
        ("DB_PASWORD", "; did you mean DB_PASSWORD?"),
        ("MONGO_URI", "; did you mean MONGODB_URI?"),
        ("REDIS_KEY_PREFX", "; did you mean REDIS_KEY_PREFIX?"),
    ]
    assert "secretpw" not in caplog.text


def test_a_variable_with_the_layers_prefix_that_is_no_setting_is_warned_about(caplog):
    with caplog.at_level("WARNING", logger="dr_assistant_data.settings"):
        Settings.from_env({"DB_POOL_MAXIMUM": "20"})

    assert [record.args[1] for record in caplog.records] == ["DB_POOL_MAXIMUM"]


def test_the_setting_a_prefixed_name_is_taken_for_has_its_prefix():
    # MONGODB_POOL_SIZE is the closest of all names, but a DB_ name means a DB_ setting
    assert misspelt_settings(["DB_POOL_SIZE"]) == [("DB_POOL_SIZE", "DB_POOL_MAX")]


def test_variables_that_are_not_the_layers_are_not_warned_about(caplog):
    unrelated = {"PATH": "/usr/bin", "HOME": "/root", "SECRET_KEY": "x", "PGHOST": "db"}
    with caplog.at_level("WARNING", logger="dr_assistant_data.settings"):
        Settings.from_env({**unrelated, "TEST_DATABASE_ADMIN_URL": "postgresql://db/postgres"})

    assert caplog.records == []


def test_a_layer_built_from_the_environment_warns_of_a_misspelt_variable(monkeypatch, caplog):
    from dr_assistant_data import DataLayer

    monkeypatch.setenv("REDIS_KEY_PREFX", "clinic-a:")
    with caplog.at_level("WARNING", logger="dr_assistant_data.settings"):
        DataLayer().close()

    assert "REDIS_KEY_PREFX" in caplog.text
    assert "REDIS_KEY_PREFIX" in caplog.text


@pytest.mark.parametrize("driver", ["asyncpg", "psycopg", "pg8000"])
def test_an_unsupported_driver_is_a_configuration_error_naming_the_supported_one(driver):
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env({"DATABASE_URL": f"postgresql+{driver}://app:secretpw@db/clinic"})

    assert raised.value.variable == "DATABASE_URL"
    assert f"driver {driver} is not supported" in str(raised.value)
    assert "postgresql+psycopg2://" in str(raised.value)
    assert_carries_no_caller_value(raised.value, "secretpw")


def test_an_unsupported_driver_of_a_replica_is_refused_too():
    with pytest.raises(ConfigurationError) as raised:
        Settings(database_replica_urls=("postgresql+asyncpg://db-replica/clinic",))

    assert raised.value.variable == "DATABASE_REPLICA_URLS"


def test_a_postgresql_url_without_a_driver_runs_on_psycopg2():
    settings = Settings(database_url="postgresql://app@db/clinic")

    assert settings.database_url == "postgresql+psycopg2://app@db/clinic"
