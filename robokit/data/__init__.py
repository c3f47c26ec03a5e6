"""robokit.data: episodes, replay (storage x sampler x view), offline/online mixing, datasets.

Contract (see docs/data.md)::

    from robokit.data import Episode, ReplayBuffer, MixedReplay, load_episodes, save_minari, to_torch

Dataset readers/writers (Minari, D4RL-style HDF5, robomimic HDF5) import h5py
and minari lazily, so ``import robokit.data`` stays light.
"""

from __future__ import annotations

from typing import Any

from robokit.data.batch import concat_batches, split_ragged, to_torch
from robokit.data.episode import Episode
from robokit.data.errors import DataError, ReplayNotReady
from robokit.data.mixed import LinearSchedule, MixedReplay
from robokit.data.replay import ReplayBuffer
from robokit.data.returns import discounted_returns, gae
from robokit.data.samplers import EpisodeWindowSampler, PrioritizedSampler, UniformSampler
from robokit.data.views import NStepView, ReturnToGoView, StatePairView, TransitionView, WindowView

__all__ = [
    "DataError", "Episode", "EpisodeWindowSampler", "LinearSchedule", "MixedReplay", "NStepView",
    "PrioritizedSampler", "ReplayBuffer", "ReplayNotReady", "ReturnToGoView", "RolloutBuffer", "StatePairView",
    "TransitionView", "UniformSampler", "WindowView", "concat_batches", "discounted_returns", "gae",
    "load_episodes", "save_minari", "split_ragged", "to_torch",
]


def load_episodes(path: Any, fmt: str | None = None, **kwargs: Any) -> list[Episode]:
    """Episodes from a Minari dataset dir, D4RL-style HDF5, robomimic HDF5 or a robokit replay
    ``.npz`` (format auto-detected unless ``fmt`` is given; robomimic takes ``filter_key``)."""
    from robokit.data.formats import load_episodes as _load

    return _load(path, fmt, **kwargs)


def save_minari(episodes: Any, out_dir: Any, env_id: str | None = None, **kwargs: Any):
    """Write episodes (or a ReplayBuffer) as a Minari dataset in ``out_dir``; returns its path."""
    from robokit.data.formats.minari_format import save_minari as _save

    return _save(episodes, out_dir, env_id=env_id, **kwargs)


def __getattr__(name: str) -> Any:
    if name == "RolloutBuffer":
        from robokit.data.rollout import RolloutBuffer

        return RolloutBuffer
    raise AttributeError(f"module 'robokit.data' has no attribute {name!r}")
