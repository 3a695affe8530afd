"""Flask integration: one ``DataLayer`` per app, one unit of work per request.

    data = DataLayerExtension(actor=lambda: g.user_id)
    data.init_app(app)

    @app.post("/patients/<patient_id>/allergies")
    def add_allergy(patient_id):
        patient = current_uow.patients.get(patient_id) or abort(404)
        patient.allergies.append(request.json["allergy"])
        return {"ok": True}

The unit of work opens on first use of ``data.uow`` / ``current_uow`` in a request (a
request that never touches the data takes no connection). It commits before the response
leaves, so a failed commit replaces the response: the client never reads a success for a
write that was lost. It rolls back when the view raises or when the response status is
``DATA_LAYER_ROLLBACK_FROM_STATUS`` (default 400; 500 commits 4xx responses) or higher.
Teardown always ends it and returns the connection, whatever happened.

The contract's errors, raised by the view or by the commit, become JSON responses
(``error_response``): validation 422, not found 404, conflict and duplicate 409, schema not
migrated 503, back end unavailable 503 with ``Retry-After`` (``DATA_LAYER_RETRY_AFTER``
seconds, default 5). The body names the field, never the value. An application changes
the mapping with ``DataLayerExtension(error_response=...)``: its function gets the error
and returns a Flask response value, or ``None`` for the default. A request that ends in
such an error is rolled back whatever the threshold. Other errors of the layer propagate
(Flask answers 500 and logs them).

The correlation id is the request's ``X-Request-ID`` header (``DATA_LAYER_REQUEST_ID_HEADER``)
when it is a plain token, else a new one; it is echoed on the response. ``flask data
migrate|status|check|health`` runs the command line against the app's layer.
"""

from __future__ import annotations

import atexit
import logging
import re
import uuid
from collections.abc import Callable
from os import environ
from typing import Any

import click
from flask import Flask, Response, current_app, g, jsonify, request
from flask.cli import AppGroup
from flask.typing import ResponseReturnValue
from werkzeug.local import LocalProxy

from .cli.main import run_with
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
from .settings import ENVIRONMENT_VARIABLES, Settings, warn_of_misspelt_settings
from .unit_of_work import UnitOfWork

EXTENSION_KEY = "dr_assistant_data"
_UOW_KEY = "_dr_assistant_data_uow"
_REQUEST_ID_KEY = "_dr_assistant_data_request_id"
_TOKEN = re.compile(r"[A-Za-z0-9._:-]{1,64}")  # the audit column holds 64
EXTENSION_KEYS = frozenset(
    {
        "DATA_LAYER_SETTINGS",
        "DATA_LAYER_ROLLBACK_FROM_STATUS",
        "DATA_LAYER_REQUEST_ID_HEADER",
        "DATA_LAYER_RETRY_AFTER",
    }
)
logger = logging.getLogger(__name__)


class RequestFailed(Exception):
    """Handed to the unit of work to roll it back when the request did not succeed."""


ErrorResponse = Callable[[DataLayerError], ResponseReturnValue | None]
"""An application's mapping of the layer's errors to responses; ``None``: the default."""


class DataLayerExtension:
    """The data layer of a Flask app; one instance may serve several apps."""

    def __init__(
        self,
        app: Flask | None = None,
        *,
        actor: Callable[[], object] | None = None,
        layer: DataLayer | None = None,
        error_response: ErrorResponse | None = None,
    ) -> None:
        self._actor = actor
        self._layer = layer
        self._error_response = error_response
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Flask) -> None:
        """Build the app's layer (``DATA_LAYER_SETTINGS``, else every settings variable
        found in ``app.config`` over the environment) and hook its requests and CLI. A
        layer built here is closed at interpreter exit; a layer passed in is the caller's.
        Unknown layer-looking keys are warned about (``warn_of_unknown_keys``)."""
        app.config.setdefault("DATA_LAYER_ROLLBACK_FROM_STATUS", 400)
        app.config.setdefault("DATA_LAYER_REQUEST_ID_HEADER", "X-Request-ID")
        app.config.setdefault("DATA_LAYER_RETRY_AFTER", 5)
        if not 400 <= app.config["DATA_LAYER_ROLLBACK_FROM_STATUS"] <= 500:
            # above 500, a view that raised (answered 500) would commit
            raise ConfigurationError("DATA_LAYER_ROLLBACK_FROM_STATUS", "must be 400 to 500")
        warn_of_unknown_keys(app.config)
        layer = self._layer
        if layer is None:
            layer = DataLayer(settings_from_config(app.config))
            atexit.register(layer.close)
        app.extensions[EXTENSION_KEY] = _AppState(self, layer)
        app.register_error_handler(DataLayerError, _refused_request)
        app.after_request(_finish_on_response)
        app.teardown_request(_release)
        app.cli.add_command(_data_commands)

    @property
    def layer(self) -> DataLayer:
        """The current app's ``DataLayer``."""
        return _state().layer

    @property
    def uow(self) -> UnitOfWork:
        """The current request's unit of work, opened on first use."""
        uow: UnitOfWork | None = g.get(_UOW_KEY)
        if uow is None:
            uow = self.layer.unit_of_work(actor=self._current_actor(), correlation_id=request_id())
            uow.__enter__()  # left in _finish_on_response or _release, whatever happens
            setattr(g, _UOW_KEY, uow)
        return uow

    def _current_actor(self) -> str | None:
        """The signed-in user, or ``None``: the layer then applies its own rule (refused in
        production, recorded as ``"unknown"`` elsewhere)."""
        actor = self._actor() if self._actor is not None else None
        return str(actor) if actor else None

    def respond_to(self, error: DataLayerError) -> Response:
        """The response for ``error``: the application's (``error_response``), else the
        default (:func:`error_response`); an error neither maps is raised again."""
        given = self._error_response(error) if self._error_response is not None else None
        answer = error_response(error) if given is None else given
        if answer is None:
            raise error
        return current_app.make_response(answer)


class _AppState:
    def __init__(self, extension: DataLayerExtension, layer: DataLayer) -> None:
        self.extension = extension
        self.layer = layer


def _state() -> _AppState:
    state: _AppState = current_app.extensions[EXTENSION_KEY]
    return state


# Werkzeug declares LocalProxy[T] as a proxy, not a T, though every attribute passes through
current_uow: UnitOfWork = LocalProxy(lambda: _state().extension.uow)  # type: ignore[assignment]
"""The current request's unit of work (``DataLayerExtension.uow`` of the current app)."""


def settings_from_config(config: dict[str, Any]) -> Settings:
    """``DATA_LAYER_SETTINGS`` when it is a ``Settings``; else every variable the environment
    accepts (``settings.ENVIRONMENT_VARIABLES``), taken from ``config`` over the environment.
    """
    given = config.get("DATA_LAYER_SETTINGS")
    if isinstance(given, Settings):
        return given
    from_config = {
        name: str(value)
        for name, value in config.items()
        if name in ENVIRONMENT_VARIABLES and value is not None
    }
    return Settings.from_env({**environ, **from_config})


def warn_of_unknown_keys(config: dict[str, Any]) -> None:
    """Log a warning naming (never quoting) each key that looks like the layer's but is
    none of its settings, with the setting it resembles: a misspelt setting would
    otherwise be silently ignored (``settings.misspelt_settings``)."""
    warn_of_misspelt_settings(config, "app.config key", ENVIRONMENT_VARIABLES | EXTENSION_KEYS)


def request_id() -> str:
    """The request's correlation id: its header when that is a plain token, else new."""
    if _REQUEST_ID_KEY not in g:
        header = request.headers.get(current_app.config["DATA_LAYER_REQUEST_ID_HEADER"], "")
        setattr(g, _REQUEST_ID_KEY, header if _TOKEN.fullmatch(header) else uuid.uuid4().hex)
    return str(g.get(_REQUEST_ID_KEY))


def error_response(error: DataLayerError) -> ResponseReturnValue | None:
    """The default response for a contract error, or ``None`` for one it does not map.

    A JSON body ``{"error": kind, "message": ..., "field": ...}``: the message is the
    layer's own (it never quotes a value); a back end's address is not disclosed."""
    body: dict[str, str]
    headers: dict[str, str] = {}
    if isinstance(error, ValidationError):
        status, body = 422, {"error": "invalid", "field": error.field, "message": error.reason}
    elif isinstance(error, NotFoundError):
        status, body = 404, {"error": "not_found", "message": str(error)}
    elif isinstance(error, DuplicateError):
        status, body = 409, {"error": "duplicate", "field": error.field, "message": str(error)}
    elif isinstance(error, ImmutableRecordError):
        status, body = 409, {"error": "immutable", "message": str(error)}
    elif isinstance(error, ConflictError):
        status, body = 409, {"error": "conflict", "message": str(error)}
    elif isinstance(error, SchemaNotMigratedError):
        status, body = 503, {"error": "schema_not_migrated", "message": "the data is unavailable"}
    elif isinstance(error, BackendUnavailableError):
        status = 503
        body = {"error": "unavailable", "backend": error.backend, "message": "try again later"}
        headers["Retry-After"] = str(current_app.config["DATA_LAYER_RETRY_AFTER"])
    else:
        return None
    return jsonify(body), status, headers


def _refused_request(error: DataLayerError) -> Response:
    """A contract error the view raised: the request's work is rolled back (whatever
    ``DATA_LAYER_ROLLBACK_FROM_STATUS`` says: the unit of work cannot go on), then
    answered."""
    _release(error)
    return _state().extension.respond_to(error)


def _finish_on_response(response: Response) -> Response:
    response = _end_unit_of_work(response)
    if _REQUEST_ID_KEY in g:
        response.headers[current_app.config["DATA_LAYER_REQUEST_ID_HEADER"]] = request_id()
    return response


def _end_unit_of_work(response: Response) -> Response:
    """Commit (or roll back, by status) before the response leaves; a contract error from
    the commit replaces the response, anything else propagates and becomes a 500."""
    uow: UnitOfWork | None = g.pop(_UOW_KEY, None)
    if uow is None:
        return response
    if response.status_code >= current_app.config["DATA_LAYER_ROLLBACK_FROM_STATUS"]:
        uow.__exit__(RequestFailed, RequestFailed(response.status_code), None)
        return response
    try:
        uow.__exit__(None, None, None)  # commits; a failure has rolled it back
    except DataLayerError as error:
        refused = error
    else:
        return response
    return _state().extension.respond_to(refused)


def _release(error: BaseException | None) -> None:
    """Teardown: a unit of work still open here (the view raised) is rolled back."""
    uow: UnitOfWork | None = g.pop(_UOW_KEY, None)
    if uow is None:
        return
    failure = error or RequestFailed("request ended before its response")
    try:
        uow.__exit__(type(failure), failure, None)
    except Exception:  # teardown must not raise; the connection is released regardless
        logger.warning("rolling back the request's unit of work failed", exc_info=False)


_data_commands = AppGroup("data", help="Migrate, inspect and check the app's data stores.")


def _mount(name: str, summary: str) -> None:
    @_data_commands.command(name, help=summary)
    def run() -> None:
        raise SystemExit(run_with(_state().layer, [name]))


for _name, _summary in (
    ("migrate", "Bring the schema to the newest revision."),
    ("status", "Show the applied, newest and pending revisions."),
    ("check", "Exit 1 when the models and the schema differ."),
    ("health", "Probe every store; exit 1 when a required one is down."),
):
    _mount(_name, _summary)


@_data_commands.command("downgrade", help="Take the schema back to a revision.")
@click.argument("revision")
@click.option("--confirm", is_flag=True, help="Required with APP_ENV=production.")
def _downgrade(revision: str, confirm: bool) -> None:
    raise SystemExit(
        run_with(_state().layer, ["downgrade", revision, *(["--confirm"] if confirm else [])])
    )
