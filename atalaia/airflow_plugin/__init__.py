"""Atalaia's on-call page inside Airflow's UI: an Airflow plugin.

The api-server mounts the FastAPI app of ``atalaia.airflow_plugin.app`` at ``/atalaia`` and
shows its page as the "Atalaia" entry of the UI's navigation (an external view, framed by
the UI). Airflow finds the plugin through the ``airflow.plugins`` entry point of the
installed ``atalaia`` distribution, or through ``plugins/atalaia_plugin.py`` in Airflow's
plugins folder (``docs/on-call.md``).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from airflow.plugins_manager import AirflowPlugin

if TYPE_CHECKING:
    from fastapi import FastAPI

URL_PREFIX = "/atalaia"


class AtalaiaPlugin(AirflowPlugin):
    """The on-call page (external view) and its API (FastAPI app)."""

    name = "atalaia"
    external_views = [
        {
            "name": "Atalaia",
            "href": f"{URL_PREFIX}/",
            "url_route": "atalaia",
            "destination": "nav",
            "category": "browse",
        }
    ]

    @property
    def fastapi_apps(self) -> list[dict[str, Any]]:  # type: ignore[override]
        """The page's app, built when the api-server asks for it: other Airflow components
        (scheduler, DAG processor) load plugins too and never import the page's code."""
        return [{"app": _app(), "url_prefix": URL_PREFIX, "name": "Atalaia"}]


@cache
def _app() -> FastAPI:
    from atalaia.airflow_plugin.app import create_app

    return create_app()
