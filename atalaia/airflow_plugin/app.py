"""The on-call page's FastAPI app, mounted by Airflow's api-server at ``/atalaia``.

Every route, the page and its assets included, needs an Airflow user: the api-server's JWT,
from the ``Authorization: Bearer`` header or the UI's ``_token`` cookie, checked by Airflow's
own ``get_user`` dependency (401 without a token, 403 for a bad one). What a user may see
and do is the auth manager's verdict on the monitor's DAGs (``atalaia__<monitor>__score``
and ``atalaia__<monitor>__retrain``): reading needs read access to them, writing
(feedback, promote, rollback) edit access to both. Writes take a JSON body, which a
cross-site form cannot send.

The store is ``ATALAIA_STORE_URL`` (``atalaia.settings``) as the api-server's environment
sets it, read once when the app is made.
"""

from __future__ import annotations

import html
import importlib
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime, timedelta
from importlib.resources import files
from typing import Annotated, Any, Literal, TypeVar

from airflow.api_fastapi.app import get_auth_manager
from airflow.api_fastapi.auth.managers.models.base_user import BaseUser
from airflow.api_fastapi.auth.managers.models.resource_details import DagDetails
from airflow.api_fastapi.core_api.security import get_user
from airflow.configuration import conf
from fastapi import Depends, FastAPI, HTTPException, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

import detectors
from atalaia import queries, store
from atalaia.config import MONITOR_DAGS, as_utc, dag_id
from atalaia.errors import AtalaiaError, NotFoundError
from atalaia.settings import Settings
from detectors import ArtifactError
from storage.engine import transaction

log = logging.getLogger(__name__)
User = Annotated[BaseUser, Depends(get_user)]
ASSETS = {"page.js": "text/javascript", "page.css": "text/css"}
# The swimlane's range when none is asked for: this much before the last scored step.
DEFAULT_RANGE = timedelta(days=7)
Result = TypeVar("Result")


class Verdict(BaseModel):
    """Feedback on an event."""

    verdict: Literal["incident", "false_alarm"]


class Reason(BaseModel):
    """Why a champion changes, recorded with the change."""

    reason: str = Field(min_length=1, max_length=500)


def may(user: BaseUser, method: Literal["GET", "PUT"], monitor: str) -> bool:
    """Whether Airflow's auth manager lets ``user`` read (GET) or edit (PUT) every DAG of
    ``monitor`` (``dags/atalaia_dags.py``): access to a monitor is access to them."""
    manager = get_auth_manager()
    teams = conf.getboolean("core", "multi_team", fallback=False)
    for job in MONITOR_DAGS:
        name = dag_id(monitor, job)
        team = _team(name) if teams else None
        details = DagDetails(id=name, team_name=team)
        if not manager.is_authorized_dag(method=method, details=details, user=user):
            return False
    return True


def _team(dag_id: str) -> str | None:
    from airflow.models.dag import DagModel

    return DagModel.get_team_name(dag_id)


def _require(user: BaseUser, method: Literal["GET", "PUT"], monitor: str) -> None:
    if not may(user, method, monitor):
        action = "read" if method == "GET" else "edit"
        raise HTTPException(
            status.HTTP_403_FORBIDDEN, f"you may not {action} the DAGs of monitor {monitor}"
        )


@contextmanager
def _session(settings: Settings, *, write: bool = False) -> Iterator[Session]:
    """A session on the store to read in (``queries.reading``), or with ``write`` one
    transaction to write in; the store's and the pipeline's errors as HTTP errors."""
    try:
        if write:
            engine = store.require_current(settings.store_url, settings.connect_timeout)
            with transaction(engine) as session:
                yield session
        else:
            with queries.reading(settings) as session:
                yield session
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except (AtalaiaError, ArtifactError) as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc


def _warm_up(settings: Settings) -> None:
    """Import what drill-downs need (the explanation code, the detector classes of the
    champions), so the first drill-down does not wait for it."""
    try:
        importlib.import_module("atalaia.explain")
        with queries.reading(settings) as session:
            kinds = queries.champion_detectors(session)
        for kind in kinds:
            detectors.detector_class(kind)
    except Exception:  # the page works without it, only its first drill-down is slower
        log.warning("atalaia: warming up the drill-down failed", exc_info=True)


def create_app(settings: Settings | None = None) -> FastAPI:
    """The page, its assets and its JSON API, on the store of ``settings`` (default: the
    ``ATALAIA_*`` environment's)."""
    settings = settings or Settings.from_env()

    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
        """In the api-server only, before it serves: warm up the drill-down."""
        _warm_up(settings)
        yield

    def _read(user: BaseUser, monitor: str, reader: Callable[[Session], Result]) -> Result:
        _require(user, "GET", monitor)
        with _session(settings) as session:
            return reader(session)

    app = FastAPI(
        title="Atalaia on-call",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        lifespan=_lifespan,
    )

    @app.get("/", response_class=HTMLResponse)
    @app.get("/monitors/{monitor}/events/{event_id}", response_class=HTMLResponse)
    def page(request: Request, user: User) -> str:
        """The page; at an event's path (the link alerts carry) it opens that event."""
        base = request.scope.get("root_path", "").rstrip("/") + "/"
        return _asset("index.html").replace("__BASE__", html.escape(base, quote=True))

    @app.get("/assets/{name}")
    def asset(name: str, user: User) -> Response:
        if name not in ASSETS:
            raise HTTPException(status.HTTP_404_NOT_FOUND, f"no asset {name}")
        return Response(_asset(name), media_type=ASSETS[name])

    @app.get("/api/monitors")
    def monitors(user: User) -> list[dict[str, Any]]:
        with _session(settings) as session:
            names = [name for name in queries.monitor_names(session) if may(user, "GET", name)]
            return [
                {
                    **queries.monitor_overview(session, name),
                    **queries.scored_range(session, name),
                    "may_edit": may(user, "PUT", name),
                }
                for name in names
            ]

    @app.get("/api/monitors/{monitor}/events")
    def events(monitor: str, user: User) -> list[dict[str, Any]]:
        return _read(user, monitor, lambda session: queries.monitor_events(session, monitor))

    @app.get("/api/monitors/{monitor}/swimlane")
    def swimlane(
        monitor: str,
        user: User,
        start: Annotated[str | None, Query(description="ISO 8601; default: end - 7 days")] = None,
        end: Annotated[str | None, Query(description="ISO 8601; default: the last step")] = None,
    ) -> dict[str, Any]:
        def read(session: Session) -> dict[str, Any]:
            last = queries.scored_range(session, monitor)["last"]
            if last is None:
                raise NotFoundError(f"monitor {monitor}: nothing scored yet")
            until = _time(end) if end else as_utc(last) + timedelta(seconds=1)
            since = _time(start) if start else until - DEFAULT_RANGE
            if since >= until:
                raise AtalaiaError(f"swimlane start {since} is not before its end {until}")
            return queries.swimlane(session, monitor, since, until)

        return _read(user, monitor, read)

    @app.get("/api/monitors/{monitor}/versions")
    def versions(monitor: str, user: User) -> list[dict[str, Any]]:
        return _read(user, monitor, lambda session: queries.model_versions(session, monitor))

    @app.get("/api/events/{event_id}")
    def event(event_id: int, user: User) -> dict[str, Any]:
        from atalaia.explain import explain_event

        with _session(settings) as session:
            found, model, monitor = queries.event_record(session, event_id)
            _require(user, "GET", monitor)
            _, config = queries.stored_monitor(session, monitor)
            return {
                "monitor": monitor,
                "event": queries.event_summary(session, found, model.version),
                "model": {
                    "version": model.version,
                    "status": model.status,
                    "detector": model.detector,
                    "alpha": model.alpha,
                },
                **queries.event_context(session, found),
                "explanation": explain_event(session, config, found, model),
                "may_edit": may(user, "PUT", monitor),
            }

    @app.post("/api/events/{event_id}/verdict")
    def verdict(event_id: int, body: Verdict, user: User) -> dict[str, Any]:
        from atalaia.feedback import record_verdict

        with _session(settings, write=True) as session:
            found, model, monitor = queries.event_record(session, event_id)
            _require(user, "PUT", monitor)
            label = record_verdict(session, found, body.verdict, model.version, user.get_name())
        return {"label": label, "verdict": body.verdict}

    @app.post("/api/monitors/{monitor}/versions/{version}/promote")
    def promote(monitor: str, version: int, body: Reason, user: User) -> dict[str, Any]:
        from atalaia.jobs import promote_version

        return _change(
            user,
            monitor,
            settings,
            lambda config: promote_version(config, version, _reason(body, user), settings=settings),
        )

    @app.post("/api/monitors/{monitor}/rollback")
    def rollback(monitor: str, body: Reason, user: User) -> dict[str, Any]:
        from atalaia.jobs import rollback

        return _change(
            user,
            monitor,
            settings,
            lambda config: rollback(config, _reason(body, user), settings=settings),
        )

    return app


def _change(
    user: BaseUser, monitor: str, settings: Settings, job: Callable[..., Any]
) -> dict[str, Any]:
    """Run a registry job (promote, rollback) for ``monitor`` as its stored configuration."""
    _require(user, "PUT", monitor)
    with _session(settings) as session:
        _, config = queries.stored_monitor(session, monitor)
    try:
        change = job(config)
    except NotFoundError as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, str(exc)) from exc
    except AtalaiaError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    return {
        "champion_version": change.champion_version,
        "replaced_version": change.replaced_version,
        "reason": change.reason,
    }


def _reason(body: Reason, user: BaseUser) -> str:
    return f"{body.reason} (by {user.get_name()} on the on-call page)"


def _time(text: str) -> datetime:
    try:
        return as_utc(text)
    except (TypeError, ValueError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, f"time {text!r}: {exc}") from exc


def _asset(name: str) -> str:
    return files("atalaia.airflow_plugin").joinpath("static", name).read_text(encoding="utf-8")
