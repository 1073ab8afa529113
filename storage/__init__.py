"""The SQL store: typed SQLAlchemy 2 models, Alembic migrations and read/write functions.

It knows nothing of torch, Airflow or Prometheus; it takes and returns plain Python values
and pandas frames.
"""
