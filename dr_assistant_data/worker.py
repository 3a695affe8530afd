"""Background tasks: a unit of work per task with no web framework around it, and the
post-fork hook for prefork pools.

    dl = DataLayer(Settings.from_env())

    @task_unit_of_work(dl, actor="reminder-worker")
    def send_reminders(uow, doctor_id, day):
        for appointment in uow.appointments.schedule_for(doctor_id, day):
            ...

    send_reminders(doctor_id, day, correlation_id=request_id)  # correlation_id optional

The task's writes commit when it returns and roll back when it raises (the exception
propagates, so the task queue's retry policy sees it).

A layer built before the pool forks (Celery prefork, gunicorn ``--preload``,
``multiprocessing``) is safe: after ``os.fork()`` the child drops the pooled connections
it inherited without touching them and opens its own. Servers that fork outside Python's
``os.fork()`` (uWSGI without ``lazy-apps``) must call :func:`after_fork` in their post-fork
hook; calling it elsewhere is harmless:

    from celery.signals import worker_process_init
    worker_process_init.connect(lambda **_: after_fork())       # Celery

    def post_fork(server, worker):                              # gunicorn.conf.py
        after_fork()

    from uwsgidecorators import postfork                        # uWSGI
    postfork(after_fork)
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Concatenate, ParamSpec, TypeVar, cast

from .layer import DataLayer
from .relational.connection.fork_safety import release_inherited_pools
from .unit_of_work import UnitOfWork

_P = ParamSpec("_P")
_R = TypeVar("_R")


def task_unit_of_work(
    dl: DataLayer, *, actor: str
) -> Callable[[Callable[Concatenate[UnitOfWork, _P], _R]], Callable[_P, _R]]:
    """Run the decorated task inside its own unit of work, passed as the first argument.

    The wrapped function accepts a keyword ``correlation_id`` (the id of the request that
    queued the task, for the audit trail); a new one is generated when omitted.
    """

    def decorate(task: Callable[Concatenate[UnitOfWork, _P], _R]) -> Callable[_P, _R]:
        @functools.wraps(task)
        def run(*args: _P.args, **kwargs: _P.kwargs) -> _R:
            # a keyword of the wrapper, not of the task: its ParamSpec cannot type it
            correlation_id = cast("str | None", kwargs.pop("correlation_id", None))
            with dl.unit_of_work(actor=actor, correlation_id=correlation_id) as uow:
                return task(uow, *args, **kwargs)

        return run

    return decorate


def after_fork() -> None:
    """Give this process fresh connection pools if it inherited any; idempotent."""
    release_inherited_pools()
