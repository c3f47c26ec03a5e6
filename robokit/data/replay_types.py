"""Plain pieces of the replay buffer shared by its saving, its views and the dataset formats.

They live apart from :mod:`robokit.data.replay` so that :mod:`~robokit.data.persist`,
:mod:`~robokit.data.views` and :mod:`robokit.data.formats.common` need not import the buffer
(which imports them): the import graph stays acyclic.
"""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import field as dataclass_field
from typing import Any

import numpy as np

from robokit.data.samplers import (
    EpisodeWindowSampler,
    PrioritizedSampler,
    TaskSampler,
    UniformSampler,
)

OBS_FIELDS = ("obs", "next_obs")
#: per-slot fields that link steps into episodes or name their task (never part of a batch)
BOOKKEEPING = ("episode", "step", "next", "task")


@dataclass
class Stream:
    """One source of add() transitions (an environment) and its unfinished episode."""

    episode: int
    step: int = 0  # step index of its next transition
    last_slot: int = -1  # slot of its previous transition (-1: none, or held back for mc_return)
    pending: list[dict] = dataclass_field(default_factory=list)  # held back until the episode ends


def make_sampler(name: str, capacity: int, **kwargs: Any):
    """A sampler by name: ``uniform``, ``prioritized`` (alpha, beta), ``episode-window`` (length)
    or ``task`` (only: task indices; default balanced across all tasks)."""
    if name == "task":
        return TaskSampler(**kwargs)
    if name == "uniform":
        return UniformSampler()
    if name == "prioritized":
        return PrioritizedSampler(capacity, **kwargs)
    if name == "episode-window":
        return EpisodeWindowSampler(**kwargs)
    raise ValueError(f"unknown sampler '{name}' (uniform, prioritized, episode-window, task)")


def stack_rows(rows: list[dict], ragged_fields: frozenset[str]) -> dict:
    """Rows of one episode as a block: dense fields stacked, ragged fields as lists of clouds."""
    block = {}
    for name in rows[0]:
        values = [row[name] for row in rows]
        block[name] = values if name in ragged_fields else np.stack([np.asarray(v) for v in values])
    return block


def shape_to_json(shape: Any) -> Any:
    if isinstance(shape, dict):
        return {k: list(v) for k, v in shape.items()}
    return list(shape)


def dtype_to_json(dtype: Any) -> Any:
    if isinstance(dtype, dict):
        return {k: np.dtype(v).str for k, v in dtype.items()}
    return np.dtype(dtype).str


def config_from_json(config: dict[str, Any]) -> dict[str, Any]:
    """Constructor kwargs from :meth:`ReplayBuffer.config` output (as stored in a file)."""
    kwargs = dict(config)
    shape = kwargs["obs_shape"]
    kwargs["obs_shape"] = {k: tuple(v) for k, v in shape.items()} if isinstance(shape, dict) else tuple(shape)
    sampler = dict(kwargs.pop("sampler"))
    name = sampler.pop("name")
    kwargs["sampler"] = make_sampler(name, kwargs["capacity"], **sampler)
    return kwargs
