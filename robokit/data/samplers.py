"""Samplers pick slot indices from a :class:`~robokit.data.storage.RingStorage`.

A sampler never touches field data; it returns a dict with at least
``"slots"`` (B,) int64 (or (B, L) for windows) and, where it applies,
``"weights"`` (B,) float32 importance weights or ``"mask"`` (B, L) float32.
Live slots are always ``[0, size)``: the ring fills from slot 0 and, once full,
every slot is live.

- :class:`UniformSampler`: i.i.d. uniform over live transitions.
- :class:`PrioritizedSampler`: proportional prioritized replay (Schaul et al.
  2016): P(i) = p_i^alpha / sum p^alpha, weights (N P(i))^-beta / max, with a
  numba sum tree; new transitions get the current maximum priority.
- :class:`EpisodeWindowSampler`: windows of L consecutive steps of one
  episode, starting at a uniformly drawn step, padded (mask 0) past the
  episode's end.
- :class:`TaskSampler`: multi-task data: each row's task drawn uniformly from the
  tasks present (or from a chosen subset: per-task sampling), then a uniform
  transition of that task.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from robokit.data.storage import RingStorage


class UniformSampler:
    """Uniform i.i.d. sampling over the live slots."""

    name = "uniform"

    def on_write(self, slots: np.ndarray) -> None:
        """Called after new slots are written (nothing to do for uniform sampling)."""

    def sample(self, storage: RingStorage, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        return {"slots": rng.integers(0, storage.size, size=batch_size, dtype=np.int64)}

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """Uniform sampling keeps no state."""


class PrioritizedSampler:
    """Proportional prioritized replay over a numba sum tree.

    Args:
        capacity: number of slots of the storage it samples from.
        alpha: priority exponent (0 = uniform); 0.6 as in Schaul et al. 2016.
        beta: importance-weight exponent; 0.4 as in Schaul et al. (anneal it to 1
            by setting ``sampler.beta``).
        eps: added to |TD error| so no transition gets zero probability.
    """

    name = "prioritized"

    def __init__(self, capacity: int, alpha: float = 0.6, beta: float = 0.4, eps: float = 1e-6):
        from robokit.data.sumtree import SumTree

        self.tree = SumTree(capacity)
        self.alpha, self.beta, self.eps = float(alpha), float(beta), float(eps)
        self.max_priority = 1.0

    def on_write(self, slots: np.ndarray) -> None:
        """New transitions get the largest priority seen so far (so each is replayed soon)."""
        self.tree.set(np.asarray(slots, np.int64), np.full(len(slots), self.max_priority ** self.alpha))

    def sample(self, storage: RingStorage, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        total = self.tree.total()
        if not total > 0:
            raise RuntimeError("prioritized sampler: all priorities are zero")
        # stratified: one uniform draw in each of B equal segments of the total mass
        targets = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
        slots = self.tree.find(targets)
        probs = self.tree.get(slots) / total
        weights = (storage.size * probs) ** (-self.beta)
        return {"slots": slots, "weights": (weights / weights.max()).astype(np.float32)}

    def update_priorities(self, slots: np.ndarray, priorities: np.ndarray) -> None:
        """Set new priorities (e.g. |TD error|) for sampled ``slots`` (B,)."""
        priorities = np.abs(np.asarray(priorities, np.float64).reshape(-1)) + self.eps
        if not np.all(np.isfinite(priorities)):
            bad = int(np.flatnonzero(~np.isfinite(priorities))[0])
            raise ValueError(f"update_priorities: priority at index {bad} is {priorities[bad]}")
        self.max_priority = max(self.max_priority, float(priorities.max()))
        self.tree.set(np.asarray(slots, np.int64).reshape(-1), priorities ** self.alpha)

    def state(self) -> dict[str, Any]:
        return {"leaves": self.tree.leaves().copy(), "max_priority": np.float64(self.max_priority)}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        leaves = np.asarray(state["leaves"], np.float64)
        self.tree.set(np.arange(len(leaves)), leaves)
        self.max_priority = float(state["max_priority"])


class EpisodeWindowSampler:
    """Windows of ``length`` consecutive steps of one episode.

    Returns ``slots`` (B, L) and ``mask`` (B, L) float32: 1 for real steps, 0 for
    padding after the episode ends (or after the newest step written). Padded
    slots repeat the last real slot, so gathering them is always safe.
    """

    name = "episode-window"

    def __init__(self, length: int):
        if length < 1:
            raise ValueError(f"window length must be >= 1, got {length}")
        self.length = int(length)

    def on_write(self, slots: np.ndarray) -> None:
        """Windows are found from stored episode ids; nothing to track."""

    def sample(self, storage: RingStorage, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        starts = rng.integers(0, storage.size, size=batch_size, dtype=np.int64)
        slots, mask = follow_episode(storage, starts, self.length)
        return {"slots": slots, "mask": mask}

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """No state."""


def follow_episode(storage: RingStorage, starts: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Slots of ``length`` consecutive steps from each start, staying in the start's episode.

    Steps are followed through the per-slot ``next`` links (so episodes of interleaved
    streams are followed correctly); step k after the start is real when the linked slot
    still holds the same episode at step ``step[start] + k`` (it may have been overwritten).

    Returns:
        ``(slots (B, L) int64, mask (B, L) float32)``; padded entries repeat the last real slot.
    """
    episode, step, links = storage.dense("episode"), storage.dense("step"), storage.dense("next")
    starts = np.asarray(starts, np.int64)
    slots = np.empty((len(starts), length), np.int64)
    real = np.ones((len(starts), length), bool)
    slots[:, 0] = starts
    first_episode, first_step = episode[starts], step[starts]
    for k in range(1, length):
        previous = slots[:, k - 1]
        following = links[previous]
        ok = real[:, k - 1] & (following >= 0)
        following = np.where(ok, following, previous)
        ok &= (episode[following] == first_episode) & (step[following] == first_step + k)
        slots[:, k] = np.where(ok, following, previous)
        real[:, k] = ok
    return slots, real.astype(np.float32)


class IndexStream:
    """Uniform integer indices drawn from a generator in bulk (one generator call per
    ``chunk`` values instead of one per batch), which halves the cost of a small batch.

    ``draw(n, high)`` returns ``raw % high`` for the next ``n`` raw draws in ``[0, 2**62)``;
    the modulo bias is below ``high / 2**62`` (1e-13 for a million slots). The unused part
    of the current chunk is part of the state, so saving it resumes the exact sequence.
    """

    def __init__(self, rng: np.random.Generator, chunk: int = 1 << 12):
        self.rng = rng
        self.chunk = int(chunk)
        self.pool = np.zeros(0, np.int64)
        self.pos = 0

    def draw(self, n: int, high: int) -> np.ndarray:
        """(n,) int64 uniform in ``[0, high)``."""
        if self.pos + n > len(self.pool):
            fresh = self.rng.integers(0, 1 << 62, size=max(self.chunk, n), dtype=np.int64)
            self.pool = np.concatenate([self.pool[self.pos:], fresh])
            self.pos = 0
        raw = self.pool[self.pos:self.pos + n]
        self.pos += n
        return raw % high

    def remaining(self) -> np.ndarray:
        """Drawn-but-unused raw values (save them with the generator state)."""
        return self.pool[self.pos:].copy()

    def restore(self, remaining: np.ndarray) -> None:
        self.pool = np.asarray(remaining, np.int64).copy()
        self.pos = 0


class TaskSampler:
    """Balanced across tasks: each row draws a task uniformly, then a uniform slot of that task.

    Tasks are the storage's per-slot ``task`` indices (>= 0; slots without a task, -1, are never
    drawn). With ``only`` the draw is restricted to those task indices (per-task sampling, e.g.
    ``ReplayBuffer.task_sampler("reach-left")``). A task with 10x fewer transitions is still drawn
    for half the rows of a two-task batch, unlike uniform sampling over transitions.

    Returns ``slots`` (B,) int64 and ``task`` (B,) int32 (the task index of each row).
    """

    name = "task"

    def __init__(self, only: tuple[int, ...] | list[int] | None = None):
        self.only = None if only is None else tuple(int(t) for t in only)
        self._groups: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None

    def on_write(self, slots: np.ndarray) -> None:
        """New slots change the per-task groups: rebuild them at the next sample."""
        self._groups = None

    def _task_groups(self, storage: RingStorage) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(slots sorted by task, task ids, start of each task's run, its length) over live slots."""
        if self._groups is None:
            tasks = storage.dense("task")[:storage.size]
            order = np.argsort(tasks, kind="stable")
            ids, starts, counts = np.unique(tasks[order], return_index=True, return_counts=True)
            keep = ids >= 0 if self.only is None else np.isin(ids, self.only)
            self._groups = (order.astype(np.int64), ids[keep], starts[keep], counts[keep])
        return self._groups

    def sample(self, storage: RingStorage, batch_size: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
        order, ids, starts, counts = self._task_groups(storage)
        if len(ids) == 0:
            wanted = "any task" if self.only is None else f"task indices {list(self.only)}"
            raise ValueError(f"task sampler: no stored transition has {wanted}")
        pick = rng.integers(0, len(ids), size=batch_size)
        within = (rng.random(batch_size) * counts[pick]).astype(np.int64)
        return {"slots": order[starts[pick] + within], "task": ids[pick].astype(np.int32)}

    def state(self) -> dict[str, np.ndarray]:
        return {}

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        """No state (groups are rebuilt from the storage)."""
