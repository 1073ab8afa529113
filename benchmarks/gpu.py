"""GPU check of the torch detectors: the same fit on the GPU and on the CPU, side by side.

For each torch detector: fit seconds and scoring rate on ``cuda`` and on ``cpu`` (all the
machine's cores), AUC-ROC on held-out rows with planted anomalies, and whether a model
trained on the GPU, saved and loaded in a process that sees no GPU, gives the same scores
(what happens when a GPU worker trains and CPU workers score). Synthetic data, so the check
needs nothing but this repository:

    python -m benchmarks.gpu --rows 100000 --out benchmarks/results/gpu.md
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

import detectors

KINDS = ("vae", "made", "gan")


def synthetic(rows: int, features: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normal training rows from a correlated 4-component mixture; test rows with 5% anomalies
    (normal rows with two features shifted by 1.5 standard deviations)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (4, features))
    mixing = [rng.normal(0, 1, (features, features)) / np.sqrt(features) for _ in range(4)]

    def normal(n: int) -> np.ndarray:
        component = rng.integers(0, 4, n)
        rows = rng.normal(size=(n, features))
        for c in range(4):
            rows[component == c] = rows[component == c] @ mixing[c] + centres[c]
        return rows

    train, test = normal(rows), normal(rows // 5)
    labels = np.zeros(len(test), dtype=int)
    anomalous = rng.choice(len(test), len(test) // 20, replace=False)
    labels[anomalous] = 1
    for row in anomalous:
        test[row, rng.choice(features, 2, replace=False)] += 1.5 * train.std(axis=0)[:2]
    return train, test, labels


def measure(kind: str, device: str, train: np.ndarray, test: np.ndarray, labels: np.ndarray):
    detector = detectors.create(kind, device=device, random_state=0)
    began = time.perf_counter()
    detector.fit(train)
    if device == "cuda":
        torch.cuda.synchronize()
    fit = time.perf_counter() - began
    began = time.perf_counter()
    scores = detector.decision_function(test)
    rate = len(test) / (time.perf_counter() - began)
    return detector, fit, rate, roc_auc_score(labels, scores), scores


def scores_without_gpu(folder: Path, test_file: Path) -> np.ndarray:
    """Load a saved model in a fresh process that sees no GPU and score the test rows."""
    code = (
        "import sys, numpy as np, detectors;"
        "d = detectors.load(sys.argv[1]);"
        "np.save(sys.argv[3], d.decision_function(np.load(sys.argv[2])))"
    )
    out = folder / "cpu_scores.npy"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    subprocess.run(
        [sys.executable, "-c", code, str(folder / "model"), str(test_file), str(out)],
        check=True,
        env=env,
    )
    return np.load(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--features", type=int, default=20)
    parser.add_argument(
        "--kinds", default=",".join(k for k in KINDS + ("nar",) if k in detectors.available())
    )
    parser.add_argument("--devices", default="cuda,cpu", help="cuda needs a GPU torch sees")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    devices = args.devices.split(",")
    if "cuda" in devices and not torch.cuda.is_available():
        sys.exit("no GPU visible to torch")
    train, test, labels = synthetic(args.rows, args.features, seed=0)
    lines = [
        "# GPU check of the torch detectors",
        "",
        f"- {args.rows:,} x {args.features} training rows, {len(test):,} test rows (5% planted "
        "anomalies), synthetic; every detector with its defaults, seed 0",
        f"- GPU: {torch.cuda.get_device_name(0) if 'cuda' in devices else 'none'}; CPU: "
        f"{os.cpu_count()} cores of the same machine; torch {torch.__version__}",
        "- `same scores on CPU`: largest difference between the GPU model's scores and the "
        "scores of the same saved model loaded in a process without a GPU",
        "",
        "| detector | device | fit s | score rows/s | AUC-ROC | same scores on CPU |",
        "|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        np.save(folder / "test.npy", test)
        for kind in args.kinds.split(","):
            for device in devices:
                detector, fit, rate, auc, scores = measure(kind, device, train, test, labels)
                same = ""
                if device == "cuda":
                    detector.save(folder / "model")
                    gap = np.abs(scores_without_gpu(folder, folder / "test.npy") - scores).max()
                    same = f"max |diff| {gap:.2e}"
                    for file in (folder / "model").iterdir():
                        file.unlink()
                lines.append(
                    f"| {kind} | {device} | {fit:.1f} | {rate:,.0f} | {auc:.3f} | {same} |"
                )
                print(lines[-1], flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
