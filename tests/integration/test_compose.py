"""``compose.yaml`` stays a valid description of the three stores (``docker compose config``
cannot run here): services, images, health checks, volumes, loopback-only ports, and the
environment variables its header tells developers to export are ones the layer reads."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dr_assistant_data import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "compose.yaml"
STORES = ("postgres", "mongodb", "redis")


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def exported() -> dict[str, str]:
    """The ``export NAME=value`` lines of the file's header comment."""
    return dict(re.findall(r"^#\s+export (\w+)=(\S+)$", COMPOSE.read_text(), re.MULTILINE))


def test_it_defines_the_three_stores_with_pinned_images(compose):
    assert set(compose["services"]) == set(STORES)
    for service in compose["services"].values():
        name, _, tag = service["image"].partition(":")
        assert name
        assert tag not in ("", "latest")


@pytest.mark.parametrize("store", STORES)
def test_every_store_has_a_health_check(compose, store):
    check = compose["services"][store]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL")
    assert check["retries"] >= 1


@pytest.mark.parametrize("store", STORES)
def test_every_store_keeps_its_data_in_a_declared_volume(compose, store):
    [mount] = compose["services"][store]["volumes"]
    volume, _, target = mount.partition(":")
    assert volume in compose["volumes"]
    assert target.startswith("/")


@pytest.mark.parametrize("store", STORES)
def test_ports_are_published_on_loopback_only(compose, store):
    for port in compose["services"][store]["ports"]:
        assert port.startswith("127.0.0.1:")


def test_the_exported_urls_reach_the_services_as_the_layer_reads_them(compose, exported):
    assert set(exported) == {"DATABASE_URL", "MONGODB_URI", "REDIS_URL"}
    settings = Settings.from_env(exported)

    postgres = compose["services"]["postgres"]["environment"]
    assert settings.database_url == (
        f"postgresql+psycopg2://{postgres['POSTGRES_USER']}:{postgres['POSTGRES_PASSWORD']}"
        f"@127.0.0.1:5432/{postgres['POSTGRES_DB']}"
    )
    assert (settings.mongodb_uri, settings.redis_url) == (
        exported["MONGODB_URI"],
        exported["REDIS_URL"],
    )
    for store, url in (("mongodb", settings.mongodb_uri), ("redis", settings.redis_url)):
        [port] = compose["services"][store]["ports"]
        assert f"127.0.0.1:{port.split(':')[1]}/" in url
