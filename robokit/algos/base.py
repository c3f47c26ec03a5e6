"""What every robokit RL agent shares: acting, state (de)serialisation, batch splitting.

An agent owns its networks and optimizers. The trainer owns the loop and calls:

- ``agent.update(batch) -> dict[str, float]`` with a dict of torch tensors
  (keys from :mod:`robokit.data`: ``obs`` (B, O), ``action`` (B, A), ``reward`` (B,),
  ``next_obs`` (B, O), ``terminated`` (B,), optionally ``mc_return`` (B,));
- ``agent.act(obs, deterministic)`` with numpy observations;
- ``agent.set_phase("offline" | "warmup" | "online")`` at phase changes.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from torch import nn

from robokit.core.config import check_ranges, to_dict

#: names of the phases of the offline-to-online trainer
PHASES = ("offline", "warmup", "online")
#: who acts during the warm-up
WarmupActions = Literal["random", "policy"]


@dataclasses.dataclass(frozen=True)
class PhaseConfig:
    """Settings the trainer reads from every algorithm config (the algorithm's recipe).

    batch_size: transitions per gradient step (per critic minibatch).
    utd_ratio: critic minibatches per online env step (update-to-data ratio).
    warmup_steps: env steps at the start of online training without gradient updates.
    warmup_actions: who acts during warm-up: "random" (uniform actions) or "policy".
    offline_fraction: share of each online batch drawn from the offline dataset (0 = none retained).
    """

    batch_size: int = 256
    """transitions per gradient step (per critic minibatch)"""
    utd_ratio: int = 1
    """critic minibatches per online env step (update-to-data ratio)"""
    warmup_steps: int = 5000
    """env steps at the start of online training without gradient updates"""
    warmup_actions: WarmupActions = "random"
    """who acts during the warm-up: 'random' (uniform actions) or 'policy' (the pretrained policy)"""
    offline_fraction: float = 0.0
    """share of each online batch drawn from the offline dataset (0: none retained)"""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("batch_size", "utd_ratio"), non_negative=("warmup_steps",),
                     unit_interval=("offline_fraction",), prefix="agent.")


class Agent(nn.Module):
    """Base class. Subclasses set ``name``, build networks in ``__init__`` and implement ``update``."""

    name: ClassVar[str] = "agent"
    #: whether online data must carry ``mc_return`` (Cal-QL)
    needs_mc_return: ClassVar[bool] = False
    #: on-policy agents (PPO) are trained from rollouts, not from replay
    on_policy: ClassVar[bool] = False

    def __init__(self, config: Any, obs_dim: int, action_dim: int, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        self.obs_dim, self.action_dim = int(obs_dim), int(action_dim)
        self.observation_shape = (self.obs_dim,)
        # on the device the agent is built on (``with torch.device("cuda"): Agent(...)``), so
        # sampling with it works on CUDA tensors; CPU otherwise
        self.generator = torch.Generator(device=torch.get_default_device()).manual_seed(int(seed))
        self.phase = "offline"
        self.num_updates = 0

    # -- acting ---------------------------------------------------------------
    def policy_action(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """(B, O) -> (B, A) in [-1, 1]; subclasses with a TanhGaussianPolicy need not override."""
        if deterministic:
            return self.actor.mode(obs)
        return self.actor.sample(obs, self.generator)[0]

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """obs (O,) -> (A,) or (B, O) -> (B, A), float32 actions in [-1, 1]."""
        array = np.asarray(obs, dtype=np.float32)
        if array.shape[-1] != self.obs_dim or array.ndim not in (1, 2):
            raise ValueError(f"{self.name}.act: expected obs of shape ({self.obs_dim},) or (B, {self.obs_dim}), "
                             f"got {array.shape}")
        single = array.ndim == 1
        tensor = torch.from_numpy(array[None] if single else array).to(self.generator.device)
        action = self.policy_action(tensor, deterministic).cpu().numpy().astype(np.float32)
        return action[0] if single else action

    def set_phase(self, phase: str) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown phase '{phase}'; expected one of {PHASES}")
        self.phase = phase

    # -- training -------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        raise NotImplementedError

    def minibatches(self, batch: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Split a batch of k * batch_size rows into k minibatches (k >= 1)."""
        size = len(batch["obs"])
        count = max(1, size // self.config.batch_size)
        if count == 1:
            return [batch]
        chunks = {key: value.chunk(count) for key, value in batch.items()}
        return [{key: parts[i] for key, parts in chunks.items()} for i in range(count)]

    # -- state ----------------------------------------------------------------
    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        """Name -> optimizer; saved in checkpoints."""
        return {name: value for name, value in vars(self).items() if isinstance(value, torch.optim.Optimizer)}

    def training_state(self) -> dict[str, Any]:
        """Everything needed to continue training bit-for-bit: weights, optimizers, RNG, counters."""
        return {
            "algo": self.name,
            "config": to_dict(self.config),
            "obs_dim": self.obs_dim,
            "action_dim": self.action_dim,
            "modules": self.state_dict(),
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers().items()},
            "generator": self.generator.get_state(),
            "phase": self.phase,
            "num_updates": self.num_updates,
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state["modules"])
        for name, opt in self.optimizers().items():
            opt.load_state_dict(state["optimizers"][name])
        self.generator.set_state(state["generator"])
        self.phase = state.get("phase", "offline")
        self.num_updates = int(state.get("num_updates", 0))


@contextlib.contextmanager
def seeded_init(seed: int) -> Iterator[None]:
    """Build networks with parameters drawn from ``seed`` without touching the global torch RNG
    (torch's initialisers only read the global generator, so it is forked and restored)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        yield


def soft_update_(target: nn.Module, source: nn.Module, tau: float) -> None:
    """Polyak averaging target <- (1 - tau) target + tau source, in place, no grads."""
    with torch.no_grad():
        target_params = list(target.parameters())
        torch._foreach_lerp_(target_params, list(source.parameters()), tau)


def freeze_(module: nn.Module) -> nn.Module:
    """Mark all parameters of ``module`` as not requiring grad (for target networks)."""
    for parameter in module.parameters():
        parameter.requires_grad_(False)
    return module


def check_batch(batch: dict[str, torch.Tensor], keys: tuple[str, ...], who: str) -> None:
    """Raise a KeyError naming the missing batch keys."""
    missing = [key for key in keys if key not in batch]
    if missing:
        raise KeyError(f"{who}.update: batch is missing keys {missing} (has {sorted(batch)})")
