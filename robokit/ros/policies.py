"""Policies for the live bridge: loading a checkpoint, and a small point-cloud policy for plumbing.

:class:`PointCloudTwistPolicy` is a real (tiny, randomly initialised, seeded) PointNet-style
torch module mapping a cloud (N, 3) to a command. It is NOT trained: it exists to exercise
the bridge end to end (tests, latency benchmark) with a real network forward pass whose
cost grows with N. Its outputs are scaled by ``gain`` so they exceed typical limits and
the safety layer has something to clamp.
"""

from __future__ import annotations

import importlib
from typing import Any

import numpy as np


class PointCloudTwistPolicy:
    """Shared per-point MLP (3 -> hidden), max-pool over points, linear head -> tanh * gain.

    ``act(points (N, C>=3) float32) -> (action_dim,) float32``; only xyz is used.
    """

    def __init__(self, action_dim: int = 2, hidden: int = 32, gain: float = 3.0, seed: int = 0,
                 max_points: int | None = None) -> None:
        import torch

        generator = torch.Generator().manual_seed(seed)
        self.torch = torch
        self.point_mlp = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.ReLU(),
                                             torch.nn.Linear(hidden, hidden), torch.nn.ReLU())
        self.head = torch.nn.Linear(hidden, action_dim)
        for param in [*self.point_mlp.parameters(), *self.head.parameters()]:
            with torch.no_grad():
                param.copy_(torch.randn(param.shape, generator=generator) * 0.5)
        self.gain = gain
        self.max_points = max_points
        self.action_dim = action_dim
        self.observation_shape = (None, 3)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        points = np.asarray(obs, dtype=np.float32)
        if points.ndim != 2 or points.shape[1] < 3:
            raise ValueError(f"PointCloudTwistPolicy needs (N, >=3) points, got {points.shape}")
        if self.max_points is not None and len(points) > self.max_points:
            points = points[:: -(-len(points) // self.max_points)]
        with self.torch.no_grad():
            features = self.point_mlp(self.torch.from_numpy(np.ascontiguousarray(points[:, :3])))
            pooled = features.max(dim=0).values
            return (self.torch.tanh(self.head(pooled)) * self.gain).numpy().astype(np.float32)


def load_policy(checkpoint: str | None = None, factory: str | None = None) -> Any:
    """A policy with ``act(obs, deterministic=True)``.

    Args:
        checkpoint: a robokit RL checkpoint, loaded with ``robokit.algos.load_agent``.
        factory: ``"module:callable"`` returning a policy (e.g.
            ``robokit.ros.policies:PointCloudTwistPolicy``); exactly one of the two.
    """
    if (checkpoint is None) == (factory is None):
        raise ValueError("give exactly one of --checkpoint PATH or --policy module:callable")
    if checkpoint is not None:
        from robokit.algos import load_agent

        return load_agent(checkpoint)
    module_name, _, attr = factory.partition(":")
    if not attr:
        raise ValueError(f"--policy must look like 'module:callable', got {factory!r}")
    policy = getattr(importlib.import_module(module_name), attr)()
    if not callable(getattr(policy, "act", None)):
        raise TypeError(f"{factory} returned {type(policy).__name__}, which has no act(obs) method")
    return policy
