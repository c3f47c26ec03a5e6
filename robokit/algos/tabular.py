"""Tabular DoC, DT and BC for small discrete problems (the DoC code's ``tabular_sdt.py``,
``tabular_dt.py`` and ``tabular_bc.py``, re-derived in torch).

Data are integer arrays of one step per row: ``states`` (N,), ``actions`` (N,) and ``returns``
(N,) the return-to-go, discretised into ``num_returns`` bins over [min_return, max_return].

Tabular DoC: discrete latents (``num_latents`` = actions x return bins, as in the code) with

- posterior table q(z | s, a, g)   (S, A, R, Z) logits; z is sampled with a straight-through
  one-hot (forward: sample, backward: softmax gradient);
- value table     p(g | s, z)      (S, Z, R) logits, cross-entropy;
- policy table    pi(a | s, z)     (S, Z, A) logits, cross-entropy;
- energy table    f(s, a, g) . z   (S, A, R, Z); contrastive term against every bin g' weighted
  by the data's marginal of g (:func:`robokit.losses.doc.weighted_info_nce`).

Acting: the latent with the highest probability of the top return bin, then its policy row.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robokit.losses.doc import reverse_gradient, weighted_info_nce


@dataclasses.dataclass(frozen=True)
class TabularConfig:
    """Defaults from the DoC code's ``run_tabular.py``: Adam 0.01, batch 64, 10k steps, weights 1."""

    num_returns: int = 2
    min_return: float = 0.0
    max_return: float = 1.0
    learning_rate: float = 0.01
    batch_size: int = 64
    steps: int = 10_000
    energy_weight: float = 1.0
    mi_gradient: str = "reverse"


def return_bins(returns: np.ndarray, config: TabularConfig) -> np.ndarray:
    """(N,) float returns -> (N,) int bins in [0, num_returns)."""
    span = max(config.max_return - config.min_return, 1e-12)
    bins = np.floor((np.asarray(returns, np.float64) - config.min_return) / span * (config.num_returns - 1) + 0.5)
    return np.clip(bins, 0, config.num_returns - 1).astype(np.int64)


class TabularAgent(nn.Module):
    """Base: fits tables by minibatch Adam on (state, action, return bin) rows."""

    def __init__(self, config: TabularConfig, num_states: int, num_actions: int, seed: int = 0):
        super().__init__()
        self.config, self.num_states, self.num_actions = config, int(num_states), int(num_actions)
        self.generator = torch.Generator().manual_seed(int(seed))

    def table(self, *shape: int) -> nn.Parameter:
        return nn.Parameter(torch.randn(shape, generator=self.generator).clamp(-2, 2))

    def fit(self, states: np.ndarray, actions: np.ndarray, returns: np.ndarray) -> dict[str, float]:
        """Train on all rows; returns the last step's losses."""
        data = self.check_rows(states, actions, returns)
        self.prepare(data)
        optimizer = torch.optim.Adam(self.parameters(), lr=self.config.learning_rate)
        metrics: dict[str, torch.Tensor] = {}
        for _ in range(self.config.steps):
            pick = torch.randint(len(data[0]), (self.config.batch_size,), generator=self.generator)
            metrics = self.losses(*(column[pick] for column in data))
            optimizer.zero_grad(set_to_none=True)
            sum(metrics.values()).backward()
            optimizer.step()
        return {key: value.item() for key, value in metrics.items()}

    def check_rows(self, states: np.ndarray, actions: np.ndarray, returns: np.ndarray) -> tuple[torch.Tensor, ...]:
        states, actions = np.asarray(states), np.asarray(actions)
        if not (len(states) == len(actions) == len(returns)) or len(states) == 0:
            raise ValueError(f"tabular data: states, actions, returns need one equal non-zero length, got "
                             f"{len(states)}, {len(actions)}, {len(returns)}")
        for name, values, high in (("state", states, self.num_states), ("action", actions, self.num_actions)):
            if values.min() < 0 or values.max() >= high:
                raise ValueError(f"tabular data: {name} indices must lie in [0, {high}), got {values.min()}..{values.max()}")
        bins = return_bins(returns, self.config)
        return tuple(torch.as_tensor(np.asarray(x), dtype=torch.int64) for x in (states, actions, bins))

    def prepare(self, data: tuple[torch.Tensor, ...]) -> None:
        """Statistics of the whole dataset (DoC: the marginal of the return bins)."""

    def losses(self, states: torch.Tensor, actions: torch.Tensor, bins: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    @torch.no_grad()
    def action_probs(self, state: int) -> np.ndarray:
        raise NotImplementedError


class TabularBC(TabularAgent):
    """pi(a | s) by cross-entropy."""

    def __init__(self, config: TabularConfig, num_states: int, num_actions: int, seed: int = 0):
        super().__init__(config, num_states, num_actions, seed)
        self.policy = self.table(num_states, num_actions)

    def losses(self, states, actions, bins):
        return {"action": F.cross_entropy(self.policy[states], actions)}

    @torch.no_grad()
    def action_probs(self, state: int) -> np.ndarray:
        return torch.softmax(self.policy[state], -1).numpy()


class TabularDT(TabularAgent):
    """pi(a | s, g) by cross-entropy; acts conditioned on the top return bin."""

    def __init__(self, config: TabularConfig, num_states: int, num_actions: int, seed: int = 0):
        super().__init__(config, num_states, num_actions, seed)
        self.policy = self.table(num_states, config.num_returns, num_actions)

    def losses(self, states, actions, bins):
        return {"action": F.cross_entropy(self.policy[states, bins], actions)}

    @torch.no_grad()
    def action_probs(self, state: int, target_bin: int | None = None) -> np.ndarray:
        target = self.config.num_returns - 1 if target_bin is None else target_bin
        return torch.softmax(self.policy[state, target], -1).numpy()


class TabularDoC(TabularAgent):
    """Tabular DoC (see the module docstring)."""

    def __init__(self, config: TabularConfig, num_states: int, num_actions: int, seed: int = 0):
        super().__init__(config, num_states, num_actions, seed)
        if config.mi_gradient not in ("reverse", "joint"):
            raise ValueError(f"mi_gradient must be 'reverse' or 'joint', got {config.mi_gradient!r}")
        bins, latents = config.num_returns, num_actions * config.num_returns
        self.num_latents = latents
        self.posterior = self.table(num_states, num_actions, bins, latents)
        self.value = self.table(num_states, latents, bins)
        self.policy = self.table(num_states, latents, num_actions)
        self.energy = self.table(num_states, num_actions, bins, latents)
        self.register_buffer("return_marginal", torch.full((bins,), 1.0 / bins))

    def prepare(self, data: tuple[torch.Tensor, ...]) -> None:
        counts = torch.bincount(data[2], minlength=self.config.num_returns).float()
        self.return_marginal.copy_(counts / counts.sum())

    def sample_latent(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, Z) logits -> (B, Z) one-hot samples with straight-through softmax gradients."""
        probs = torch.softmax(logits, -1)
        index = torch.multinomial(probs.detach(), 1, generator=self.generator).squeeze(-1)
        return F.one_hot(index, self.num_latents).float() + probs - probs.detach()

    def losses(self, states, actions, bins):
        z = self.sample_latent(self.posterior[states, actions, bins])
        value_logits = torch.einsum("bz,bzr->br", z, self.value[states])
        action_logits = torch.einsum("bz,bza->ba", z, self.policy[states])
        z_energy = reverse_gradient(z) if self.config.mi_gradient == "reverse" else z
        candidates = torch.einsum("bz,brz->br", z_energy, self.energy[states, actions])  # (B, R)
        positive = candidates.gather(1, bins[:, None]).squeeze(1)
        return {"value": F.cross_entropy(value_logits, bins),
                "action": F.cross_entropy(action_logits, actions),
                "energy": self.config.energy_weight * weighted_info_nce(positive, candidates, self.return_marginal)}

    @torch.no_grad()
    def best_latent(self, state: int) -> int:
        """The latent with the highest probability of the top return bin."""
        return int(torch.softmax(self.value[state], -1)[:, -1].argmax())

    @torch.no_grad()
    def action_probs(self, state: int) -> np.ndarray:
        return torch.softmax(self.policy[state, self.best_latent(state)], -1).numpy()
