"""Demonstrations for pretraining and fine-tuning, held in robokit's replay.

:class:`Demos` wraps a :class:`~robokit.data.replay.ReplayBuffer` of expert episodes whose
observation is a uint8 image ``(H, W, C)``, or a dict with an ``"image"`` (or ``"pixels"``)
part and optionally the privileged ``"state"`` vector (for the state-based BC reference).
Each episode's ``task`` is its context. :class:`PairSampler` draws (o_t, a_t, o_{t+k})
triples through robokit's :class:`~robokit.data.views.StatePairView` (k = 0: o_t twice, for
SimCLR). Frames stay uint8 until the encoder.

Bad input raises ``ValueError`` naming the file (or episode) and the key: a missing file,
observations that are not uint8 images, demos without actions, mismatched frame sizes.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from robokit.data.episode import Episode
from robokit.data.replay import ReplayBuffer
from robokit.data.views import StatePairView
from robokit.pretrain.objectives import PairBatch

IMAGE_KEYS = ("image", "pixels")
STATE_KEY = "state"


@dataclasses.dataclass
class Demos:
    """Expert episodes in a replay buffer; ``image_key`` is None for plain image observations."""

    buffer: ReplayBuffer
    image_key: str | None
    source: str

    @property
    def frame(self) -> tuple[int, int, int]:
        """(H, W, C) of the frames."""
        shape = self.buffer.obs_shape[self.image_key] if self.image_key else self.buffer.obs_shape
        return tuple(int(v) for v in shape)  # type: ignore[return-value]

    @property
    def action_dim(self) -> int:
        return self.buffer.action_dim

    @property
    def has_state(self) -> bool:
        return isinstance(self.buffer.obs_shape, dict) and STATE_KEY in self.buffer.obs_shape

    @property
    def num_tasks(self) -> int:
        return max(1, len(self.buffer.tasks))

    def __len__(self) -> int:
        return len(self.buffer)

    def image(self, obs: Any) -> np.ndarray:
        """The frames of an observation batch (the image part of a dict)."""
        return obs[self.image_key] if self.image_key else obs

    def steps(self) -> dict[str, np.ndarray]:
        """Every stored step: ``image`` (N, H, W, C) uint8, ``action`` (N, A), ``task`` (N,) int64 and
        ``state`` (N, S) float32 when stored."""
        batch = self.buffer.gather_transitions(np.arange(len(self.buffer)))
        out = {"image": self.image(batch["obs"]), "action": np.ascontiguousarray(batch["action"]),
               "task": self.buffer.storage.fields["task"][: len(self.buffer)].astype(np.int64)}
        if self.has_state:
            out["state"] = np.asarray(batch["obs"][STATE_KEY], np.float32)
        return out

    def require_state(self) -> None:
        if not self.has_state:
            raise ValueError(f"{self.source}: observations have no '{STATE_KEY}' part; the state-based BC "
                             "reference needs the privileged state")


def _image_key(obs_shape: Any, dtype: Any, source: str) -> str | None:
    """Where the image is in an observation of this shape, checking it is uint8 (H, W, C)."""
    if isinstance(obs_shape, dict):
        key = next((k for k in IMAGE_KEYS if k in obs_shape), None)
        if key is None:
            raise ValueError(f"{source}: observation keys {sorted(obs_shape)} have no image "
                             f"(expected one of {list(IMAGE_KEYS)})")
        shape, dtype = obs_shape[key], dtype[key]
    else:
        key, shape = None, obs_shape
    if len(shape) != 3 or np.dtype(dtype) != np.uint8:
        where = f"key '{key}'" if key else "obs"
        raise ValueError(f"{source}: {where} must be uint8 frames (H, W, C), got {np.dtype(dtype)} {tuple(shape)}")
    return key


def _demos(buffer: ReplayBuffer, source: str) -> Demos:
    key = _image_key(buffer.obs_shape, buffer.obs_dtype, source)
    if buffer.action_dim < 1:
        raise ValueError(f"{source}: demos without actions (action dim 0); pretraining and BC need a_t")
    if len(buffer) == 0:
        raise ValueError(f"{source}: no transitions")
    return Demos(buffer=buffer, image_key=key, source=source)


def load_demos(path: str | os.PathLike) -> Demos:
    """Demos from a robokit replay file (``ReplayBuffer.save``).

    Raises:
        FileNotFoundError / ValueError: one line naming the file and what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--data {path}: no such file")
    return _demos(ReplayBuffer.load(path), str(path))


def _episode_frames(episode: Episode, index: int) -> tuple[Any, np.ndarray | None]:
    obs = episode.observations
    if isinstance(obs, dict):
        key = next((k for k in IMAGE_KEYS if k in obs), None)
        if key is None:
            raise ValueError(f"episode {index}: observation keys {sorted(obs)} have no image")
        return obs[key], obs.get(STATE_KEY)
    return obs, None


def demos_from_episodes(episodes: Sequence[Episode], source: str = "episodes", seed: int = 0) -> Demos:
    """Demos from in-memory episodes (uint8 image observations, or dicts with ``image`` and ``state``).

    Raises:
        ValueError: naming the episode: no actions, non-image frames, or frame sizes that differ.
    """
    if not episodes:
        raise ValueError(f"{source}: no episodes")
    frames, states = [], []
    for index, episode in enumerate(episodes):
        if episode.actions is None or episode.actions.size == 0 or episode.action_dim < 1:
            raise ValueError(f"{source}: episode {index} has no actions; pretraining and BC need a_t")
        image, state = _episode_frames(episode, index)
        image = np.asarray(image)
        if image.dtype != np.uint8 or image.ndim != 4:
            raise ValueError(f"{source}: episode {index}: frames must be uint8 (T+1, H, W, C), "
                             f"got {image.dtype} {image.shape}")
        if frames and image.shape[1:] != frames[0].shape[1:]:
            raise ValueError(f"{source}: episode {index} has {image.shape[1]}x{image.shape[2]}x{image.shape[3]} "
                             f"frames, episode 0 has {'x'.join(map(str, frames[0].shape[1:]))}")
        if episode.action_dim != episodes[0].action_dim:
            raise ValueError(f"{source}: episode {index} has action dim {episode.action_dim}, "
                             f"episode 0 has {episodes[0].action_dim}")
        frames.append(image)
        states.append(state)
    with_state = all(s is not None for s in states)
    frame = frames[0].shape[1:]
    obs_shape: Any = {"image": frame, STATE_KEY: np.asarray(states[0]).shape[1:]} if with_state else frame
    obs_dtype: Any = {"image": np.uint8, STATE_KEY: np.float32} if with_state else np.uint8
    total = sum(len(e) for e in episodes)
    buffer = ReplayBuffer(total, obs_shape, episodes[0].action_dim, seed=seed, obs_dtype=obs_dtype)
    for episode, image, state in zip(episodes, frames, states, strict=True):
        obs = {"image": image, STATE_KEY: np.asarray(state, np.float32)} if with_state else image
        buffer.add_episode(Episode(obs, episode.actions, episode.rewards, episode.terminated, episode.truncated,
                                   task=episode.task))
    return _demos(buffer.freeze(), source)


def check_frame(demos: Demos, frame: Sequence[int], what: str) -> None:
    """Refuse demos whose frames differ from ``frame`` (H, W, C) (e.g. the pretrained encoder's)."""
    if tuple(demos.frame) != tuple(int(v) for v in frame):
        have = "x".join(map(str, demos.frame))
        want = "x".join(str(int(v)) for v in frame)
        raise ValueError(f"{demos.source}: frames are {have} but {what} expects {want}")


class PairSampler:
    """(o_t, a_t, o_{t+k}) batches from :class:`Demos` through :class:`StatePairView`.

    ``k = 0`` gives o_t as both views (SimCLR: the augmentations make the two views differ);
    with ``random_k`` each row's k is uniform in [1, k]. Near an episode's end the view uses
    its last observation (see :class:`StatePairView`). Randomness: the buffer's generator.
    """

    def __init__(self, demos: Demos, k: int = 1, random_k: bool = False) -> None:
        if k < 0:
            raise ValueError(f"--nstep must be >= 0, got {k}")
        self.demos = demos
        self.k = int(k)
        self.view = StatePairView(k, random_k) if k > 0 else None

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        """``obs``, ``future_obs`` (B, H, W, C) uint8, ``action`` (B, A) float32, ``task`` (B,) int64."""
        buffer = self.demos.buffer
        picked = buffer.sampler.sample(buffer.storage, batch_size, buffer.rng)
        slots = picked["slots"]
        task = buffer.storage.fields["task"][slots].astype(np.int64)
        if self.view is None:
            batch = buffer.gather_transitions(slots)
            image = self.demos.image(batch["obs"])
            return {"obs": image, "future_obs": image, "action": batch["action"], "task": task}
        batch = self.view(buffer, picked)
        return {"obs": self.demos.image(batch["obs"]), "future_obs": self.demos.image(batch["future_obs"]),
                "action": batch["action"], "task": task}

    def rng_state(self) -> dict:
        return self.demos.buffer.rng.bit_generator.state

    def set_rng_state(self, state: dict) -> None:
        self.demos.buffer.rng.bit_generator.state = state


def to_torch(batch: dict[str, np.ndarray], device: torch.device | str = "cpu") -> PairBatch:
    """numpy batch -> :class:`PairBatch` (frames stay uint8)."""
    return PairBatch(obs=torch.from_numpy(np.ascontiguousarray(batch["obs"])).to(device),
                     future_obs=torch.from_numpy(np.ascontiguousarray(batch["future_obs"])).to(device),
                     action=torch.from_numpy(np.ascontiguousarray(batch["action"], np.float32)).to(device),
                     task=torch.from_numpy(np.asarray(batch["task"], np.int64)).to(device))
