"""Fixtures shared by the data-layer tests."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from robokit.data import Episode


def random_episode(rng: np.random.Generator, steps: int, obs_dim: int = 3, action_dim: int = 2,
                   terminated: bool = True, with_success: bool = False) -> Episode:
    """A random episode of ``steps`` steps that ends by termination (or truncation)."""
    last = np.arange(steps) == steps - 1
    no_end = np.zeros(steps, bool)
    infos = {"success": rng.random(steps) < 0.5} if with_success else None
    return Episode(rng.normal(size=(steps + 1, obs_dim)).astype(np.float32),
                   rng.uniform(-1, 1, (steps, action_dim)).astype(np.float32),
                   rng.normal(size=steps).astype(np.float32),
                   last if terminated else no_end, no_end if terminated else last, infos)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def make_episode(rng: np.random.Generator) -> Callable[..., Episode]:
    """``make_episode(steps, obs_dim=3, action_dim=2, terminated=True, with_success=False)``."""
    return lambda steps, **kwargs: random_episode(rng, steps, **kwargs)
