"""Observation specs: what an env or a dataset yields, as plain data that checkpoints keep.

=====================  ==========================================  ===============================
spec                   one observation                             batched for an agent
=====================  ==========================================  ===============================
:class:`VectorSpec`    ``(O,)`` float                              ``(B, O)`` float32 tensor
:class:`ImageSpec`     ``(H, W, C)`` uint8, or ``(K, H, W, C)``    ``(B, [K,] H, W, C)`` uint8
                       with K stacked frames (gymnasium's          tensor (float only inside the
                       ``FrameStackObservation`` layout)           encoder)
:class:`PointCloudSpec` ``(N_t, C)`` float32, xyz first, N_t       :class:`~robokit.nets.obs_batch.PointBatch`
                       varying from step to step (N_t >= 1)        (flat points + offsets)
:class:`TextSpec`      a string (an instruction), or its vector    ``(B, D)`` float32 (embedded)
:class:`DictSpec`      ``{name: part}``                            :class:`~robokit.nets.obs_batch.ObsDict`
=====================  ==========================================  ===============================

Build a spec from a gymnasium space (:func:`spec_from_space`: ``Box``, ``Sequence`` of
``Box`` points, ``Text``, ``Dict``), from a replay buffer or episodes (:func:`spec_from_replay`,
:func:`spec_from_episodes`) or from its plain dict (:func:`spec_from_dict`, the checkpoint
form). :meth:`as_batch` validates an observation and turns it into tensors; a bad one raises
:class:`~robokit.core.errors.ObservationError` naming the key (``obs['image']``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import torch

from robokit.core.errors import ObservationError
from robokit.nets.obs_batch import ObsDict, PointBatch
from robokit.nets.text import HASH_DIM, make_text_embedder

#: the trailing image channel counts recognised from a uint8 Box (grey, RGB, RGBA)
IMAGE_CHANNELS = (1, 3, 4)


def _finite(array: np.ndarray, key: str) -> None:
    if np.issubdtype(array.dtype, np.floating) and not np.isfinite(array).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(array))[0])
        raise ObservationError(f"{key}: non-finite value {array[bad]} at index {bad}")


def _numeric(value: Any, key: str) -> np.ndarray:
    array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    if array.dtype.kind not in "fiub":
        raise ObservationError(f"{key}: expected a numeric array, got {array.dtype} {type(value).__name__}")
    return array


@dataclasses.dataclass(frozen=True)
class VectorSpec:
    """A flat float vector ``(dim,)``."""

    dim: int
    kind: ClassVar[str] = "vector"

    @property
    def shape(self) -> tuple[int, ...]:
        return (self.dim,)

    def as_batch(self, value: Any, key: str = "obs") -> tuple[torch.Tensor, bool]:
        """(O,) or (B, O) -> ((B, O) float32 tensor, whether the input was batched)."""
        array = _numeric(value, key)
        if array.ndim not in (1, 2) or array.shape[-1] != self.dim:
            raise ObservationError(f"{key}: expected obs of shape ({self.dim},) or (B, {self.dim}), "
                                   f"got {array.shape}")
        array = np.asarray(array, np.float32)
        _finite(array, key)
        batched = array.ndim == 2
        return torch.from_numpy(np.ascontiguousarray(array if batched else array[None])), batched

    def layout(self) -> tuple[Any, Any]:
        """The replay's ``(obs_shape, obs_dtype)``."""
        return self.shape, np.float32

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "dim": self.dim}


@dataclasses.dataclass(frozen=True)
class ImageSpec:
    """A uint8 image ``(height, width, channels)``; with ``frame_stack`` K > 1, ``(K, H, W, C)``."""

    height: int
    width: int
    channels: int = 3
    frame_stack: int = 1
    kind: ClassVar[str] = "image"

    @property
    def shape(self) -> tuple[int, ...]:
        frame = (self.height, self.width, self.channels)
        return (self.frame_stack, *frame) if self.frame_stack > 1 else frame

    @property
    def in_channels(self) -> int:
        """Channels a convolution sees: stacked frames x colour channels."""
        return self.frame_stack * self.channels

    def as_batch(self, value: Any, key: str = "obs") -> tuple[torch.Tensor, bool]:
        """(*shape) or (B, *shape) -> ((B, *shape) uint8 tensor, batched). Float input must hold
        whole numbers in [0, 255] (pixels); anything else is refused, naming ``key``."""
        array = _numeric(value, key)
        rank = len(self.shape)
        if array.ndim not in (rank, rank + 1) or array.shape[-rank:] != self.shape:
            raise ObservationError(f"{key}: expected an image of shape {self.shape} or (B, *{self.shape}), "
                                   f"got {array.shape}")
        if array.dtype != np.uint8:
            _finite(array, key)
            low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
            if low < 0 or high > 255 or not np.array_equal(array, np.round(array)):
                raise ObservationError(f"{key}: images are uint8 pixels; got {array.dtype} values in [{low:g}, "
                                       f"{high:g}] (a float image must hold whole numbers in [0, 255]; "
                                       f"scale [0, 1] images by 255)")
            array = array.astype(np.uint8)
        batched = array.ndim == rank + 1
        return torch.from_numpy(np.ascontiguousarray(array if batched else array[None])), batched

    def layout(self) -> tuple[Any, Any]:
        return self.shape, np.uint8

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "height": self.height, "width": self.width, "channels": self.channels,
                "frame_stack": self.frame_stack}


@dataclasses.dataclass(frozen=True)
class PointCloudSpec:
    """A point cloud ``(N_t, channels)`` float32 (xyz first) whose size N_t varies per step."""

    channels: int = 3
    kind: ClassVar[str] = "pointcloud"

    def as_batch(self, value: Any, key: str = "obs") -> tuple[PointBatch, bool]:
        """One cloud (N, C) (or a tuple of N points (C,), gymnasium's unstacked ``Sequence``), a
        list of B clouds, or B equal-size clouds (B, N, C) (a vector env's ``Box`` observations)
        -> (:class:`PointBatch`, batched)."""
        if isinstance(value, list | tuple):
            if not value:
                raise ObservationError(f"{key}: empty point cloud (0 points); every step needs at least one")
            if all(np.ndim(point) == 1 for point in value):  # one cloud as a sequence of points
                value = np.stack([np.asarray(point) for point in value])
        batched = isinstance(value, list | tuple) or np.ndim(value) == 3
        clouds = list(value) if batched else [value]
        for index, cloud in enumerate(clouds):
            where = f"{key}[{index}]" if batched else key
            array = _numeric(cloud, where)
            if array.ndim != 2 or array.shape[1] != self.channels:
                raise ObservationError(f"{where}: expected a point cloud of shape (N, {self.channels}), "
                                       f"got {array.shape}")
            if len(array) == 0:
                raise ObservationError(f"{where}: empty point cloud (0 points); every step needs at least one")
            _finite(array, where)
        return PointBatch.from_clouds(clouds), batched

    def layout(self) -> tuple[Any, Any]:
        return (None, self.channels), np.float32

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "channels": self.channels}


@dataclasses.dataclass(frozen=True)
class TextSpec:
    """A text instruction, embedded to a ``(dim,)`` vector by ``embedder`` (:mod:`robokit.nets.text`);
    an already-embedded vector (as stored in a replay) passes through."""

    dim: int = HASH_DIM
    embedder: str = "hash"
    kind: ClassVar[str] = "text"

    def embed(self, texts: Sequence[str], key: str = "obs") -> np.ndarray:
        vectors = make_text_embedder(self.embedder, self.dim)(list(texts))
        if vectors.shape != (len(texts), self.dim):
            raise ObservationError(f"{key}: text embedder '{self.embedder}' gave vectors {vectors.shape[1:]}, "
                                   f"spec expects ({self.dim},)")
        return vectors

    def as_batch(self, value: Any, key: str = "obs") -> tuple[torch.Tensor, bool]:
        if isinstance(value, str) or (isinstance(value, list | tuple) and value and isinstance(value[0], str)):
            batched = not isinstance(value, str)
            return torch.from_numpy(self.embed(list(value) if batched else [value], key)), batched
        return VectorSpec(self.dim).as_batch(value, key)

    def storable(self, value: Any, key: str = "obs") -> np.ndarray:
        """The vector a replay stores for one step's instruction."""
        return self.embed([value], key)[0] if isinstance(value, str) else np.asarray(value, np.float32)

    def layout(self) -> tuple[Any, Any]:
        return (self.dim,), np.float32

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "dim": self.dim, "embedder": self.embedder}


@dataclasses.dataclass(frozen=True)
class DictSpec:
    """Named parts, each a spec of its own (``{"image": ImageSpec, "proprio": VectorSpec, ...}``)."""

    parts: Mapping[str, Any]
    kind: ClassVar[str] = "dict"

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError("a dict observation spec needs at least one part")
        for name, part in self.parts.items():
            if isinstance(part, DictSpec):
                raise ValueError(f"dict observation part '{name}': nested dicts are not supported")

    def as_batch(self, value: Any, key: str = "obs") -> tuple[ObsDict, bool]:
        """{name: part} -> (:class:`ObsDict` of batched parts, batched); all parts must agree."""
        if not isinstance(value, Mapping):
            raise ObservationError(f"{key}: expected a dict with keys {sorted(self.parts)}, got {type(value).__name__}")
        if set(value) != set(self.parts):
            missing, extra = sorted(set(self.parts) - set(value)), sorted(set(value) - set(self.parts))
            raise ObservationError(f"{key}: keys {sorted(value)}, expected {sorted(self.parts)} "
                                   f"(missing {missing}, unexpected {extra})")
        out, flags = ObsDict(), set()
        for name, part in self.parts.items():
            out[name], batched = part.as_batch(value[name], f"{key}['{name}']")
            flags.add(batched)
        if len(flags) > 1:
            raise ObservationError(f"{key}: some parts have a batch dimension and others do not")
        rows = {name: len(tensor) for name, tensor in out.items()}
        if len(set(rows.values())) > 1:
            raise ObservationError(f"{key}: parts have different batch sizes {rows}")
        return out, flags.pop()

    def storable(self, value: Mapping[str, Any], key: str = "obs") -> dict[str, Any]:
        """One step's observation as the replay stores it (text parts embedded)."""
        return {name: (part.storable(value[name], f"{key}['{name}']") if isinstance(part, TextSpec)
                       else value[name]) for name, part in self.parts.items()}

    def layout(self) -> tuple[Any, Any]:
        layouts = {name: part.layout() for name, part in self.parts.items()}
        return {k: v[0] for k, v in layouts.items()}, {k: v[1] for k, v in layouts.items()}

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "parts": {name: part.to_dict() for name, part in self.parts.items()}}


ObsSpec = VectorSpec | ImageSpec | PointCloudSpec | TextSpec | DictSpec
SPECS: dict[str, type] = {cls.kind: cls for cls in (VectorSpec, ImageSpec, PointCloudSpec, TextSpec, DictSpec)}


def as_spec(obs: ObsSpec | int | Mapping[str, Any]) -> ObsSpec:
    """A spec from a spec, an int (a vector of that size) or a spec's plain dict."""
    if isinstance(obs, int | np.integer) and not isinstance(obs, bool):
        return VectorSpec(int(obs))
    if isinstance(obs, Mapping):
        return spec_from_dict(obs)
    if isinstance(obs, tuple(SPECS.values())):
        return obs
    raise TypeError(f"expected an observation spec or an int obs_dim, got {type(obs).__name__}")


def flatten_leading(obs: Any, spec: ObsSpec) -> tuple[Any, tuple[int, ...]]:
    """Observations with any leading dims (B, L, *step) -> (rows (B*L, *step), leading dims (B, L)),
    for encoding windows of steps (sequence models) with an encoder made for (B, *step) batches."""
    if isinstance(spec, DictSpec):
        name, part = next(iter(spec.parts.items()))
        lead = tuple(obs[name].shape[:obs[name].dim() - _step_rank(part)])
        return ObsDict({key: value.reshape(-1, *value.shape[len(lead):]) for key, value in obs.items()}), lead
    lead = tuple(obs.shape[:obs.dim() - _step_rank(spec)])
    return obs.reshape(-1, *obs.shape[len(lead):]), lead


def _step_rank(spec: ObsSpec) -> int:
    if isinstance(spec, PointCloudSpec):
        raise ValueError("point clouds are not windowed (each step has its own number of points)")
    return 1 if isinstance(spec, TextSpec) else len(spec.shape)


def stored_spec(spec: ObsSpec) -> ObsSpec:
    """The spec of ``spec``'s observations as a replay stores them: text instructions become
    their embedding vectors; everything else is stored as it is."""
    if isinstance(spec, TextSpec):
        return VectorSpec(spec.dim)
    if isinstance(spec, DictSpec):
        return DictSpec({name: stored_spec(part) for name, part in spec.parts.items()})
    return spec


def spec_from_dict(data: Mapping[str, Any]) -> ObsSpec:
    """Inverse of ``spec.to_dict()`` (the form stored in checkpoints)."""
    fields = dict(data)
    kind = fields.pop("kind", None)
    if kind not in SPECS:
        raise KeyError(f"observation spec: unknown kind {kind!r} (one of {sorted(SPECS)})")
    if kind == "dict":
        return DictSpec({name: spec_from_dict(part) for name, part in fields["parts"].items()})
    try:
        return SPECS[kind](**fields)
    except TypeError as err:
        raise KeyError(f"observation spec of kind '{kind}': {err}") from err


def spec_from_shape(shape: Any, dtype: Any = np.float32, key: str = "obs") -> ObsSpec:
    """The spec of stored observations of ``shape`` (per step) and ``dtype``: ``(O,)`` vector,
    ``(H, W, C)`` / ``(K, H, W, C)`` uint8 image, ``(None, C)`` or ``(N, C)`` float cloud."""
    shape = tuple(shape)
    dtype = np.dtype(dtype)
    if len(shape) == 1:
        return VectorSpec(int(shape[0]))
    if dtype == np.uint8 and len(shape) in (3, 4) and shape[-1] in IMAGE_CHANNELS:
        height, width, channels = (int(s) for s in shape[-3:])
        return ImageSpec(height, width, channels, int(shape[0]) if len(shape) == 4 else 1)
    if len(shape) == 2 and np.issubdtype(dtype, np.floating):
        return PointCloudSpec(int(shape[1]))
    raise ValueError(f"{key}: observations of shape {shape} and dtype {dtype} are not supported (vectors (O,), "
                     f"uint8 images (H, W, C) or (K, H, W, C) with C in {IMAGE_CHANNELS}, point clouds (N, C))")


def spec_from_space(space: Any, key: str = "obs") -> ObsSpec:
    """The spec of a gymnasium observation space: ``Box`` (see :func:`spec_from_shape`),
    ``Sequence(Box((C,)))`` (a variable-size point set), ``Text`` (an instruction), ``Dict``."""
    from gymnasium import spaces

    if isinstance(space, spaces.Dict):
        return DictSpec({name: spec_from_space(part, f"{key}['{name}']") for name, part in space.spaces.items()})
    if isinstance(space, spaces.Box):
        return spec_from_shape(space.shape, space.dtype, key)
    if isinstance(space, spaces.Sequence) and isinstance(space.feature_space, spaces.Box) \
            and len(space.feature_space.shape) == 1:
        return PointCloudSpec(int(space.feature_space.shape[0]))
    if isinstance(space, spaces.Text):
        return TextSpec()
    raise ValueError(f"{key}: observation space {space} is not supported (Box, Sequence of Box points, Text, Dict)")


def spec_from_replay(buffer: Any) -> ObsSpec:
    """The spec of a :class:`~robokit.data.replay.ReplayBuffer`'s stored observations."""
    if isinstance(buffer.obs_shape, dict):
        return DictSpec({name: spec_from_shape(shape, buffer.obs_dtype[name], f"obs['{name}']")
                         for name, shape in buffer.obs_shape.items()})
    return spec_from_shape(buffer.obs_shape, buffer.obs_dtype)


def spec_from_episodes(episodes: Sequence[Any]) -> ObsSpec:
    """The spec of a dataset's :class:`~robokit.data.Episode` observations (the first episode's)."""
    if not episodes:
        raise ValueError("cannot infer an observation spec from zero episodes")
    obs = episodes[0].observations
    if isinstance(obs, dict):
        return DictSpec({name: _spec_of_steps(values, f"obs['{name}']") for name, values in obs.items()})
    return _spec_of_steps(obs, "obs")


def _spec_of_steps(steps: Any, key: str) -> ObsSpec:
    if isinstance(steps, list):  # ragged clouds, one (N_t, C) array per step
        return PointCloudSpec(int(np.shape(steps[0])[1]))
    steps = np.asarray(steps)
    return spec_from_shape(steps.shape[1:], steps.dtype, key)
