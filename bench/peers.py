"""The peers the layer is compared with: plain SQLAlchemy ORM on an engine with
SQLAlchemy's defaults, and SQLAlchemy's dogpile caching recipe
(``examples/dogpile_caching``: a ``do_orm_execute`` hook that caches a statement's frozen
result under its offline cache key and merges it into the session), in its small form."""

from __future__ import annotations

from typing import Any

from dogpile.cache import make_region
from dogpile.cache.api import NO_VALUE
from dogpile.cache.region import CacheRegion
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import ORMExecuteState, Session, loading
from sqlalchemy.orm.interfaces import UserDefinedOption

from dr_assistant_data import DataLayer
from dr_assistant_data.relational import encryption

from .scratch import REDIS_URL


def plain_engine(dl: DataLayer) -> Engine:
    """The layer's database with SQLAlchemy's defaults (no pre-ping, no listeners), the
    keyring attached so that encrypted columns read back."""
    engine = create_engine(dl.settings.database_url, pool_size=2)
    encryption.attach(engine, dl.settings.keyring)
    return engine


class FromCache(UserDefinedOption):
    """The recipe's option: cache this statement's result in ``region``."""

    propagate_to_loaders = False

    def __init__(self, region: str = "default") -> None:
        self.region = region

    def _gen_cache_key(self, anon_map: Any, bindparams: Any) -> None:
        return None

    def cache_key(self, state: ORMExecuteState, statements: dict[Any, str]) -> str:
        key = state.statement._generate_cache_key()
        assert key is not None
        return key.to_offline_string(statements, state.statement, state.parameters or {})


class ORMCache:
    """The recipe's session hook: a statement carrying :class:`FromCache` is answered
    from its region (``get_or_create`` of the frozen result), merged without a load."""

    def __init__(self, regions: dict[str, CacheRegion]) -> None:
        self.regions = regions
        self._statements: dict[Any, str] = {}

    def listen_on_session(self, session_factory: Any) -> None:
        event.listen(session_factory, "do_orm_execute", self._do_orm_execute)

    def _do_orm_execute(self, state: ORMExecuteState) -> Any:
        for option in state.user_defined_options:
            if isinstance(option, FromCache):
                region = self.regions[option.region]
                key = option.cache_key(state, self._statements)
                frozen = region.get_or_create(key, lambda: state.invoke_statement().freeze())
                if frozen is NO_VALUE:
                    raise KeyError(key)
                merged = loading.merge_frozen_result(
                    state.session, state.statement, frozen, load=False
                )
                return merged()
        return None


def recipe_region(prefix: str) -> CacheRegion:
    """A dogpile region on the bench's Redis, as the recipe configures one (pickled
    values, its own key prefix)."""
    return make_region(key_mangler=lambda key: prefix + key).configure(
        "dogpile.cache.redis",
        expiration_time=3600,
        arguments={"url": REDIS_URL, "redis_expiration_time": 3600},
    )


def recipe_sessions(engine: Engine, region: CacheRegion) -> type[Session]:
    """A session class whose statements with ``FromCache()`` go through the recipe."""

    class RecipeSession(Session):
        pass

    ORMCache({"default": region}).listen_on_session(RecipeSession)
    return RecipeSession
