"""What every robokit RL agent shares: acting, state (de)serialisation, batch splitting.

An agent owns its networks and optimizers. The trainer owns the loop and calls:

- ``agent.update(batch) -> dict[str, float]`` with a dict of torch tensors
  (keys from :mod:`robokit.data`: ``obs`` (B, O), ``action`` (B, A), ``reward`` (B,),
  ``next_obs`` (B, O), ``terminated`` (B,), optionally ``mc_return`` (B,)), made from a
  replay batch by ``agent.torch_batch(batch)``;
- ``agent.act(obs, deterministic)`` with numpy observations;
- ``agent.set_phase("offline" | "warmup" | "online")`` at phase changes.

Observations of every kind (vectors, uint8 images, point clouds, dicts of parts; see
:mod:`robokit.nets.obs_spec`) go through one seam: an agent is built from an observation spec
(an int means a vector of that size), and each network is wrapped by :meth:`Agent.on_features`,
which puts the encoder under it (:mod:`robokit.nets.encoders`). The network that trains the
shared encoder (the critic) owns it; the others (the actor) read its output detached. Algorithm
code keeps calling ``actor.sample(obs)`` and ``critic(obs, action)`` on raw observation batches.
With vector observations and the identity encoder nothing is wrapped: the networks, their
initialisation and their checkpoints are the vector-only ones.
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
from robokit.nets.encoders import (
    EncodedHead,
    EncoderConfig,
    FeatureCache,
    augment_images,
    build_body,
    image_keys,
    raw_vectors,
)
from robokit.nets.obs_batch import OBS_KEYS, agent_batch
from robokit.nets.obs_spec import ObsSpec, VectorSpec, as_spec

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
    encoder: EncoderConfig = dataclasses.field(default_factory=EncoderConfig)
    """how observations become features (images, point clouds, dicts); vectors: identity"""

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
    #: observation kinds the agent accepts (None: all, through encoders)
    obs_kinds: ClassVar[tuple[str, ...] | None] = None

    def __init__(self, config: Any, obs_dim: int | ObsSpec, action_dim: int, seed: int = 0) -> None:
        """``obs_dim``: the observation spec, or an int for vectors of that size."""
        super().__init__()
        self.config = config
        self.obs_spec = as_spec(obs_dim)
        if self.obs_kinds is not None and self.obs_spec.kind not in self.obs_kinds:
            raise ValueError(f"--algo {self.name} takes {' or '.join(self.obs_kinds)} observations only, "
                             f"got {self.obs_spec.kind} observations ({self.obs_spec})")
        self.encoder_config: EncoderConfig = getattr(config, "encoder", None) or EncoderConfig()
        self.raw_obs = raw_vectors(self.obs_spec, self.encoder_config)
        #: input size of every head network: O for raw vectors, else the trunk width
        self.feature_dim = self.obs_spec.dim if self.raw_obs else int(self.encoder_config.feature_dim)
        self.obs_dim = self.obs_spec.dim if isinstance(self.obs_spec, VectorSpec) else self.feature_dim
        self.action_dim = int(action_dim)
        self.observation_shape = getattr(self.obs_spec, "shape", None)
        with seeded_init(seed):
            shared = None if self.raw_obs or not self.encoder_config.shared else build_body(
                self.obs_spec, self.encoder_config)
        self.__dict__["_shared_body"] = shared  # registered by the network that trains it (on_features)
        self.__dict__["_body_owned"] = False
        #: the shared body's outputs within one update (reused by reads that do not train it)
        self.__dict__["_feature_cache"] = FeatureCache() if shared is not None else None
        self._image_keys = image_keys(self.obs_spec)
        # on the device the agent is built on (``with torch.device("cuda"): Agent(...)``), so
        # sampling with it works on CUDA tensors; CPU otherwise
        self.generator = torch.Generator(device=torch.get_default_device()).manual_seed(int(seed))
        self.phase = "offline"
        self.num_updates = 0

    # -- observations -----------------------------------------------------------
    def on_features(self, head: nn.Module, trains_encoder: bool) -> nn.Module:
        """``head`` (built for ``self.feature_dim`` inputs) reading raw observations.

        ``trains_encoder``: this network's loss trains the shared encoder body (the critic; the
        policy of BC; policy and value of PPO); otherwise it reads the body's output detached
        (the actor of SAC/CQL/IQL, IQL's V). With ``encoder.shared False`` every network gets
        its own body, trained by its own loss. Raw vectors: ``head`` itself.
        """
        if self.raw_obs:
            return head
        cfg = self.encoder_config
        if not cfg.shared:
            return EncodedHead(head, build_body(self.obs_spec, cfg), cfg.feature_dim, owns_body=True, detach=False)
        owns = trains_encoder and not self._body_owned
        self.__dict__["_body_owned"] = self._body_owned or owns
        return EncodedHead(head, self._shared_body, cfg.feature_dim, owns_body=owns, detach=not trains_encoder,
                           cache=self._feature_cache)

    def reusing_features(self) -> contextlib.AbstractContextManager:
        """Context of one update: reads of the shared encoder that do not train it reuse its output
        on the same batch (``encoder.reuse_features``, DrQ-v2; :class:`~robokit.nets.encoders.FeatureCache`)."""
        if self._feature_cache is None or not self.encoder_config.reuse_features:
            return contextlib.nullcontext()
        return self._feature_cache.scope()

    def obs_batch(self, obs: Any) -> tuple[Any, bool]:
        """Validate numpy observations against the spec and batch them on the agent's device:
        returns (obs batch with B rows, whether the input had a batch dimension)."""
        batch, batched = self.obs_spec.as_batch(obs, "obs")
        return batch.to(self.generator.device), batched

    def torch_batch(self, batch: dict[str, Any]) -> dict[str, Any]:
        """A replay batch (numpy) -> the tensors ``update`` takes: images stay uint8 (random-shifted
        when ``encoder.augment`` is "shift", except for on-policy agents, whose probability ratio
        must see the observation they acted on), point clouds one flat tensor plus offsets."""
        out = agent_batch(batch, self.generator.device)
        if self._image_keys and self.encoder_config.augment == "shift" and not self.on_policy:
            for key in OBS_KEYS:
                if key in out:
                    out[key] = augment_images(out[key], self._image_keys, self.encoder_config.shift_pad,
                                              self.generator)
        return out

    @contextlib.contextmanager
    def acting(self) -> Iterator[None]:
        """Encoders in eval mode (BatchNorm running statistics) while acting; restored after."""
        if self.raw_obs or not self.training:
            yield
            return
        self.train(False)
        try:
            yield
        finally:
            self.train(True)

    # -- acting ---------------------------------------------------------------
    def policy_action(self, obs: torch.Tensor, deterministic: bool) -> torch.Tensor:
        """(B, O) -> (B, A) in [-1, 1]; subclasses with a TanhGaussianPolicy need not override."""
        if deterministic:
            return self.actor.mode(obs)
        return self.actor.sample(obs, self.generator)[0]

    @torch.no_grad()
    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """One observation -> (A,), or a batch of B -> (B, A), float32 actions in [-1, 1].

        Observations follow ``obs_spec``: (O,) vectors, (H, W, C) uint8 images, (N, C) clouds
        (a list of clouds for a batch), dicts of those. A bad one raises ``ObservationError``
        naming the key."""
        tensor, batched = self.obs_batch(obs)
        with self.acting():
            action = self.policy_action(tensor, deterministic).cpu().numpy().astype(np.float32)
        return action if batched else action[0]

    def set_phase(self, phase: str) -> None:
        if phase not in PHASES:
            raise ValueError(f"unknown phase '{phase}'; expected one of {PHASES}")
        self.phase = phase

    # -- training -------------------------------------------------------------
    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        raise NotImplementedError

    def minibatches(self, batch: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        """Split a batch of k * batch_size rows into k minibatches (k >= 1)."""
        size = len(batch["obs"])  # rows, for tensors and for ObsDict / PointBatch alike
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
            "obs_spec": self.obs_spec.to_dict(),
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


def adam(params, lr: float, **kwargs: Any) -> torch.optim.Adam:
    """Adam with the fused single-kernel step (CPU and CUDA): the same update rule as
    ``torch.optim.Adam``'s default loop, equal up to float rounding (tests/rl/test_agents.py),
    without a Python loop and a handful of kernels per parameter."""
    return torch.optim.Adam(params, lr=lr, fused=True, **kwargs)


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
