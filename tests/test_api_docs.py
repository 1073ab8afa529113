"""docs/api.md's example runs as written against a store built from the demo's data.

The store: the demo's monitor (monitors/demo.yaml) trained on its first three days (the
demo trains on seven; three keep the test short) and day 11 scored, the day of host-2's
broken correlation. The example's code block runs unchanged; the test then checks what it
found and wrote.
"""

from __future__ import annotations

import re
import shutil
from datetime import UTC, datetime, timedelta

import pytest

from atalaia import demo_data, jobs, store
from atalaia.config import find_monitor
from atalaia.queries import scores_as_scored
from atalaia.settings import Settings
from storage.engine import transaction
from storage.labels import labels_overlapping
from tests.conftest import REPO

DAY = timedelta(days=1)
T0 = demo_data.START


def code_blocks(path: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / path).read_text(), flags=re.DOTALL)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_the_api_example_runs_on_the_demo_store(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    settings.monitors_dir.mkdir(parents=True)
    shutil.copy(REPO / "monitors" / "demo.yaml", settings.monitors_dir)
    demo_data.write_files(settings.home / "sources" / "demo")
    monitor = find_monitor(settings.monitors_dir, "demo")
    for n in (0, 1, 2, 11):
        jobs.ingest(monitor, T0 + n * DAY, T0 + (n + 1) * DAY, settings=settings)
    jobs.train(monitor, (T0, T0 + 3 * DAY), settings=settings)
    jobs.score(monitor, T0 + 11 * DAY, T0 + 12 * DAY, settings=settings)

    (example,) = code_blocks("docs/api.md")
    names: dict = {}
    exec(compile(example, "docs/api.md", "exec"), names)  # noqa: S102 (our own docs)

    printed = capsys.readouterr().out
    assert "['cpu', 'memory', 'latency_ms', 'error_rate']" in printed
    events, scores, broken = names["events"], names["scores"], names["broken"]
    assert not events.empty and set(events["version"]) == {1}
    # host-2's broken correlation: latency carries the largest share.
    assert broken["top_features"][0]["feature"] == "latency_ms"
    for top in events["top_features"]:
        shares = [item["share"] for item in top]
        assert shares == sorted(shares, reverse=True) and 0 < sum(shares) <= 1 + 1e-3
    # Scoring the raw day gives what the job stored for it.
    assert set(scores["version"]) == {1} and len(names["flagged"]) > 0
    with transaction(store.engine(settings.store_url)) as session:
        stored = scores_as_scored(session, 1, T0 + 11 * DAY, T0 + 12 * DAY)
        assert len(scores) == len(stored)
        assert list(scores["z"].round(9)) == list(stored["z"].round(9))
        assert scores["is_anomaly"].sum() == stored["is_anomaly"].sum() == len(names["flagged"])
        (label,) = labels_overlapping(
            session, 1, datetime(2026, 1, 16, tzinfo=UTC), datetime(2026, 1, 17, tzinfo=UTC)
        )
    assert label.id == names["label"] and label.entity == "host-2"
    assert (label.start_ts, label.end_ts) == (broken["start"], broken["end"])
