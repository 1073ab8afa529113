"""Process-wide settings from ``ATALAIA_*`` environment variables, with embedded defaults.

The defaults need no server: a SQLite store, landing and model folders under ``ATALAIA_HOME``
and metrics written as Prometheus textfiles. Folders are made absolute (against the working
directory) when read, so the paths stored with batches and models hold from anywhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from atalaia.errors import ConfigError

DEFAULT_STORE_URL = "sqlite:///atalaia.db"
# Rows scored, written and held at once: memory does not grow with a batch's size.
DEFAULT_CHUNK_ROWS = 100_000


@dataclass(frozen=True)
class Settings:
    """Where Atalaia keeps its data and sends its metrics."""

    home: Path
    store_url: str
    landing_dir: Path
    models_dir: Path
    metrics_dir: Path
    monitors_dir: Path
    pushgateway_url: str | None
    # Event alerts go to this Alertmanager (atalaia.alerting); their links to Airflow's UI.
    alertmanager_url: str | None = None
    airflow_url: str | None = None
    connect_timeout: float = 10.0
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    # Threads of the BLAS under numpy, scipy and scikit-learn in a job (None: the library's
    # default, one per core). One by default: the detectors' matrix products are small, and
    # on a worker shared with other tasks more BLAS threads slowed a gmm's fit (docs/scale.md).
    # Torch detectors choose their own threads.
    blas_threads: int | None = 1

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read the settings from ``environ`` (default: ``os.environ``)."""
        env = os.environ if environ is None else environ
        home = Path(env.get("ATALAIA_HOME", "atalaia-data")).absolute()
        return cls(
            home=home,
            store_url=env.get("ATALAIA_STORE_URL", DEFAULT_STORE_URL),
            landing_dir=Path(env.get("ATALAIA_LANDING_DIR", home / "landing")).absolute(),
            models_dir=Path(env.get("ATALAIA_MODELS_DIR", home / "models")).absolute(),
            metrics_dir=Path(env.get("ATALAIA_METRICS_DIR", home / "metrics")).absolute(),
            monitors_dir=Path(env.get("ATALAIA_MONITORS_DIR", "monitors")).absolute(),
            pushgateway_url=env.get("ATALAIA_PUSHGATEWAY_URL") or None,
            alertmanager_url=env.get("ATALAIA_ALERTMANAGER_URL") or None,
            airflow_url=env.get("ATALAIA_AIRFLOW_URL") or None,
            connect_timeout=_seconds(env, "ATALAIA_STORE_CONNECT_TIMEOUT", 10.0),
            chunk_rows=_count(env, "ATALAIA_CHUNK_ROWS", DEFAULT_CHUNK_ROWS),
            blas_threads=_count(env, "ATALAIA_BLAS_THREADS", 1, default_word="default"),
        )

    def with_store(self, connection: Any) -> Settings:
        """These settings with the store of an Airflow connection (``conn_type``, ``host``,
        ``port``, ``login``, ``password`` and ``schema``; see ``connection_url``)."""
        url = connection_url(
            connection.conn_type,
            connection.host,
            connection.port,
            connection.login,
            connection.password,
            connection.schema,
        )
        return replace(self, store_url=url)


def connection_url(
    conn_type: str | None,
    host: str | None,
    port: int | None,
    login: str | None,
    password: str | None,
    schema: str | None,
) -> str:
    """The SQLAlchemy URL of a connection's fields.

    ``postgres`` connections use psycopg 3; a ``sqlite`` connection names the database file
    in its host (or, written as a URI ``sqlite:////path``, in its schema).
    """
    from sqlalchemy.engine import URL

    if conn_type == "sqlite":
        return URL.create("sqlite", database=host or schema).render_as_string(hide_password=False)
    driver = "postgresql+psycopg" if conn_type in ("postgres", "postgresql") else conn_type
    url = URL.create(
        driver or "", username=login, password=password, host=host, port=port, database=schema
    )
    return url.render_as_string(hide_password=False)


def _seconds(env: Any, name: str, default: float) -> float:
    """A positive number of seconds from ``env[name]``; a bad value is a ConfigError."""
    text = env.get(name)
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{name}={text!r}: expected a positive number of seconds")
    return value


def _count(env: Mapping[str, str], name: str, default: int, default_word: str = "") -> int | None:
    """A positive whole number from ``env[name]`` (``default`` when unset); ``default_word``,
    if given, means None (the library's own choice)."""
    text = env.get(name, "").strip()
    if not text:
        return default
    if default_word and text == default_word:
        return None
    if not text.isdigit() or int(text) < 1:
        words = f" or {default_word!r}" if default_word else ""
        raise ConfigError(f"{name}={text!r}: give a whole number of at least 1{words}")
    return int(text)
