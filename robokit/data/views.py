"""Views turn sampled slots into batches.

A view is a callable ``view(buffer, picked) -> batch`` where ``picked`` is a
sampler's output (``"slots"`` and optionally ``"weights"``/``"mask"``). Use one
with ``buffer.sample(batch_size, view=...)``.

- :class:`TransitionView`: (o, a, r, o', terminated, truncated[, mc_return]).
- :class:`NStepView`: n-step discounted reward sum, the observation n steps on
  (or at the episode's end), and the discount to bootstrap with.
- :class:`ReturnToGoView`: the transition plus its Monte-Carlo return-to-go
  (Cal-QL's rule; needs ``store_mc_return``).
- :class:`WindowView`: trajectory windows (B, L, ...) with a padding mask, for
  sequence models such as DoC.
- :class:`StatePairView`: (o_t, o_{t+k}, a_t) for inverse dynamics.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robokit.data.batch import nest_obs
from robokit.data.samplers import follow_episode
from robokit.data.storage import RaggedField


def _with_sampler_extras(batch: dict[str, Any], picked: dict[str, np.ndarray]) -> dict[str, Any]:
    if "weights" in picked:
        batch["weights"] = picked["weights"]
        batch["indices"] = picked["slots"]
    if "task" in picked:  # TaskSampler: each row's task index (into buffer.tasks)
        batch["task"] = picked["task"]
    return batch


def _first_slots(picked: dict[str, np.ndarray]) -> np.ndarray:
    """(B,) slots: window samplers give (B, L); a transition view uses the window's first step."""
    slots = picked["slots"]
    return slots[:, 0] if slots.ndim == 2 else slots


class TransitionView:
    """One-step transitions; see :meth:`ReplayBuffer.sample` for the keys."""

    def __call__(self, buffer: Any, picked: dict[str, np.ndarray]) -> dict[str, Any]:
        return _with_sampler_extras(buffer.gather_transitions(_first_slots(picked)), picked)


class ReturnToGoView(TransitionView):
    """Transitions with ``mc_return`` (B,): the discounted Monte-Carlo return-to-go of the
    episode from that step (Cal-QL's sparse-failure rule applied; see :mod:`robokit.data.returns`)."""

    def __call__(self, buffer: Any, picked: dict[str, np.ndarray]) -> dict[str, Any]:
        if not buffer.store_mc_return:
            raise ValueError("ReturnToGoView needs a buffer built with store_mc_return=True")
        return super().__call__(buffer, picked)


class NStepView:
    """n-step transitions that stop at the episode's end.

    For a start step t with m = min(n, steps left in the episode, steps written):
    ``reward`` = sum_{k<m} gamma^k r_{t+k}; ``next_obs`` = o_{t+m} (the final observation
    of a step that ended the episode); ``terminated`` = whether step t+m-1 terminated;
    ``truncated`` likewise; ``discount`` = gamma^m, so the TD target is
    ``reward + discount * (1 - terminated) * V(next_obs)``; ``n_steps`` = m.

    Args:
        n: number of steps.
        discount: gamma (defaults to the buffer's).
    """

    def __init__(self, n: int, discount: float | None = None):
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        self.n = int(n)
        self.discount = discount

    def __call__(self, buffer: Any, picked: dict[str, np.ndarray]) -> dict[str, Any]:
        gamma = buffer.discount if self.discount is None else float(self.discount)
        starts = _first_slots(picked)
        slots, mask = follow_episode(buffer.storage, starts, self.n)
        fields = buffer.storage.fields
        steps = mask.sum(axis=1).astype(np.int64)  # episode ids are unique, so windows stop at its end
        last = slots[np.arange(len(starts)), steps - 1]
        powers = gamma ** np.arange(self.n, dtype=np.float64)
        rewards = (fields["reward"][slots] * mask * powers[None, :]).sum(axis=1)
        batch = buffer.gather_transitions(starts)
        tail = buffer.gather_transitions(last)
        batch.update(next_obs=tail["next_obs"], terminated=tail["terminated"], truncated=tail["truncated"],
                     reward=rewards.astype(np.float32), discount=(gamma ** steps).astype(np.float32),
                     n_steps=steps)
        for key in [k for k in tail if k.startswith("next_obs_")]:
            batch[key] = tail[key]
        return _with_sampler_extras(batch, picked)


class WindowView:
    """Trajectory windows of ``length`` steps for sequence models (e.g. DoC).

    Keys: ``obs`` (B, L, *obs_shape), ``action`` (B, L, A), ``reward`` (B, L),
    ``terminated`` (B, L), ``truncated`` (B, L), ``timestep`` (B, L) int64 (step index
    in the episode), ``mask`` (B, L) float32 (1 real, 0 padding after the episode's end;
    padded entries are zeros), ``mc_return`` (B, L) when stored, ``next_obs`` (B, L, ...).
    Dense observations only.
    """

    def __init__(self, length: int):
        self.length = int(length)

    def __call__(self, buffer: Any, picked: dict[str, np.ndarray]) -> dict[str, Any]:
        if buffer.ragged:
            raise ValueError("WindowView needs dense observations (ragged point clouds are not windowed)")
        slots = picked["slots"]
        if slots.ndim == 2 and "mask" in picked and slots.shape[1] == self.length:
            mask = picked["mask"]
        else:
            slots, mask = follow_episode(buffer.storage, _first_slots(picked), self.length)
        batch: dict[str, Any] = {}
        for name, field in buffer.storage.fields.items():
            if name in ("episode", "next") or isinstance(field, RaggedField):
                continue
            values = field[slots]
            pad = mask.reshape(mask.shape + (1,) * (values.ndim - 2)).astype(bool)
            values = np.where(pad, values, np.zeros((), values.dtype))
            if name in ("terminated", "truncated"):
                values = values.astype(np.float32)
            batch["timestep" if name == "step" else name] = values
        batch["timestep"] = batch["timestep"].astype(np.int64)
        batch["mask"] = mask
        return nest_obs(batch)


class StatePairView:
    """(o_t, o_{t+k}, a_t) triples for inverse-dynamics models.

    ``k`` is fixed, or drawn uniformly in [1, max_k] per row when ``random_k``.
    When the episode ends before t+k, the pair uses the episode's last observation
    and ``k`` reports the distance actually used.

    Keys: ``obs`` (B, ...), ``future_obs`` (B, ...), ``action`` (B, A), ``k`` (B,) int64.
    """

    def __init__(self, k: int = 1, random_k: bool = False):
        if k < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        self.k = int(k)
        self.random_k = bool(random_k)

    def __call__(self, buffer: Any, picked: dict[str, np.ndarray]) -> dict[str, Any]:
        starts = _first_slots(picked)
        wanted = buffer.rng.integers(1, self.k + 1, len(starts)) if self.random_k else np.full(len(starts), self.k)
        slots, mask = follow_episode(buffer.storage, starts, self.k)
        available = mask.sum(axis=1).astype(np.int64)
        used = np.minimum(wanted, available)
        # o_{t+k} is the next_obs of step t+k-1
        tail = buffer.gather_transitions(slots[np.arange(len(starts)), used - 1])
        head = buffer.gather_transitions(starts)
        batch = {"obs": head["obs"], "action": head["action"], "future_obs": tail["next_obs"], "k": used}
        for key in [k for k in head if k.startswith("obs_")]:
            batch[key] = head[key]
        for key in [k for k in tail if k.startswith("next_obs_")]:
            batch["future_obs" + key[len("next_obs"):]] = tail[key]
        return _with_sampler_extras(batch, picked)
