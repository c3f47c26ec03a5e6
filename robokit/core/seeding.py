"""One seeding entry point.

Every source of randomness in robokit comes from an explicit
``numpy.random.Generator`` or ``torch.Generator``; :func:`seed_everything` makes
both from one integer and also seeds the global RNGs for third-party code
(gymnasium spaces, torch initialisers) that does not take a generator.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Seeds:
    """The generators derived from one seed."""

    seed: int
    np_rng: np.random.Generator
    torch_gen: torch.Generator

    def child(self, offset: int) -> Seeds:
        """A deterministic, independent stream for a sub-component (env, sampler, ...)."""
        return make_seeds(self.seed * 1_000_003 + offset)


def make_seeds(seed: int) -> Seeds:
    """Generators for ``seed`` without touching any global state."""
    gen = torch.Generator()
    gen.manual_seed(int(seed) % (2**63))
    return Seeds(int(seed), np.random.default_rng(seed), gen)


def seed_everything(seed: int, deterministic_torch: bool = True) -> Seeds:
    """Seed python, numpy and torch global RNGs and return explicit generators.

    Args:
        seed: the run's seed.
        deterministic_torch: ask torch for deterministic algorithms (CPU ops are
            deterministic already; on CUDA this sets cuBLAS workspace config).
    """
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)
    if deterministic_torch:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
    return make_seeds(seed)


def rng_state(seeds: Seeds) -> dict:
    """A picklable snapshot of the explicit generators (for checkpoints)."""
    return {
        "seed": seeds.seed,
        "np": seeds.np_rng.bit_generator.state,
        "torch": seeds.torch_gen.get_state(),
    }


def restore_rng_state(seeds: Seeds, state: dict) -> None:
    """Restore generators saved by :func:`rng_state`."""
    seeds.np_rng.bit_generator.state = state["np"]
    seeds.torch_gen.set_state(state["torch"])
