"""dl.cache (the general cache service) and dl.sessions (the auth session store), on Redis
and on the in-process cache (``memory://``)."""

from __future__ import annotations

import threading
import time

import pytest

from dr_assistant_data import BackendUnavailableError, DataLayer
from dr_assistant_data.testing.servers.ports import free_port
from tests.helpers.layers import settings_for


@pytest.fixture
def cache(cache_layer):
    return cache_layer.cache


@pytest.fixture
def down(dl):
    layer = DataLayer(
        settings_for(dl.settings.database_url, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    )
    yield layer
    layer.close()


def test_values_round_trip_as_json(cache):
    assert cache.set("prefs:1", {"theme": "dark", "sizes": [1, 2]})
    assert cache.get("prefs:1") == {"theme": "dark", "sizes": [1, 2]}
    assert cache.exists("prefs:1")
    cache.delete("prefs:1")
    assert cache.get("prefs:1") is None
    assert not cache.exists("prefs:1")


def test_a_value_expires_after_its_ttl(cache):
    cache.set("otp:1", "123456", ttl=0.1)
    time.sleep(0.2)
    assert cache.get("otp:1") is None


def test_set_if_absent_stores_only_the_first_value(cache):
    assert cache.set_if_absent("once:1", "first")
    assert not cache.set_if_absent("once:1", "second")
    assert cache.get("once:1") == "first"


def test_incr_and_decr_count(cache):
    assert cache.incr("hits:1") == 1
    assert cache.incr("hits:1", by=5) == 6
    assert cache.decr("hits:1", by=2) == 4


def producer_calls_for_concurrent_misses(cache, key: str, readers: int = 10) -> int:
    """How often ``get_or_set`` of ``key`` calls a slow producer when ``readers`` threads
    miss it at once."""
    calls = []
    start = threading.Barrier(readers)

    def producer():
        calls.append(1)
        time.sleep(0.2)
        return {"count": 7}

    def read():
        start.wait()
        assert cache.get_or_set(key, producer, ttl=5) == {"count": 7}

    threads = [threading.Thread(target=read) for _ in range(readers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return len(calls)


def test_get_or_set_calls_the_producer_once_for_concurrent_misses(cache):
    assert producer_calls_for_concurrent_misses(cache, "report:1") == 1


def test_delete_many_and_delete_pattern_remove_only_what_they_name(cache):
    for key in ("a:1", "a:2", "a:3", "b:1"):
        cache.set(key, 1)
    cache.delete_many(["a:1"])
    assert cache.delete_pattern("a:*") == 2
    assert [cache.exists(key) for key in ("a:1", "a:2", "a:3", "b:1")] == [False] * 3 + [True]


def test_with_redis_down_reads_miss_and_writes_are_skipped(down):
    assert down.cache.get("x") is None
    assert down.cache.set("x", 1) is False
    assert down.cache.get_or_set("x", lambda: 5) == 5


def test_with_redis_down_counters_and_set_if_absent_raise(down):
    with pytest.raises(BackendUnavailableError):
        down.cache.incr("x")
    with pytest.raises(BackendUnavailableError):
        down.cache.set_if_absent("x", 1)


@pytest.fixture
def sessions(cache_layer):
    return cache_layer.sessions


def test_a_session_lives_until_revoked(sessions):
    session_id = sessions.create("user-1", {"role": "doctor"})
    assert sessions.get(session_id) == {"user_id": "user-1", "data": {"role": "doctor"}}
    sessions.revoke(session_id)
    assert sessions.get(session_id) is None


def test_touch_slides_a_sessions_expiry(sessions):
    sessions.ttl = 0.3
    session_id = sessions.create("user-1")
    for _ in range(3):
        time.sleep(0.15)
        assert sessions.touch(session_id)
    assert sessions.get(session_id) is not None
    time.sleep(0.4)
    assert sessions.get(session_id) is None
    assert not sessions.touch(session_id)


def test_revoke_all_ends_every_session_of_one_user(sessions):
    mine = [sessions.create("user-1") for _ in range(3)]
    theirs = sessions.create("user-2")
    assert sessions.revoke_all("user-1") == 3
    assert [sessions.get(s) for s in mine] == [None] * 3
    assert sessions.get(theirs) is not None


def test_the_session_store_raises_when_redis_is_down(down):
    with pytest.raises(BackendUnavailableError):
        down.sessions.get("anything")
