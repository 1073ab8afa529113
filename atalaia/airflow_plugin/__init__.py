"""Atalaia's on-call page inside Airflow's UI: an Airflow plugin.

The api-server mounts the FastAPI app of ``atalaia.airflow_plugin.app`` at ``/atalaia`` and
shows its page as the "Atalaia" entry of the UI's navigation (an external view, framed by
the UI). Airflow finds the plugin through the ``airflow.plugins`` entry point of the
installed ``atalaia`` distribution, or through ``plugins/atalaia_plugin.py`` in Airflow's
plugins folder (``docs/on-call.md``).
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

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

    @classmethod
    def on_load(cls, *args, **kwargs) -> None:
        """Build the app only when Airflow loads the plugin, not when this module is imported."""
        from atalaia.airflow_plugin.app import create_app

        cls.fastapi_apps = [{"app": create_app(), "url_prefix": URL_PREFIX, "name": "Atalaia"}]
