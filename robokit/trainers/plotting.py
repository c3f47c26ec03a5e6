"""Learning-curve plots from a run's ``metrics.csv``."""

from __future__ import annotations

import csv
import os
from pathlib import Path


def metric_rows(csv_path: str | os.PathLike, key: str) -> list[dict[str, str]]:
    """The rows of a run's ``metrics.csv`` that carry ``key`` (a non-empty value), in file order."""
    with open(csv_path, newline="") as handle:
        return [row for row in csv.DictReader(handle) if row.get(key)]


def read_eval_curve(csv_path: str | os.PathLike) -> dict[str, list[float]]:
    """Rows with ``eval/return_mean`` as lists: env_steps, offline_steps, mean, std, success."""
    curve: dict[str, list[float]] = {"env_steps": [], "offline_steps": [], "mean": [], "std": [], "success": []}
    for row in metric_rows(csv_path, "eval/return_mean"):
        curve["env_steps"].append(float(row.get("eval/env_steps") or 0))
        curve["offline_steps"].append(float(row.get("eval/offline_steps") or 0))
        curve["mean"].append(float(row["eval/return_mean"]))
        curve["std"].append(float(row.get("eval/return_std") or 0))
        curve["success"].append(float(row["eval/success_rate"]) if row.get("eval/success_rate") else float("nan"))
    return curve


def plot_learning_curve(csv_path: str | os.PathLike, png_path: str | os.PathLike, title: str = "") -> Path | None:
    """Eval return (mean +- std) against online env steps; offline evaluations sit at negative x
    (scaled offline gradient steps), so the offline -> online transition is visible."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from robokit.core.atomic import atomic_path

    if not Path(csv_path).exists():
        return None
    curve = read_eval_curve(csv_path)
    if not curve["mean"]:
        return None
    env_steps = np.array(curve["env_steps"])
    offline = np.array(curve["offline_steps"])
    max_offline = offline.max() if offline.max() > 0 else 1.0
    span = max(env_steps.max(), 1.0)
    # evaluations during offline training: x in [-0.25 span, 0); the end of the offline phase is x = 0
    during_offline = (env_steps == 0) & (offline < max_offline)
    x = np.where(during_offline, (offline - max_offline) / max_offline * 0.25 * span, env_steps)
    mean, std = np.array(curve["mean"]), np.array(curve["std"])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(x, mean, marker="o", ms=3)
    ax.fill_between(x, mean - std, mean + std, alpha=0.2)
    ax.axvline(0.0, color="grey", lw=0.8, ls="--")
    ax.set_xlabel("online env steps (left of 0: offline pretraining, scaled)")
    ax.set_ylabel("eval return")
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(png_path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(png_path)
