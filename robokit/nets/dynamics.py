"""Probabilistic ensemble dynamics model (PETS / MBPO / MOBILE style) with elites and termination functions.

Each of E members predicts a diagonal Gaussian over ``(s' - s, r)`` from ``(s, a)``; all members run
in one batched matmul per layer (:class:`robokit.nets.ensemble.EnsembleLinear`). Training follows the
MOBILE code that Uni-O4 uses (``transition_model/dynamics/ensemble_dynamics.py`` and
``models/dynamics_model.py``): inputs standardised by statistics of the training split, Gaussian NLL
``mean((mu - y)^2 exp(-logvar)) + mean(logvar)`` summed over members, per-layer weight decay,
learnable soft bounds on the log-variance (+0.01 * (max_logvar - min_logvar)), a hold-out split of
min(20 %, 1000) rows, each member keeps its best hold-out weights (1 % improvement rule), training
stops after ``max_epochs_since_update`` epochs without improvement, and the ``num_elites`` members
with the lowest hold-out MSE are the elites. A step samples one random elite per row.

Usage::

    model = EnsembleDynamics(obs_dim, action_dim)
    report = model.fit(obs, action, reward, next_obs, generator=g)        # numpy or torch (N, .)
    next_obs, reward, done = model.step(obs, action, termination_fn("Hopper-v5"), g)
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from robokit.nets.ensemble import EnsembleLinear

TerminationFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


# ------------------------------------------------------------------ termination functions
def _hopper_done(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Gymnasium Hopper's unhealthy test: height <= 0.7, |angle| >= 0.2 or any |state[1:]| >= 100."""
    height, angle = next_obs[:, 0], next_obs[:, 1]
    healthy = torch.isfinite(next_obs).all(-1) & (next_obs[:, 1:].abs() < 100).all(-1) & (height > 0.7) \
        & (angle.abs() < 0.2)
    return ~healthy


def _walker_done(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Gymnasium Walker2d's unhealthy test: height outside (0.8, 2.0) or |angle| >= 1."""
    height, angle = next_obs[:, 0], next_obs[:, 1]
    healthy = torch.isfinite(next_obs).all(-1) & (height > 0.8) & (height < 2.0) & (angle > -1.0) & (angle < 1.0)
    return ~healthy


def _never_done(obs: torch.Tensor, action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
    """Tasks without terminal states (HalfCheetah, Swimmer, ...): only non-finite states stop."""
    return ~torch.isfinite(next_obs).all(-1)


#: env-name fragment -> termination function (MOBILE's ``utils/termination_fns.py``, gymnasium v5 bounds)
TERMINATION_FNS: dict[str, TerminationFn] = {
    "hopper": _hopper_done,
    "walker2d": _walker_done,
    "halfcheetah": _never_done,
    "armreach": _never_done,  # robokit/ArmReach-v0 ends only by its time limit
}


def termination_fn(env_id: str) -> TerminationFn:
    """The termination function of ``env_id`` (matched case-insensitively on the task name).

    Raises:
        KeyError: naming the env and the known tasks when none matches.
    """
    name = env_id.lower().replace("_", "").replace("-", "")
    for key, fn in TERMINATION_FNS.items():
        if key in name:
            return fn
    raise KeyError(f"no termination function for env '{env_id}' (known: {sorted(TERMINATION_FNS)}); "
                   "add one to robokit.nets.dynamics.TERMINATION_FNS")


# ------------------------------------------------------------------ model
def soft_clamp(x: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Differentiable clamp of ``x`` into (low, high) with softplus (PETS): same shapes broadcast."""
    x = high - F.softplus(high - x)
    return low + F.softplus(x - low)


@dataclasses.dataclass(frozen=True)
class FitReport:
    """What :meth:`EnsembleDynamics.fit` did: epochs run, gradient steps, hold-out MSE per member, elites."""

    epochs: int
    steps: int
    holdout_mse: list[float]
    elites: list[int]

    @property
    def elite_mse(self) -> float:
        return float(np.mean([self.holdout_mse[i] for i in self.elites]))


class EnsembleDynamics(nn.Module):
    """E Gaussian models of ``(s' - s, r) | (s, a)``; forward(x (B, O+A) or (E, B, O+A)) -> (mean, logvar) (E, B, O+1).

    Args:
        obs_dim, action_dim: sizes.
        hidden_dims: hidden widths (MOBILE / Uni-O4: four of 200).
        ensemble_size: E (7); num_elites: members used for prediction (5).
        weight_decays: one L2 coefficient per layer (hidden layers then output), MOBILE's
            (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4); None: no decay.
    """

    def __init__(self, obs_dim: int, action_dim: int, hidden_dims: Sequence[int] = (200, 200, 200, 200),
                 ensemble_size: int = 7, num_elites: int = 5, weight_decays: Sequence[float] | None = None) -> None:
        super().__init__()
        if not 1 <= num_elites <= ensemble_size:
            raise ValueError(f"num_elites must be in [1, {ensemble_size}], got {num_elites}")
        widths = [obs_dim + action_dim, *hidden_dims]
        self.obs_dim, self.action_dim = int(obs_dim), int(action_dim)
        self.ensemble_size, self.num_elites = int(ensemble_size), int(num_elites)
        self.layers = nn.ModuleList(EnsembleLinear(i, o, ensemble_size) for i, o in zip(widths[:-1], widths[1:],
                                                                                          strict=True))
        self.output = EnsembleLinear(widths[-1], 2 * (obs_dim + 1), ensemble_size)
        for layer in [*self.layers, self.output]:  # MOBILE: truncated normal, std 1 / (2 sqrt(in)), zero bias
            with torch.no_grad():
                nn.init.trunc_normal_(layer.weight, std=1.0 / (2.0 * math.sqrt(layer.in_dim)))
                layer.bias.zero_()
        decays = [0.0] * (len(hidden_dims) + 1) if weight_decays is None else list(weight_decays)
        if len(decays) != len(hidden_dims) + 1:
            raise ValueError(f"weight_decays needs {len(hidden_dims) + 1} entries, got {len(decays)}")
        self.weight_decays = decays
        self.max_logvar = nn.Parameter(torch.full((obs_dim + 1,), 0.5))
        self.min_logvar = nn.Parameter(torch.full((obs_dim + 1,), -10.0))
        self.register_buffer("input_mean", torch.zeros(obs_dim + action_dim))
        self.register_buffer("input_std", torch.ones(obs_dim + action_dim))
        self.register_buffer("elites", torch.arange(num_elites))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    # ---------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, members: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Standardised inputs (B, O+A) or (E, B, O+A) -> mean, logvar (E, B, O+1) of (delta obs, reward);
        with ``members`` (M,) only those members run (input (B, .) or (M, B, .)) and the output is (M, B, O+1)."""
        for layer in self.layers:
            x = F.silu(layer(x, members))
        mean, logvar = self.output(x, members).chunk(2, dim=-1)
        return mean, soft_clamp(logvar, self.min_logvar, self.max_logvar)

    def normalise_inputs(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return (torch.cat([obs, action], -1) - self.input_mean) / self.input_std

    def decay_loss(self) -> torch.Tensor:
        layers = [*self.layers, self.output]
        return sum(0.5 * decay * layer.weight.pow(2).sum() for decay, layer in zip(self.weight_decays, layers,
                                                                                     strict=True))

    def nll_loss(self, inputs: torch.Tensor, targets: torch.Tensor, logvar_coef: float = 0.01) -> torch.Tensor:
        """Training loss for per-member batches: inputs (E, B, O+A) standardised, targets (E, B, O+1).

        sum_e [mean((mu - y)^2 exp(-logvar)) + mean(logvar)] + weight decay + coef * sum(max_logvar - min_logvar).
        """
        return self._loss_without_decay(inputs, targets, logvar_coef) + self.decay_loss()

    def _loss_without_decay(self, inputs: torch.Tensor, targets: torch.Tensor, logvar_coef: float) -> torch.Tensor:
        """:meth:`nll_loss` less its weight-decay term (which :meth:`make_optimizer` applies)."""
        mean, logvar = self(inputs)
        nll = ((mean - targets).pow(2) * torch.exp(-logvar)).mean(dim=(1, 2)) + logvar.mean(dim=(1, 2))
        return nll.sum() + logvar_coef * (self.max_logvar.sum() - self.min_logvar.sum())

    def make_optimizer(self, lr: float = 1e-3) -> torch.optim.Adam:
        """The Adam of :meth:`fit`, for :meth:`train_step`: one parameter group per layer weight whose
        ``weight_decay`` is that layer's coefficient d, one undecayed group for biases and log-variance bounds.

        Adam's (L2, not decoupled) weight decay adds d * w to the gradient, which is exactly the gradient of
        the loss term 0.5 * d * ||w||^2 of :meth:`nll_loss`, so the update is the same as Adam on
        ``nll_loss``; it just skips the term's forward and backward passes. ``fused=True``: one kernel per
        step for all parameters instead of a loop of kernels.
        """
        layers = [*self.layers, self.output]
        decayed = [{"params": [layer.weight], "weight_decay": decay}
                   for layer, decay in zip(layers, self.weight_decays, strict=True)]
        weights = {id(layer.weight) for layer in layers}
        rest = [p for p in self.parameters() if id(p) not in weights]
        return torch.optim.Adam([*decayed, {"params": rest, "weight_decay": 0.0}], lr=lr, fused=True)

    def train_step(self, inputs: torch.Tensor, targets: torch.Tensor, optimizer: torch.optim.Optimizer,
                   logvar_coef: float = 0.01) -> torch.Tensor:
        """One gradient step on per-member batches, inputs (E, B, O+A) standardised, targets (E, B, O+1),
        with an optimizer from :meth:`make_optimizer` (it carries the weight decay). Returns the loss
        without the weight-decay term (a detached scalar); add :meth:`decay_loss` for :meth:`nll_loss`'s value.
        """
        loss = self._loss_without_decay(inputs, targets, logvar_coef)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    # ---------------------------------------------------------------- training
    def fit(self, obs: torch.Tensor | np.ndarray, action: torch.Tensor | np.ndarray,
            reward: torch.Tensor | np.ndarray, next_obs: torch.Tensor | np.ndarray, *, lr: float = 1e-3,
            batch_size: int = 256, holdout_ratio: float = 0.2, max_holdout: int = 1000,
            max_epochs: int | None = None, max_epochs_since_update: int = 5, logvar_coef: float = 0.01,
            generator: torch.Generator | None = None) -> FitReport:
        """Fit on transitions (N, .) with hold-out early stopping; choose the elites. Returns a :class:`FitReport`."""
        obs, action, reward, next_obs = (torch.as_tensor(np.asarray(v) if not torch.is_tensor(v) else v,
                                                         dtype=torch.float32) for v in (obs, action, reward, next_obs))
        inputs = torch.cat([obs, action], -1)
        targets = torch.cat([next_obs - obs, reward.reshape(-1, 1)], -1)
        count = len(inputs)
        holdout = min(int(count * holdout_ratio), max_holdout)
        if count - holdout < 1:
            raise ValueError(f"dynamics fit needs at least 2 transitions, got {count}")
        order = torch.randperm(count, generator=generator)
        train_idx, hold_idx = order[holdout:], order[:holdout]
        with torch.no_grad():
            self.input_mean.copy_(inputs[train_idx].mean(0))
            std = inputs[train_idx].std(0, unbiased=False)
            self.input_std.copy_(torch.where(std < 1e-12, torch.ones_like(std), std))
        train_x, train_y = (inputs[train_idx] - self.input_mean) / self.input_std, targets[train_idx]
        hold_x, hold_y = (inputs[hold_idx] - self.input_mean) / self.input_std, targets[hold_idx]
        optimizer = self.make_optimizer(lr)
        best = [1e10] * self.ensemble_size  # MOBILE's initial hold-out loss (inf would make the ratio NaN)
        saved = copy.deepcopy(self.state_dict())
        # each member trains on its own bootstrap of the training split
        boot = torch.randint(len(train_x), (self.ensemble_size, len(train_x)), generator=generator)
        epoch = steps = stale = 0
        while True:
            epoch += 1
            steps += self._epoch(train_x, train_y, boot, optimizer, batch_size, logvar_coef)
            boot = boot.gather(1, torch.argsort(torch.rand(boot.shape, generator=generator), dim=1))
            mse = self.holdout_mse(hold_x, hold_y) if holdout > 0 else [0.0] * self.ensemble_size
            improved = [e for e in range(self.ensemble_size) if (best[e] - mse[e]) / max(best[e], 1e-12) > 0.01]
            for e in improved:
                best[e] = mse[e]
                self._save_member(saved, e)
            stale = 0 if improved else stale + 1
            if stale >= max_epochs_since_update or (max_epochs is not None and epoch >= max_epochs):
                break
        saved["max_logvar"], saved["min_logvar"] = self.max_logvar.detach().clone(), self.min_logvar.detach().clone()
        self.load_state_dict(saved)  # each member's best weights; the log-variance bounds as trained (MOBILE)
        elites = sorted(range(self.ensemble_size), key=lambda e: best[e])[:self.num_elites]
        with torch.no_grad():
            self.elites.copy_(torch.tensor(elites))
            self.fitted.fill_(True)
        return FitReport(epoch, steps, [float(b) for b in best], elites)

    def _epoch(self, x: torch.Tensor, y: torch.Tensor, boot: torch.Tensor, optimizer: torch.optim.Optimizer,
               batch_size: int, logvar_coef: float) -> int:
        self.train()
        steps = 0
        for begin in range(0, boot.shape[1], batch_size):
            rows = boot[:, begin:begin + batch_size]  # (E, b)
            self.train_step(x[rows], y[rows], optimizer, logvar_coef)
            steps += 1
        return steps

    @torch.no_grad()
    def holdout_mse(self, x: torch.Tensor, y: torch.Tensor) -> list[float]:
        """Mean squared error of each member's mean on standardised inputs x (N, O+A), targets y (N, O+1)."""
        mean, _ = self(x)
        return (mean - y).pow(2).mean(dim=(1, 2)).tolist()

    def _save_member(self, saved: dict, member: int) -> None:
        for name, value in self.state_dict().items():
            if value.dim() >= 1 and value.shape[0] == self.ensemble_size and name.endswith(("weight", "bias")):
                saved[name][member] = value[member].detach().clone()

    # ---------------------------------------------------------------- rollout
    def elite_predictions(self, x: torch.Tensor, pick: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and logvar (B, O+1) of row b under elite ``elites[pick[b]]``, x (B, O+A) standardised.

        Rows are grouped by their elite and padded to the largest group, so each row runs through one
        member only (about B * max_group / mean_group rows of work instead of E * B).
        """
        counts = torch.bincount(pick, minlength=self.num_elites)
        order = torch.argsort(pick, stable=True)
        group = pick[order]
        position = torch.arange(len(pick)) - (torch.cumsum(counts, 0) - counts)[group]
        padded = x.new_zeros(self.num_elites, int(counts.max()), x.shape[-1])
        padded[group, position] = x[order]
        mean, logvar = self(padded, self.elites)
        out_mean, out_logvar = mean.new_empty(len(pick), mean.shape[-1]), mean.new_empty(len(pick), mean.shape[-1])
        out_mean[order], out_logvar[order] = mean[group, position], logvar[group, position]
        return out_mean, out_logvar

    @torch.no_grad()
    def step(self, obs: torch.Tensor, action: torch.Tensor, done_fn: TerminationFn | None = None,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One imagined step: obs (B, O), action (B, A) -> next_obs (B, O), reward (B,), done (B,) bool.

        Each row samples from the Gaussian of one elite member drawn uniformly (MOBILE's ``step``).
        """
        if not bool(self.fitted):
            raise RuntimeError("EnsembleDynamics.step: the model is not fitted (call fit first)")
        pick = torch.randint(self.num_elites, (len(obs),), generator=generator)
        mean, logvar = self.elite_predictions(self.normalise_inputs(obs, action), pick)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype)
        sample = mean + (0.5 * logvar).exp() * noise
        next_obs, reward = obs + sample[:, :-1], sample[:, -1]
        done = done_fn(obs, action, next_obs) if done_fn is not None else torch.zeros(len(obs), dtype=torch.bool)
        return next_obs, reward, done
