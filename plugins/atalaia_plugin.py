"""Airflow's plugins folder entry for Atalaia's on-call page (``docs/on-call.md``): point
``[core] plugins_folder`` here, or copy this file, when the ``atalaia`` distribution's
``airflow.plugins`` entry point is not installed."""

from atalaia.airflow_plugin import AtalaiaPlugin

__all__ = ["AtalaiaPlugin"]
