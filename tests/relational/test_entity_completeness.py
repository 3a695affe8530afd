"""Every entity (a model callers write: a subclass of ``Entity``; the layer's own
bookkeeping tables are not) has what CONTRIBUTING.md's "Adding an entity" lists, so a new
one cannot forget a piece: a repository the unit of work exposes (an item through its
parent's), a factory ``dr_assistant_data.testing`` exports, and a caching decision, cached
(an entry of ``POLICY``) or not on purpose (an entry of ``NOT_CACHED``, with its reason)."""

from __future__ import annotations

import inspect

import dr_assistant_data.testing
from dr_assistant_data.relational.base import Base, Entity
from dr_assistant_data.relational.caching.policy import NOT_CACHED, POLICY
from dr_assistant_data.relational.repositories.base import Repository

ENTITIES = {
    mapper.class_
    for mapper in Base.registry.mappers
    if issubclass(mapper.class_, Entity) and mapper.class_.__module__.startswith("dr_assistant")
}


def names(models):
    return sorted(model.__name__ for model in models)


def test_there_are_entities_to_check():
    assert {"Patient", "Condition", "PrescriptionItem"} <= set(names(ENTITIES))


def test_every_entity_is_written_through_a_repository_of_the_unit_of_work(dl):
    with dl.unit_of_work(actor="test") as uow:
        repositories = [
            value for _, value in inspect.getmembers(uow) if isinstance(value, Repository)
        ]
    written = {repository.model for repository in repositories} | {
        repository.item_model for repository in repositories if hasattr(repository, "item_model")
    }
    assert names(ENTITIES - written) == []


def test_every_entity_has_a_factory_the_testing_package_exports():
    exported = (
        getattr(dr_assistant_data.testing, name) for name in dr_assistant_data.testing.__all__
    )
    made = {factory._meta.model for factory in exported if hasattr(factory, "_meta")}
    assert names(ENTITIES - made) == []


def test_every_entity_is_cached_or_declared_not_cached_with_a_reason():
    cached = {read.model for read in POLICY}
    not_cached = {model for model, reason in NOT_CACHED if reason.strip()}
    assert names(ENTITIES - cached - not_cached) == []


def test_no_entity_is_both_cached_and_declared_not_cached():
    cached = {read.model for read in POLICY}
    assert names(cached & {model for model, _ in NOT_CACHED}) == []
