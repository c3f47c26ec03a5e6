"""What the return- and latent-conditioned agents (DT, RCSL, DoC) share.

They learn offline from trajectory windows (``WindowView``) or transitions with their
return-to-go (``ReturnToGoView``), and they act on the *current episode's history*, so acting
is stateful:

- ``reset_context(target_return=None)`` starts an episode (the evaluation loop calls it);
- ``act(obs)`` appends ``obs`` to the history, returns the action and appends it too;
- ``observe_reward(reward)`` appends the reward that followed (the evaluation loop calls it),
  which also lowers the remaining target return (DT, RCSL).

An ``act`` without a prior ``reset_context`` starts a context itself, so agents written for
stateless ``act`` callers still work episode by episode. The trainer asks an agent for its
``replay_view()``, checks the dataset with ``check_episodes`` and refuses online steps
(``offline_only``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from robokit.algos.base import Agent, PhaseConfig, check_batch, seeded_init
from robokit.nets.obs_batch import ObsDict
from robokit.nets.obs_spec import ObsSpec, flatten_leading


@dataclasses.dataclass(frozen=True)
class SequenceConfig(PhaseConfig):
    """Settings shared by DT, RCSL and DoC.

    context_length: K, steps of history the model sees (1 for RCSL).
    target_return: the return to condition on at evaluation (raw, before ``return_scale``).
    return_scale: returns-to-go are divided by it before entering a network.
    discount: gamma of the returns-to-go (1.0: undiscounted, as DT and the DoC code).
    max_timestep: size of the timestep embedding (longer episodes reuse the last entry).
    """

    context_length: int = 5
    """K, steps of history the model sees (1 for RCSL)"""
    hidden: int = 64
    """transformer width H"""
    layers: int = 1
    """transformer layers"""
    heads: int = 1
    """attention heads"""
    dropout: float = 0.1
    """dropout in the transformer"""
    learning_rate: float = 1e-4
    """AdamW learning rate"""
    weight_decay: float = 1e-4
    """AdamW weight decay"""
    target_return: float | None = 1.0
    """return to condition on at evaluation (raw, before return_scale; DoC: None = highest value)"""
    return_scale: float = 1.0
    """returns-to-go are divided by it before entering a network"""
    discount: float = 1.0
    """gamma of the returns-to-go (1.0: undiscounted, as DT and the DoC code)"""
    max_timestep: int = 1000
    """size of the timestep embedding (later steps reuse the last entry)"""
    batch_size: int = 64
    warmup_steps: int = 0


class EpisodeContext:
    """The running episode's last ``length`` steps: observations, actions, timesteps, the
    reward of the step before each step, and the remaining target return before each step."""

    KEYS = ("obs", "action", "prev_reward", "mc_return", "timestep")

    def __init__(self, length: int, obs_dim: int, action_dim: int, target_return: float):
        self.length, self.obs_dim, self.action_dim = int(length), int(obs_dim), int(action_dim)
        self.reset(target_return)

    def reset(self, target_return: float) -> None:
        self.target = float(target_return)
        self.steps: dict[str, list] = {key: [] for key in self.KEYS}
        self.step, self.total_reward, self.last_reward = 0, 0.0, 0.0

    def add_obs(self, obs: np.ndarray | torch.Tensor | ObsDict) -> None:
        """One step's observation: a vector (O,) (numpy or torch), or one row of a checked
        observation batch (an image tensor, an :class:`ObsDict` of parts)."""
        if len(self.steps["obs"]) > len(self.steps["action"]):
            raise RuntimeError("act() was called twice without an action in between")
        if not isinstance(obs, torch.Tensor | ObsDict):
            obs = torch.from_numpy(np.asarray(obs, np.float32))
        row = {"obs": obs, "prev_reward": self.last_reward,
               "mc_return": self.target - self.total_reward, "timestep": self.step}
        for key, value in row.items():
            self.steps[key].append(value)
        if len(self.steps["obs"]) > self.length:
            for values in self.steps.values():
                values.pop(0)

    def add_action(self, action: np.ndarray) -> None:
        self.steps["action"].append(np.asarray(action, np.float32))

    def add_reward(self, reward: float) -> None:
        self.total_reward += float(reward)
        self.last_reward = float(reward)
        self.step += 1

    def window(self) -> dict[str, torch.Tensor]:
        """The history as a batch of one window (1, k, ...), k <= length. The current step's
        action (not chosen yet) is zeros; ``prev_reward`` of the window's first step is 0, as
        in training windows; ``mc_return`` is the remaining target before each step."""
        k = len(self.steps["obs"])
        actions = self.steps["action"][-(k - 1):] if k > 1 else []
        prev = [0.0] + self.steps["prev_reward"][1:]
        return {"obs": _stack_steps(self.steps["obs"])[None],
                "action": torch.from_numpy(np.stack(actions + [np.zeros(self.action_dim, np.float32)]))[None],
                "prev_reward": torch.tensor([prev], dtype=torch.float32),
                "mc_return": torch.tensor([self.steps["mc_return"]], dtype=torch.float32),
                "timestep": torch.tensor([self.steps["timestep"]], dtype=torch.int64),
                "mask": torch.ones(1, k)}


def _stack_steps(rows: list) -> torch.Tensor | ObsDict:
    """k step observations -> (k, ...) (per part for dict observations)."""
    if isinstance(rows[0], ObsDict):
        return ObsDict({key: torch.stack([row[key] for row in rows]) for key in rows[0]})
    return torch.stack(rows)


class SequenceAgent(Agent):
    """Base for agents that act on the episode's history; subclasses implement ``update`` and
    ``predict_action(window) -> (A,)`` tensor."""

    offline_only: ClassVar[bool] = True
    obs_kinds: ClassVar[tuple[str, ...] | None] = ("vector",)
    #: the offline replay must store returns-to-go (``mc_return``) with the config's discount
    needs_returns_to_go: ClassVar[bool] = True
    #: windows hold steps of one shape (ragged point clouds are not windowed)
    obs_kinds: ClassVar[tuple[str, ...] | None] = ("vector", "image", "text", "dict")

    def __init__(self, config: SequenceConfig, obs_dim: int | ObsSpec, action_dim: int, seed: int = 0) -> None:
        super().__init__(config, obs_dim, action_dim, seed)
        if config.context_length < 1:
            raise ValueError(f"{self.name}: context_length must be >= 1, got {config.context_length}")
        with seeded_init(seed):  # one loss trains the whole model, the step encoder included
            self.step_encoder = self.on_features(torch.nn.Identity(), trains_encoder=True)
        #: the return episodes are conditioned on (None: the agent's own choice, DoC's highest value)
        self.target_return: float | None = config.target_return
        self.aim: float | None = self.target_return
        self.context = EpisodeContext(config.context_length, self.obs_dim, action_dim, self.aim or 0.0)
        self._context_started = False

    # -- the trainer's hooks ---------------------------------------------------
    @property
    def window_length(self) -> int:
        """Steps per training window."""
        return self.config.context_length

    def replay_view(self) -> Any:
        from robokit.data.views import WindowView

        return WindowView(self.window_length)

    def check_episodes(self, lengths: Sequence[int], source: Any = "dataset") -> None:
        """Refuse data whose every episode is shorter than the context (no window would be full)."""
        longest = max(lengths, default=0)
        if self.config.context_length > longest:
            raise ValueError(f"{source}: --agent.context-length {self.config.context_length} is longer than the "
                             f"longest episode ({longest} steps)")

    def check_window_batch(self, batch: dict[str, torch.Tensor]) -> None:
        check_batch(batch, ("obs", "action", "timestep", "mask"), self.name)
        if "mc_return" not in batch:
            raise KeyError(f"{self.name}.update: batch has no 'mc_return' (returns-to-go); build the replay with "
                           f"store_mc_return=True")
        if self.raw_obs and batch["obs"].dim() != 3:
            raise ValueError(f"{self.name}.update: expected windows obs (B, L, O), got {tuple(batch['obs'].shape)}")
        if not self.raw_obs and len(flatten_leading(batch["obs"], self.obs_spec)[1]) != 2:
            raise ValueError(f"{self.name}.update: expected windows of observations (B, L, ...)")

    def set_phase(self, phase: str) -> None:
        super().set_phase(phase)
        if phase != "offline":
            raise ValueError(f"--algo {self.name} is trained offline only; pass --online-steps 0")

    # -- acting ---------------------------------------------------------------
    def reset_context(self, target_return: float | None = None) -> None:
        """Start a new episode's history, conditioned on ``target_return`` (``self.target_return`` if None)."""
        self.aim = self.target_return if target_return is None else float(target_return)
        self.context.reset(self.aim or 0.0)
        self._context_started = True

    def observe_reward(self, reward: float) -> None:
        self.context.add_reward(reward)

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """One observation -> action (A,) in [-1, 1], using and extending the episode's history."""
        tensor, batched = self.obs_batch(obs)
        if batched:
            raise ValueError(f"{self.name}.act: expected one observation, got a batch of {len(tensor)} "
                             f"(sequence agents act on one episode's history at a time)")
        if not self._context_started:
            self.reset_context()
        self.context.add_obs(tensor[0])
        action = self.predict_action(self.context.window()).clamp(-1.0, 1.0).cpu().numpy().astype(np.float32)
        self.context.add_action(action)
        return action

    def predict_action(self, window: dict[str, torch.Tensor]) -> torch.Tensor:
        """History window (1, k, ...) of :meth:`EpisodeContext.window` -> the current action (A,)."""
        raise NotImplementedError

    def step_features(self, obs: Any) -> Any:
        """Observations (B, L, *step) or (B, *step) -> features (B, L, F) or (B, F) through the
        step encoder (raw vectors are returned as they are)."""
        if self.raw_obs:
            return obs
        rows, lead = flatten_leading(obs, self.obs_spec)
        return self.step_encoder(rows).reshape(*lead, -1)

    def scaled_returns(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """``mc_return`` (B,) or (B, L) divided by ``return_scale``, the networks' return unit."""
        return batch["mc_return"] / self.config.return_scale


def adamw(agent: Agent, config: SequenceConfig) -> torch.optim.Optimizer:
    """AdamW over all of ``agent``'s parameters (the DoC code's optimizer)."""
    return torch.optim.AdamW(agent.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay)
