"""The demo's sample data: server metrics of a few hosts, with known incidents injected.

Deterministic for a seed. Six hosts report ``cpu`` (%), ``memory`` (%), ``latency_ms`` and
``error_rate`` (%) every 5 minutes for 14 days. Load follows a daily cycle; latency and
errors rise with CPU. Three incidents fall in the second week, each of a different kind, and
two malformed rows show what ingest quarantines. One CSV file is written per day.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

START = datetime(2026, 1, 5, tzinfo=UTC)
DAYS = 14
BASELINE_DAYS = 7
STEP = timedelta(minutes=5)
HOSTS = [f"host-{i}" for i in range(1, 7)]
FEATURES = ["cpu", "memory", "latency_ms", "error_rate"]


@dataclass(frozen=True)
class Incident:
    """An injected anomaly: which host, when (inclusive), and of what kind."""

    host: str
    start: datetime
    end: datetime
    kind: str
    description: str


INCIDENTS = [
    Incident(
        "host-3",
        START + timedelta(days=8, hours=14),
        START + timedelta(days=8, hours=14, minutes=30),
        "spike",
        "CPU saturates, latency and errors jump",
    ),
    Incident(
        "host-5",
        START + timedelta(days=10, hours=2),
        START + timedelta(days=10, hours=8),
        "level shift",
        "memory steps up by 18 points",
    ),
    Incident(
        "host-2",
        START + timedelta(days=11, hours=10),
        START + timedelta(days=11, hours=12),
        "broken correlation",
        "latency at its peak-hour level while CPU idles",
    ),
]
CLEAN_HOSTS = sorted(set(HOSTS) - {incident.host for incident in INCIDENTS})


def generate(seed: int = 7) -> pd.DataFrame:
    """All rows of the sample data set, incidents included, sorted by time and host."""
    rng = np.random.default_rng(seed)
    stamps = pd.date_range(START, START + timedelta(days=DAYS), freq=STEP, inclusive="left")
    hours = (stamps.hour + stamps.minute / 60).to_numpy()
    daily = 0.5 - 0.5 * np.cos(2 * np.pi * (hours - 3) / 24)  # 0 at 03:00, 1 at 15:00
    frames = []
    for number, host in enumerate(HOSTS):
        size = 0.85 + 0.06 * number
        load = np.clip(daily * size + _ar1(rng, len(stamps), 0.9, 0.04), 0, 1.2)
        cpu = 12 + 65 * load + rng.normal(0, 2.0, len(stamps))
        frames.append(
            pd.DataFrame(
                {
                    "timestamp": stamps,
                    "host": host,
                    "cpu": cpu,
                    "memory": 48 + 1.5 * number + 6 * load + rng.normal(0, 1.0, len(stamps)),
                    "latency_ms": 60 + 140 * (cpu / 100) ** 2 + rng.normal(0, 4.0, len(stamps)),
                    "error_rate": 0.2 + 0.6 * (cpu / 100) ** 3 + rng.gamma(2.0, 0.02, len(stamps)),
                }
            )
        )
    data = pd.concat(frames, ignore_index=True)
    for incident in INCIDENTS:
        _inject(data, incident, rng)
    return data.sort_values(["timestamp", "host"], kind="stable").reset_index(drop=True)


def _ar1(rng: np.random.Generator, size: int, phi: float, scale: float) -> np.ndarray:
    noise = rng.normal(0, scale, size)
    out = np.empty(size)
    out[0] = noise[0]
    for i in range(1, size):
        out[i] = phi * out[i - 1] + noise[i]
    return out


def _inject(data: pd.DataFrame, incident: Incident, rng: np.random.Generator) -> None:
    rows = (
        (data["host"] == incident.host)
        & (data["timestamp"] >= incident.start)
        & (data["timestamp"] <= incident.end)
    )
    count = int(rows.sum())
    if incident.kind == "spike":
        data.loc[rows, "cpu"] = rng.normal(97, 1.0, count)
        data.loc[rows, "latency_ms"] = rng.normal(420, 25, count)
        data.loc[rows, "error_rate"] = rng.normal(4.0, 0.5, count)
    elif incident.kind == "level shift":
        data.loc[rows, "memory"] += 18
    elif incident.kind == "broken correlation":
        data.loc[rows, "cpu"] = rng.normal(22, 2.0, count)
        data.loc[rows, "latency_ms"] = rng.normal(165, 6, count)


def write_files(folder: Path, seed: int = 7) -> list[Path]:
    """Write one CSV per day into ``folder`` (two malformed rows included); return the files."""
    folder.mkdir(parents=True, exist_ok=True)
    data = generate(seed).astype({"cpu": object})
    data[FEATURES[1:]] = data[FEATURES[1:]].round(3)
    data["cpu"] = [f"{value:.3f}" for value in data["cpu"]]
    # A sensor glitch and a repeated delivery, on day 10: ingest quarantines both.
    glitch = data.index[data["timestamp"] == START + timedelta(days=9, hours=6)][0]
    data.loc[glitch, "cpu"] = "n/a"
    repeated = data.loc[[glitch + 1]]
    data = pd.concat([data.iloc[: glitch + 2], repeated, data.iloc[glitch + 2 :]])
    paths = []
    for day, rows in data.groupby(data["timestamp"].dt.date):
        path = folder / f"metrics-{day}.csv"
        rows.assign(timestamp=rows["timestamp"].dt.strftime("%Y-%m-%dT%H:%M:%SZ")).to_csv(
            path, index=False
        )
        paths.append(path)
    return paths
