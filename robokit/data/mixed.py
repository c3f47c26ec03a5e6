"""Offline/online mixing for offline-to-online RL (RLPD, Cal-QL, WSRL, ...).

:class:`MixedReplay` reads from a read-only offline buffer and a ring online
buffer and adds ``is_offline`` (B,) bool to every batch.

Modes:

- ``"mixed"``: every batch has exactly ``n_off = floor(f * B + 0.5)`` offline rows
  (round half up) followed by ``B - n_off`` online rows, where ``f`` is the
  offline fraction (a constant, or a schedule of the number of online
  transitions added so far, e.g. :class:`LinearSchedule` for annealing). RLPD
  uses f = 0.5. For an update-to-data ratio k > 1, ``sample(k * b, minibatch_size=b)``
  returns k such batches of ``b`` rows one after the other, so each contiguous
  minibatch (one critic step) holds exactly ``n_off(b)`` offline rows (RLPD's code
  interleaves its offline and online halves for the same reason).
- ``"append"``: offline and online data are one pool and rows are drawn
  uniformly from it (Cal-QL's and WSRL's "append online data to the dataset"
  style); the number of offline rows then follows the pool sizes and
  ``offline_fraction`` is not used.

Warm-up gating: until the online buffer has received ``warmup_steps``
transitions, :meth:`MixedReplay.sample` raises :class:`ReplayNotReady`
(check :attr:`MixedReplay.ready` first). The offline buffer is frozen (its arrays
become ``writeable=False``) and the online ring lives in separate memory, so
online writes can never overwrite offline data.

Both buffers are sampled uniformly with the mixer's own generator, so the mixer
alone decides the batch and its seed makes it reproducible.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from robokit.data.batch import concat_batches
from robokit.data.errors import ReplayNotReady, check_batch_size
from robokit.data.replay import ReplayBuffer
from robokit.data.samplers import IndexStream


@dataclass(frozen=True)
class LinearSchedule:
    """``start`` at step 0, linear to ``end`` at ``steps``, constant afterwards."""

    start: float
    end: float
    steps: int

    def __call__(self, step: int) -> float:
        # the end points exactly: start + (end - start) * 1.0 can miss ``end`` by one ulp, which
        # moves the offline row count of a batch when f * B lands on .5 (f = 0.975, B = 100)
        if self.steps <= 0 or step >= self.steps:
            return float(self.end)
        if step <= 0:
            return float(self.start)
        return float(self.start + (self.end - self.start) * (step / self.steps))


def offline_rows(fraction: float, batch_size: int) -> int:
    """Exact number of offline rows in a mixed batch: ``floor(f * B + 0.5)``."""
    return int(np.floor(fraction * batch_size + 0.5))


class MixedReplay:
    """Samples batches mixing a read-only offline buffer with an online buffer.

    Args:
        offline: buffer of offline data (frozen here: made read-only).
        online: ring buffer that receives new transitions (:meth:`add`).
        offline_fraction: f in [0, 1], or a callable ``f(online_steps)`` (see
            :class:`LinearSchedule`); used in ``"mixed"`` mode.
        mode: ``"mixed"`` or ``"append"`` (see the module docstring).
        warmup_steps: online transitions required before sampling is allowed.
        seed: seeds the mixer's generator.
    """

    def __init__(self, offline: ReplayBuffer, online: ReplayBuffer,
                 offline_fraction: float | Callable[[int], float] = 0.5, mode: str = "mixed",
                 warmup_steps: int = 0, seed: int = 0):
        if mode not in ("mixed", "append"):
            raise ValueError(f"mode must be 'mixed' or 'append', got {mode!r}")
        if set(offline.storage.specs) != set(online.storage.specs):
            raise ValueError(f"offline and online buffers store different fields: "
                             f"{sorted(offline.storage.specs)} vs {sorted(online.storage.specs)}")
        self.offline = offline.freeze()
        self.online = online
        self.offline_fraction = offline_fraction
        self.mode = mode
        self.warmup_steps = int(warmup_steps)
        self.rng = np.random.default_rng(seed)
        self.indices = IndexStream(self.rng)

    @property
    def online_steps(self) -> int:
        """Transitions ever added to the online buffer (drives schedules and warm-up)."""
        return self.online.total_added

    @property
    def ready(self) -> bool:
        """True once warm-up is over (and there is data to sample)."""
        return self.online_steps >= self.warmup_steps and len(self) > 0

    def fraction(self) -> float:
        """The offline fraction now (a schedule is evaluated at :attr:`online_steps`)."""
        f = self.offline_fraction
        value = float(f(self.online_steps)) if callable(f) else float(f)
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"offline fraction {value} is outside [0, 1]")
        return value

    def __len__(self) -> int:
        return len(self.offline) + len(self.online)

    def add(self, *args: Any, **kwargs: Any) -> None:
        """Add one transition to the online buffer (same arguments as :meth:`ReplayBuffer.add`)."""
        self.online.add(*args, **kwargs)

    def add_episode(self, episode: Any) -> None:
        """Add a whole episode to the online buffer."""
        self.online.add_episode(episode)

    def sample(self, batch_size: int, minibatch_size: int | None = None) -> dict[str, Any]:
        """A batch with the transition keys plus ``is_offline`` (B,) bool.

        With ``minibatch_size`` b (B a multiple of b), the batch is B / b independently
        mixed minibatches of b rows one after the other (offline rows first within each), so
        splitting it into contiguous chunks of b gives every chunk the exact offline share;
        without it, one mixed batch of B rows (offline rows first).

        Raises:
            ValueError: ``batch_size`` is not a positive integer.
            ReplayNotReady: during warm-up, or when a part the batch needs is empty.
            ValueError: B is not a multiple of b.
        """
        check_batch_size(batch_size)
        if minibatch_size is None or minibatch_size >= batch_size:
            return self._sample_mixed(batch_size)
        if minibatch_size <= 0 or batch_size % minibatch_size:
            raise ValueError(f"batch size {batch_size} is not a multiple of the minibatch size {minibatch_size}")
        return concat_batches([self._sample_mixed(minibatch_size) for _ in range(batch_size // minibatch_size)])

    def _sample_mixed(self, batch_size: int) -> dict[str, Any]:
        """One mixed batch of ``batch_size`` rows, offline rows first."""
        if self.online_steps < self.warmup_steps:
            raise ReplayNotReady(f"warm-up: {self.online_steps}/{self.warmup_steps} online steps collected")
        n_offline = self._offline_rows(batch_size)
        n_online = batch_size - n_offline
        for name, buffer, rows in (("offline", self.offline, n_offline), ("online", self.online, n_online)):
            if rows and len(buffer) == 0:
                raise ReplayNotReady(f"the {name} buffer is empty but the batch needs {rows} {name} rows")
        parts = []
        if n_offline:
            parts.append(self.offline.gather_transitions(self.indices.draw(n_offline, len(self.offline))))
        if n_online:
            parts.append(self.online.gather_transitions(self.indices.draw(n_online, len(self.online))))
        batch = concat_batches(parts)
        batch["is_offline"] = np.arange(batch_size) < n_offline
        return batch

    def _offline_rows(self, batch_size: int) -> int:
        if self.mode == "mixed":
            return offline_rows(self.fraction(), batch_size)
        pool = len(self)
        if pool == 0:
            raise ReplayNotReady("both buffers are empty")
        draws = self.indices.draw(batch_size, pool)
        return int(np.count_nonzero(draws < len(self.offline)))

    def rng_state(self) -> dict:
        """The mixer's generator state and unused bulk draws (save it beside both buffers to
        resume exactly)."""
        return {"bit_generator": self.rng.bit_generator.state, "pending": self.indices.remaining()}

    def set_rng_state(self, state: dict) -> None:
        self.rng.bit_generator.state = state["bit_generator"]
        self.indices.restore(state["pending"])
