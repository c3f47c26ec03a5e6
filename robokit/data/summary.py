"""Readable summaries of episode collections and replay batches."""

from __future__ import annotations

from typing import Any

import numpy as np

from robokit.data.episode import Episode


def summarize_episodes(episodes: list[Episode]) -> dict[str, Any]:
    """Headline numbers: counts, return and length statistics, shapes."""
    if not episodes:
        return {"episodes": 0, "transitions": 0}
    returns = np.array([ep.total_return for ep in episodes])
    lengths = np.array([len(ep) for ep in episodes])
    first = episodes[0]
    summary = {
        "episodes": len(episodes),
        "transitions": int(lengths.sum()),
        "return_mean": float(returns.mean()),
        "return_std": float(returns.std()),
        "return_min": float(returns.min()),
        "return_max": float(returns.max()),
        "length_mean": float(lengths.mean()),
        "length_min": int(lengths.min()),
        "length_max": int(lengths.max()),
        "terminated": int(sum(ep.is_terminated for ep in episodes)),
        "truncated": int(sum(ep.is_truncated for ep in episodes)),
        "observation (per step)": describe_step_observation(first.observations),
        "action_dim": first.action_dim,
        "infos": sorted(first.infos),
    }
    if "success" in first.infos:
        summary["success_rate"] = float(np.mean([bool(np.any(ep.infos["success"])) for ep in episodes]))
    return summary


def describe_step_observation(obs: Any) -> str:
    """Shape and dtype of one step's observation: ``(17,) float32``, ``(N, 4) float32`` (ragged)
    or a dict of those."""
    if isinstance(obs, dict):
        return "{" + ", ".join(f"{k}: {describe_step_observation(v)}" for k, v in obs.items()) + "}"
    if isinstance(obs, list):
        return f"(N, {obs[0].shape[1]}) {obs[0].dtype} ragged" if obs else "empty"
    return f"{tuple(obs.shape[1:])} {obs.dtype}"


def format_table(rows: dict[str, Any], title: str | None = None) -> str:
    """Two-column text table of ``rows``."""
    width = max(len(str(k)) for k in rows) if rows else 0
    lines = [title, "-" * max(len(title), 20)] if title else []
    for key, value in rows.items():
        text = f"{value:.4g}" if isinstance(value, float) else str(value)
        lines.append(f"  {key:<{width}}  {text}")
    return "\n".join(lines)


def describe_batch(batch: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """``key -> "shape dtype"`` for every array of a (nested) batch."""
    out: dict[str, str] = {}
    for key, value in batch.items():
        if isinstance(value, dict):
            out.update(describe_batch(value, f"{prefix}{key}/"))
        else:
            array = np.asarray(value)
            out[f"{prefix}{key}"] = f"{tuple(array.shape)} {array.dtype}"
    return out
