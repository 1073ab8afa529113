"""Write ``docs/configuration.md`` from the code: the monitor file's settings from the pydantic
models of ``atalaia.config`` (each field's type, default, bounds and description), the
detectors' parameters from ``atalaia.detector_params`` and their constructors, and the
``ATALAIA_*`` environment from ``atalaia.settings``.

    python -m atalaia.config_docs --write      # rewrite docs/configuration.md
    python -m atalaia.config_docs              # print it

``tests/test_config_docs.py`` fails when the file differs from what this writes, and when a
setting has no description.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import types
from datetime import datetime
from importlib import import_module
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from atalaia import config, settings
from atalaia.detector_params import PARAMETERS

DOCUMENT = Path(__file__).resolve().parent.parent / "docs" / "configuration.md"
COMMAND = "python -m atalaia.config_docs --write"

# Settings field -> (environment variable, default in words where the code computes it, meaning).
ENVIRONMENT: dict[str, tuple[str, str | None, str]] = {
    "home": (
        "ATALAIA_HOME",
        "`atalaia-data`",
        "folder of the landing store, models, metrics and the demo's sources",
    ),
    "store_url": (
        "ATALAIA_STORE_URL",
        None,
        "the SQL store: any SQLAlchemy URL of SQLite or PostgreSQL",
    ),
    "landing_dir": (
        "ATALAIA_LANDING_DIR",
        "`$ATALAIA_HOME/landing`",
        "one Parquet file per accepted batch",
    ),
    "models_dir": ("ATALAIA_MODELS_DIR", "`$ATALAIA_HOME/models`", "one folder per model version"),
    "metrics_dir": (
        "ATALAIA_METRICS_DIR",
        "`$ATALAIA_HOME/metrics`",
        "Prometheus textfiles (point node_exporter's textfile collector here)",
    ),
    "monitors_dir": ("ATALAIA_MONITORS_DIR", "`monitors`", "the monitor files"),
    "pushgateway_url": (
        "ATALAIA_PUSHGATEWAY_URL",
        "unset",
        "when set, metrics are also pushed there; `user:password@` is sent as basic authentication",
    ),
    "alertmanager_url": (
        "ATALAIA_ALERTMANAGER_URL",
        "unset",
        "when set, each scoring run posts its events there as alerts (docs/alerting.md)",
    ),
    "airflow_url": (
        "ATALAIA_AIRFLOW_URL",
        "unset",
        "Airflow's base URL as people reach it; "
        "event alerts link to their page there (docs/on-call.md)",
    ),
    "connect_timeout": (
        "ATALAIA_STORE_CONNECT_TIMEOUT",
        None,
        "seconds a PostgreSQL store or SQL source gets to answer a new connection",
    ),
    "chunk_rows": (
        "ATALAIA_CHUNK_ROWS",
        None,
        "rows scored, written and held at once by "
        "`score`; rows whose detector inputs `train` builds at once "
        "(docs/scale.md)",
    ),
    "blas_threads": (
        "ATALAIA_BLAS_THREADS",
        None,
        "threads of the BLAS under numpy, scipy "
        "and scikit-learn in a job; `default` leaves the libraries' choice (one "
        "per core). Torch detectors choose their own threads",
    ),
}


def sections(
    model: type[BaseModel] = config.Monitor, prefix: str = ""
) -> list[tuple[str, type[BaseModel]]]:
    """The sections of a monitor file, in the order of ``Monitor``'s fields, each followed
    by the sections nested in it (``baseline.adapt``): one per model a field holds (a tagged
    union, such as ``source``, one per kind)."""
    found = []
    for name, field in model.model_fields.items():
        models = _models(field.annotation)
        for inner in models:
            label = f"{prefix}{name}"
            if len(models) > 1:
                label += f" (kind: {inner.model_fields['kind'].default})"
            found.append((label, inner))
            found += sections(inner, f"{prefix}{name}.")
    return found


def missing_descriptions() -> list[str]:
    """Monitor settings (``section.name``) whose field has no description."""
    missing = [name for name, field in config.Monitor.model_fields.items() if not field.description]
    for section, model in sections():
        prefix = section.split()[0]
        missing += [
            f"{prefix}.{name}"
            for name, field in model.model_fields.items()
            if not field.description
        ]
    return missing


def render() -> str:
    """The text of ``docs/configuration.md``."""
    lines = [
        "# Configuration reference",
        "",
        f"Generated from the code by `{COMMAND}`; do not edit by hand.",
        "`tests/test_config_docs.py` fails when this file and the code disagree.",
        "",
        "Atalaia has two kinds of settings: **monitor files** (`monitors/*.yaml`, one per "
        "monitored data set) and the **environment** (`ATALAIA_*`, where Atalaia keeps its "
        "data). A monitor file is checked when it is loaded: an unknown key or a bad value is "
        "one line, `FILE: FIELD: reason`. `${VAR}` in a string is read from the environment. "
        "Durations are a whole number and `s`, `min`, `h` or `D` (`5min`, `1D`); times are "
        "ISO 8601, UTC when no zone is given.",
        "",
        "## Monitor files",
        "",
        _doc(config.Monitor),
        "",
        *_table(config.Monitor),
    ]
    for section, model in sections():
        lines += ["", f"### `{section}`", "", _doc(model), "", *_table(model)]
    lines += ["", *_detector_parameters(), "", *_environment()]
    return "\n".join(lines) + "\n"


def _doc(model: type) -> str:
    return " ".join(inspect.cleandoc(model.__doc__ or "").split()).replace("``", "`")


def _table(model: type[BaseModel]) -> list[str]:
    rows = ["| setting | type | default | meaning |", "| --- | --- | --- | --- |"]
    for name, field in model.model_fields.items():
        kind = _type_name(field.annotation)
        if _models(field.annotation):
            kind = "section (below)"
        rows.append(
            f"| `{name}` | {kind}{_bounds(field)} | {_default(field)} | "
            f"{_cell(field.description or '')} |"
        )
    return rows


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for inner in get_args(annotation) for model in _models(inner)]


def _type_name(annotation: Any) -> str:
    if annotation is type(None):
        return "null"
    if get_origin(annotation) is Literal:
        return " or ".join(f"`{value}`" for value in get_args(annotation))
    if get_origin(annotation) in (Union, types.UnionType):
        return " or ".join(_type_name(a) for a in get_args(annotation))
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        return f"list of {_type_name(item)}"
    if get_origin(annotation) is dict:
        return "mapping"
    names = {str: "text", int: "integer", float: "number", bool: "true or false", datetime: "time"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(field: FieldInfo) -> str:
    words = []
    for item in field.metadata:
        for cls, sign in (
            (annotated_types.Ge, ">="),
            (annotated_types.Gt, ">"),
            (annotated_types.Le, "<="),
            (annotated_types.Lt, "<"),
            (annotated_types.MinLen, "at least"),
        ):
            if isinstance(item, cls):
                value = next(iter(dataclasses.asdict(item).values()))
                words.append(
                    f"{sign} {value:,}"
                    if cls is not annotated_types.MinLen
                    else f"at least {value} item{'s' if value > 1 else ''}"
                )
    return f", {' and '.join(words)}" if words else ""


def _default(field: FieldInfo) -> str:
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "(its defaults)"
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    return _value(value)


def _value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    if isinstance(value, (list, tuple)):
        return f"`[{', '.join(str(item) for item in value)}]`"
    if isinstance(value, dict) and not value:
        return "`{}`"
    if value == "":
        return '`""`'
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("<", "\\<")


def _detector_parameters() -> list[str]:
    from detectors import REGISTRY  # light: imports no detector's libraries

    lines = [
        "## Detector parameters",
        "",
        "`detector.params` of each kind, as `atalaia/detector_params.py` declares them (a "
        "monitor file is checked against them when it is loaded) with the defaults of the "
        "classes' constructors; the class docstrings in `detectors/` say what each does. "
        "`pyod:<Name>` kinds take PyOD's own parameters, checked when they are trained. "
        "What the kinds are: docs/detectors.md.",
    ]
    for kind in sorted(PARAMETERS):
        module, name = REGISTRY[kind].split(":")
        signature = inspect.signature(getattr(import_module(module), name).__init__)
        lines += [
            "",
            f"### `{kind}` (`{module.replace('.', '/')}.py`, `{name}`)",
            "",
            "| parameter | accepts | default |",
            "| --- | --- | --- |",
        ]
        for param, declared in PARAMETERS[kind].items():
            default = signature.parameters[param].default
            shown = "required" if default is inspect.Parameter.empty else _value(default)
            lines.append(f"| `{param}` | {_cell(declared.describe())} | {shown} |")
    return lines


def _environment() -> list[str]:
    defaults = {field.name: field.default for field in dataclasses.fields(settings.Settings)}
    computed = {"store_url": settings.DEFAULT_STORE_URL}
    lines = [
        "## Environment",
        "",
        "Read by `atalaia.settings.Settings.from_env`. Folders are made absolute against the "
        "working directory when read. A bad number is one line naming the variable.",
        "",
        "| variable | default | meaning |",
        "| --- | --- | --- |",
    ]
    for field, (variable, words, meaning) in ENVIRONMENT.items():
        if words is None:
            value = computed.get(field, defaults[field])
            words = _value(value)
        lines.append(f"| `{variable}` | {words} | {_cell(meaning)} |")
    return lines


def main(argv: list[str] | None = None) -> int:
    """Print the document, or with ``--write`` rewrite ``docs/configuration.md``."""
    parser = argparse.ArgumentParser(prog="python -m atalaia.config_docs", description=__doc__)
    parser.add_argument("--write", action="store_true", help=f"rewrite {DOCUMENT.name}")
    args = parser.parse_args(argv)
    missing = missing_descriptions()
    if missing:
        parser.error(f"settings without a description in atalaia/config.py: {', '.join(missing)}")
    text = render()
    if args.write:
        DOCUMENT.write_text(text)
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
