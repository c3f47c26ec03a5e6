"""The replay buffer: ring storage x sampler x view.

:class:`ReplayBuffer` stores transitions in a preallocated
:class:`~robokit.data.storage.RingStorage` with fields

====================  =============================  ==============================
field                 per slot                        notes
====================  =============================  ==============================
``obs``, ``next_obs``  ``obs_shape`` (any dtype)      ``(None, C)`` = ragged point cloud;
                                                      a dict of shapes = dict observation
``action``            ``(A,)`` float32
``reward``            ``()`` float32
``terminated``        ``()`` float32 0/1              true end: bootstrap mask = 1 - terminated
``truncated``         ``()`` float32 0/1              time limit / reset
``episode``, ``step``  ``()`` int64 / int32           episode id and step within it (for views)
``next``              ``()`` int64                    slot of the episode's next step (-1: none yet)
``task``              ``()`` int32                    index into ``buffer.tasks`` (-1: no task)
``mc_return``         ``()`` float32                  only with ``store_mc_return``
====================  =============================  ==============================

All float32 fields share one packed ``(capacity, width)`` slab (see
:class:`~robokit.data.storage.PackedColumns`), so a uniform batch is one row
gather. A sampler (uniform by default) picks slots and a view (transition by default)
turns them into a batch. Saving writes one ``.npz`` file atomically, including
the sampler's RNG state, so a loaded buffer gives exactly the batch the original
would have given next.

Multi-task data: an episode's task (``Episode.task``, or ``add(..., task=...)``) is kept per
slot as an index into ``buffer.tasks``; :class:`~robokit.data.samplers.TaskSampler` draws
balanced across tasks or from chosen tasks only (``buffer.task_sampler("reach-left")``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from robokit.data.batch import nest_obs
from robokit.data.episode import Episode
from robokit.data.errors import DataError, ReplayNotReady, check_batch_size, check_finite
from robokit.data.persist import load_replay, save_replay
from robokit.data.replay_types import (
    BOOKKEEPING,
    OBS_FIELDS,
    Stream,
    dtype_to_json,
    make_sampler,
    shape_to_json,
    stack_rows,
)
from robokit.data.returns import discounted_returns
from robokit.data.samplers import (
    EpisodeWindowSampler,
    IndexStream,
    PrioritizedSampler,
    TaskSampler,
    UniformSampler,
)
from robokit.data.storage import FieldSpec, RaggedField, RingStorage
from robokit.data.views import TransitionView


class ReplayBuffer:
    """Preallocated replay of transitions, sampled by a sampler through a view.

    Args:
        capacity: maximum number of transitions (oldest overwritten first).
        obs_shape: per-step observation shape, e.g. ``(17,)`` or ``(84, 84, 3)``;
            ``(None, C)`` for ragged point clouds; a dict of shapes for dict observations.
        action_dim: A.
        seed: seeds the buffer's own ``np.random.Generator``.
        discount: gamma, used for ``mc_return`` and the n-step view.
        store_mc_return: compute the discounted Monte-Carlo return-to-go of each
            episode (Cal-QL). Transitions added one at a time are then held back
            until their episode ends, because the return needs the whole episode.
        sparse_reward_failure_value: Cal-QL's failure reward: an episode whose
            rewards all equal it gets ``value / (1 - discount)`` at every step.
        obs_dtype: observation dtype (float32; uint8 for images), or a dict for dict obs.
        sampler: ``"uniform"``, ``"prioritized"``, ``"episode-window"`` or a sampler object.
        points_capacity: initial point pool size for ragged observations (grows as needed).
    """

    def __init__(self, capacity: int, obs_shape: Any, action_dim: int, seed: int = 0, discount: float = 0.99,
                 store_mc_return: bool = False, sparse_reward_failure_value: float | None = None,
                 obs_dtype: Any = np.float32, sampler: Any = "uniform", points_capacity: int | None = None):
        self.obs_shape = _normalise_obs_shape(obs_shape)
        self.obs_dtype = _normalise_obs_dtype(obs_dtype, self.obs_shape)
        self.action_dim = int(action_dim)
        self.discount = float(discount)
        self.store_mc_return = bool(store_mc_return)
        self.sparse_reward_failure_value = sparse_reward_failure_value
        self.seed = int(seed)
        self.rng = np.random.default_rng(seed)
        self.indices = IndexStream(self.rng)  # bulk uniform draws for the fast path
        self.storage = RingStorage(capacity, self._specs(), points_capacity)
        self.sampler = make_sampler(sampler, capacity) if isinstance(sampler, str) else sampler
        if isinstance(self.sampler, PrioritizedSampler) and self.sampler.tree.capacity != capacity:
            raise ValueError(f"PrioritizedSampler capacity {self.sampler.tree.capacity} != buffer capacity {capacity}")
        self.next_episode_id = 0
        self.total_added = 0  # transitions ever added (not capped by capacity)
        self.tasks: list[str] = []  # task names; slot field ``task`` holds indices into this list
        self._task_of = self.storage.dense("task")
        self._task_of[:] = -1
        self._streams: dict[int, Stream] = {}  # add() sources with an unfinished episode
        self._uniform = isinstance(self.sampler, UniformSampler)
        self._nested = isinstance(self.obs_shape, dict)
        self._episode_of = self.storage.dense("episode")
        self._step_of = self.storage.dense("step")
        self._next_of = self.storage.dense("next")
        # transition fields outside the packed float32 slab (uint8 images, ragged clouds)
        self._unpacked = [(name, field) for name, field in self.storage.fields.items()
                          if name not in self.storage.packed.columns and name not in BOOKKEEPING]

    # ------------------------------------------------------------------ layout
    def _specs(self) -> dict[str, FieldSpec]:
        specs = {}
        for prefix in OBS_FIELDS:
            if isinstance(self.obs_shape, dict):
                for key, shape in self.obs_shape.items():
                    specs[f"{prefix}/{key}"] = FieldSpec(shape, np.dtype(self.obs_dtype[key]))
            else:
                specs[prefix] = FieldSpec(self.obs_shape, np.dtype(self.obs_dtype))
        # flags are stored as float32 0/1 so they pack with the other float fields (one gather per row)
        specs.update(action=FieldSpec((self.action_dim,), np.dtype(np.float32)),
                     reward=FieldSpec((), np.dtype(np.float32)),
                     terminated=FieldSpec((), np.dtype(np.float32)),
                     truncated=FieldSpec((), np.dtype(np.float32)),
                     episode=FieldSpec((), np.dtype(np.int64)),
                     step=FieldSpec((), np.dtype(np.int32)),
                     next=FieldSpec((), np.dtype(np.int64)),
                     task=FieldSpec((), np.dtype(np.int32)))
        if self.store_mc_return:
            specs["mc_return"] = FieldSpec((), np.dtype(np.float32))
        return specs

    @property
    def capacity(self) -> int:
        return self.storage.capacity

    @property
    def ragged(self) -> bool:
        return not isinstance(self.obs_shape, dict) and len(self.obs_shape) > 0 and self.obs_shape[0] is None

    @property
    def ragged_fields(self) -> frozenset[str]:
        """Names of stored fields holding point clouds (``obs``, or ``obs/<key>`` of a dict part)."""
        return frozenset(name for name, spec in self.storage.specs.items() if spec.ragged)

    @property
    def read_only(self) -> bool:
        return self.storage.frozen

    def __len__(self) -> int:
        return self.storage.size

    def __repr__(self) -> str:
        return (f"ReplayBuffer({len(self)}/{self.capacity} transitions, obs {self.obs_shape}, "
                f"action_dim {self.action_dim}, sampler {self.sampler.name})")

    # ----------------------------------------------------------------- writing
    def add(self, obs: Any, action: Any, reward: float, next_obs: Any, terminated: bool, truncated: bool,
            stream: int = 0, task: str | None = None) -> None:
        """Append one transition; an episode ends when ``terminated`` or ``truncated`` is true.

        Shapes: obs/next_obs ``obs_shape``, action ``(A,)``. ``stream`` names the source (one
        per environment of a vectorised env): transitions of different streams may interleave,
        and each stream's steps are linked into their own episode. ``task`` names the task.
        """
        self._check_writable()
        action = np.asarray(action, np.float32).reshape(-1)
        if action.shape != (self.action_dim,):
            raise DataError(f"add: action shape {action.shape}, expected ({self.action_dim},)")
        check_finite(action, "action", "add")
        check_finite(np.float32(reward).reshape(1), "reward", "add")
        obs_fields = self._obs_row(obs, next_obs)
        source = self._streams.get(stream)
        if source is None:
            source = self._streams[stream] = Stream(episode=self.next_episode_id)
            self.next_episode_id += 1
        row = {"action": action, "reward": np.float32(reward), "terminated": bool(terminated),
               "truncated": bool(truncated), "episode": source.episode, "step": source.step, "next": -1,
               "task": self.task_id(task), **obs_fields}
        source.step += 1
        episode_over = bool(terminated) or bool(truncated)
        if self.store_mc_return:
            source.pending.append(row)
            if episode_over:
                block = stack_rows(source.pending, self.ragged_fields)
                block["mc_return"] = self._returns(block["reward"], block["terminated"])
                source.pending = []
                self._write(block)
        else:
            slot = self.storage.write_row(row)
            self._link(source, slot)
            self.sampler.on_write(np.array([slot]))
            self.total_added += 1
        if episode_over:
            del self._streams[stream]

    def _check_writable(self) -> None:
        if self.storage.frozen:
            raise PermissionError("this buffer is read-only (offline data); add to the online buffer instead")

    def _link(self, source: Stream, slot: int) -> None:
        """Point the stream's previous step at ``slot``, unless that step was overwritten since."""
        previous = source.last_slot
        if previous >= 0 and self._episode_of[previous] == source.episode and \
                self._step_of[previous] == source.step - 2:
            self._next_of[previous] = slot
        source.last_slot = slot

    def task_id(self, task: str | None) -> int:
        """The index of ``task`` in ``self.tasks`` (added when new); -1 for None."""
        if task is None:
            return -1
        task = str(task)
        if task not in self.tasks:
            self.tasks.append(task)
        return self.tasks.index(task)

    def task_sampler(self, *tasks: str) -> TaskSampler:
        """A sampler drawing only from ``tasks`` (balanced across them), for ``sample(sampler=...)``.

        Raises:
            KeyError: naming a task the buffer does not hold.
        """
        missing = [t for t in tasks if t not in self.tasks]
        if missing:
            raise KeyError(f"task(s) {missing} not in this buffer (tasks: {self.tasks})")
        return TaskSampler(only=tuple(self.tasks.index(t) for t in tasks))

    @property
    def unfinished_streams(self) -> list[int]:
        """Streams whose current episode has started but not ended."""
        return sorted(self._streams)

    def pending_rows(self, stream: int | None = None) -> list[dict]:
        """add() transitions held back until their episode ends (``store_mc_return``): of one
        stream, or of all streams in stream order."""
        if stream is not None:
            return list(self._streams[stream].pending) if stream in self._streams else []
        return [row for key in sorted(self._streams) for row in self._streams[key].pending]

    def _obs_row(self, obs: Any, next_obs: Any) -> dict:
        """Observation fields of one add(), checked now (a held-back episode must not fail later)."""
        row = {}
        for prefix, value in zip(OBS_FIELDS, (obs, next_obs), strict=True):
            if isinstance(self.obs_shape, dict):
                if not isinstance(value, dict) or set(value) != set(self.obs_shape):
                    raise DataError(f"add: {prefix} keys {sorted(value) if isinstance(value, dict) else None}, "
                                    f"expected {sorted(self.obs_shape)}")
                for key, shape in self.obs_shape.items():
                    check = _checked_cloud if shape and shape[0] is None else _checked_obs
                    row[f"{prefix}/{key}"] = check(value[key], shape, self.obs_dtype[key], f"{prefix}/{key}")
            elif self.ragged:
                row[prefix] = _checked_cloud(value, self.obs_shape, np.float32, prefix)
            else:
                row[prefix] = _checked_obs(value, self.obs_shape, self.obs_dtype, prefix)
        return row

    def add_episode(self, episode: Episode) -> None:
        """Append a whole :class:`Episode` (mc_return computed over it when stored). It may be
        added while add() episodes are unfinished: it gets its own episode id."""
        self._check_writable()
        steps = len(episode)
        if steps == 0:
            return
        if episode.action_dim != self.action_dim:
            raise DataError(f"add_episode: action dim {episode.action_dim}, buffer expects {self.action_dim}")
        block = self._episode_obs(episode)
        block.update(action=episode.actions, reward=episode.rewards, terminated=episode.terminated,
                     truncated=episode.truncated, episode=np.full(steps, self.next_episode_id, np.int64),
                     step=np.arange(steps, dtype=np.int32), next=np.full(steps, -1, np.int64),
                     task=np.full(steps, self.task_id(episode.task), np.int32))
        if self.store_mc_return:
            block["mc_return"] = self._returns(episode.rewards, episode.terminated)
        self._write(block)
        self.next_episode_id += 1

    def _episode_obs(self, episode: Episode) -> dict:
        obs = episode.observations
        if isinstance(self.obs_shape, dict):
            if not isinstance(obs, dict) or set(obs) != set(self.obs_shape):
                raise DataError(f"add_episode: observation keys {sorted(obs) if isinstance(obs, dict) else None}, "
                                f"buffer expects {sorted(self.obs_shape)}")
            block = {}
            for key, values in obs.items():
                block[f"obs/{key}"], block[f"next_obs/{key}"] = values[:-1], values[1:]
            return block
        if self.ragged != isinstance(obs, list):
            raise DataError("add_episode: ragged point-cloud observations need a buffer with obs_shape (None, C)")
        steps = obs if isinstance(obs, list) else np.asarray(obs)
        return {"obs": steps[:-1], "next_obs": steps[1:]}

    def _returns(self, rewards: np.ndarray, terminated: np.ndarray) -> np.ndarray:
        return discounted_returns(rewards, terminated, self.discount, self.sparse_reward_failure_value)

    def _write(self, block: dict) -> None:
        """Write one episode's consecutive steps and link each to the next."""
        slots = self.storage.write(block)
        self._next_of[slots[:-1]] = slots[1:]
        self.sampler.on_write(slots)
        self.total_added += len(next(iter(block.values())))

    def freeze(self) -> ReplayBuffer:
        """Make the stored data read-only (offline data); returns self."""
        self.storage.freeze()
        return self

    # ---------------------------------------------------------------- sampling
    def sample(self, batch_size: int, view: Any = None, sampler: Any = None) -> dict[str, Any]:
        """A batch of ``batch_size`` from the sampler (or ``sampler``, e.g. a per-task one from
        :meth:`task_sampler`) through ``view`` (transition view by default).

        Transition-view keys: ``obs`` (B, *obs_shape), ``action`` (B, A), ``reward`` (B,),
        ``next_obs``, ``terminated`` (B,) float32, ``truncated`` (B,) float32, ``mc_return`` (B,)
        when stored; prioritized sampling adds ``weights`` (B,) and ``indices`` (B,). Ragged
        observations come as ``obs`` (sum N, C) with ``obs_offsets`` (B+1,).

        Raises:
            ValueError: ``batch_size`` is not a positive integer.
            ReplayNotReady: when the buffer is empty.
        """
        check_batch_size(batch_size)
        if self.storage.size == 0:
            raise ReplayNotReady("cannot sample from an empty replay buffer")
        if view is None and sampler is None and self._uniform:  # fast path: the common case in training loops
            return self.gather_transitions(self.indices.draw(batch_size, self.storage.size))
        picked = (sampler or self.sampler).sample(self.storage, batch_size, self.rng)
        return (view or TransitionView())(self, picked)

    def gather_transitions(self, slots: np.ndarray) -> dict[str, Any]:
        """Transition-view batch for explicit ``slots`` (B,).

        Float32 fields come from one packed row gather, as views of one ``(B, width)``
        array (not contiguous; ``np.ascontiguousarray`` if a consumer needs that).
        """
        storage = self.storage
        batch: dict[str, Any] = storage.gather_packed(slots) if storage.packed.columns else {}
        for name, field in self._unpacked:
            if isinstance(field, RaggedField):
                batch[name], batch[f"{name}_offsets"] = field.gather(slots)
            else:
                batch[name] = field.take(slots, axis=0)
        return nest_obs(batch) if self._nested else batch

    def update_priorities(self, indices: np.ndarray, priorities: np.ndarray) -> None:
        """Forward new priorities to a prioritized sampler (``indices`` from ``batch['indices']``)."""
        if not isinstance(self.sampler, PrioritizedSampler):
            raise TypeError(f"update_priorities needs the prioritized sampler, this buffer uses {self.sampler.name}")
        self.sampler.update_priorities(indices, priorities)

    # ----------------------------------------------------------------- saving
    def save(self, path: str | os.PathLike) -> Path:
        """Write the buffer (data, counters, sampler state, RNG state) to ``path`` atomically."""
        return save_replay(self, Path(path))

    @classmethod
    def load(cls, path: str | os.PathLike) -> ReplayBuffer:
        """Load a buffer written by :meth:`save`; its next batch equals the original's."""
        return load_replay(cls, Path(path))

    def config(self) -> dict[str, Any]:
        """Constructor arguments as plain data (saved with the buffer)."""
        sampler: dict[str, Any] = {"name": self.sampler.name}
        if isinstance(self.sampler, PrioritizedSampler):
            sampler.update(alpha=self.sampler.alpha, beta=self.sampler.beta, eps=self.sampler.eps)
        if isinstance(self.sampler, EpisodeWindowSampler):
            sampler.update(length=self.sampler.length)
        if isinstance(self.sampler, TaskSampler) and self.sampler.only is not None:
            sampler.update(only=list(self.sampler.only))
        return {"capacity": self.capacity, "obs_shape": shape_to_json(self.obs_shape),
                "obs_dtype": dtype_to_json(self.obs_dtype), "action_dim": self.action_dim, "seed": self.seed,
                "discount": self.discount, "store_mc_return": self.store_mc_return,
                "sparse_reward_failure_value": self.sparse_reward_failure_value, "sampler": sampler}


def _checked_cloud(value: Any, shape: tuple, dtype: np.dtype, key: str) -> np.ndarray:
    """A ragged point cloud ``(N, C)`` for a field of shape ``(None, C)`` (any N, finite)."""
    cloud = np.asarray(value, dtype)
    if cloud.ndim != 2 or cloud.shape[1] != shape[1]:
        raise DataError(f"add: {key} point cloud shape {cloud.shape}, expected (N, {shape[1]})")
    check_finite(cloud, key, "add")
    return cloud


def _checked_obs(value: Any, shape: tuple, dtype: np.dtype, key: str) -> np.ndarray:
    array = np.asarray(value)
    if array.shape != tuple(shape):
        raise DataError(f"add: {key} shape {array.shape}, expected {tuple(shape)}")
    check_finite(array, key, "add")
    return array.astype(dtype, copy=False)


def _normalise_obs_shape(obs_shape: Any, key: str = "obs_shape") -> Any:
    if isinstance(obs_shape, dict):
        return {str(k): _normalise_obs_shape(v, f"obs_shape['{k}']") for k, v in obs_shape.items()}
    if isinstance(obs_shape, int):
        return (obs_shape,)
    shape = tuple(obs_shape)
    if shape and shape[0] is None and len(shape) != 2:
        raise ValueError(f"ragged point-cloud observations need {key} (None, C), got {shape}")
    return shape


def _normalise_obs_dtype(obs_dtype: Any, obs_shape: Any) -> Any:
    if isinstance(obs_shape, dict):
        if isinstance(obs_dtype, dict):
            return {k: np.dtype(obs_dtype.get(k, np.float32)) for k in obs_shape}
        return {k: np.dtype(obs_dtype) for k in obs_shape}
    return np.dtype(obs_dtype)
