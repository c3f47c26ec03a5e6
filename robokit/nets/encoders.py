"""Observation encoders, chosen from the observation spec, and the wrapper that puts one under
any head network (policy, Q ensemble, value).

An encoder has two parts, as in DrQ (Kostrikov et al. 2020, ``denisyarats/drq`` ``drq.py``
``Encoder``) and DrQ-v2 (Yarats et al. 2021, ``facebookresearch/drqv2`` ``drqv2.py``):

- a **body** shared by actor and critic and trained by the critic's loss only: convolutions
  for images, a per-point MLP + max pool (PointNet) or robokit's spconv encoder over voxels for
  point clouds, nothing (identity) or an MLP for vectors; a dict body concatenates its parts;
- a **trunk** per network, ``Linear(body_dim, feature_dim) -> LayerNorm -> tanh`` (50
  features, DrQ's ``Encoder.head`` + ``output_logits=False``), trained by that network's loss.

:class:`EncodedHead` runs ``head(trunk(body(obs)))``; for a network that does not train the
body (the actor) the body's output is detached, so the actor loss never reaches the shared
weights (DrQ's ``detach_encoder=True`` in ``update_actor_and_alpha``). Every method of the head
that takes the observation first (``sample``, ``log_prob``, ``many_actions``, ...) is wrapped the
same way, so algorithm code calls ``actor.sample(obs)`` or ``critic.many_actions(obs, a)`` with
raw observations whatever their kind. Reads that do not train the body run it without a graph,
and inside one update reuse the output the critic step computed on the same batch
(:class:`FeatureCache`, DrQ-v2's encode-once rule), so SAC's actor step costs no encoder pass.

Images enter as uint8 ``(B, [K,] H, W, C)`` and become float only here: ``x / 255 - 0.5``
(DrQ-v2's ``Encoder.forward``), stacked frames folded into channels. :func:`random_shift` is
DrQ's augmentation (pad 4 with edge replication, random crop back), applied to uint8 batches.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
from collections.abc import Iterator, Sequence
from typing import Any, Literal, Protocol

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from robokit.core.config import check_ranges
from robokit.nets.obs_batch import ObsDict, PointBatch
from robokit.nets.obs_spec import DictSpec, ImageSpec, ObsSpec, PointCloudSpec, TextSpec, VectorSpec


@dataclasses.dataclass(frozen=True)
class EncoderConfig:
    """How observations become features (``--agent.encoder.<option>``); defaults: docs/multimodal.md."""

    vector: Literal["identity", "mlp"] = "identity"
    """vector observations (and vector/text parts of dicts): used as they are, or through an MLP"""
    image: Literal["cnn"] = "cnn"
    """images: DrQ's 4-layer CNN (32 filters 3x3, stride 2 then 1)"""
    pointcloud: Literal["pointnet", "sparse"] = "pointnet"
    """point clouds: PointNet (per-point MLP + max pool) or robokit's spconv encoder over voxels"""
    shared: bool = True
    """one body for actor and critic, trained by the critic loss only (DrQ); False: one body per network"""
    reuse_features: bool = True
    """the actor step reuses the critic step's encoding of the batch (DrQ-v2); False: re-encodes it (DrQ)"""
    feature_dim: int = 50
    """width of each network's trunk Linear -> LayerNorm -> tanh (DrQ: 50)"""
    augment: Literal["shift", "none"] = "shift"
    """image augmentation of training batches: DrQ's random shift, or none"""
    shift_pad: int = 4
    """random-shift padding in pixels (DrQ: 4)"""
    cnn_filters: int = 32
    """filters of each conv layer (DrQ: 32)"""
    cnn_layers: int = 4
    """conv layers (DrQ: 4; the first has stride 2)"""
    mlp_hidden: tuple[int, ...] = (256,)
    """hidden widths of the vector MLP body"""
    pointnet_widths: tuple[int, ...] = (64, 128, 256)
    """per-point MLP widths of PointNet (Qi et al. 2017's shared MLP without T-Nets)"""
    point_scale: float = 1.0
    """PointNet reads x, y, z divided by this (the scene's extent, so coordinates span about [-1, 1]
    as in PointNet's unit-sphere inputs; other channels as they are)"""
    voxel_size: float = 0.0625
    """voxel edge of the sparse encoder (32 cells across the default extent)"""
    cloud_extent: float = 1.0
    """the sparse encoder's grid covers [-extent, extent]^3 (points outside are dropped)"""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("feature_dim", "cnn_filters", "cnn_layers", "mlp_hidden", "pointnet_widths",
                                     "point_scale", "voxel_size", "cloud_extent"),
                     non_negative=("shift_pad",), prefix="agent.encoder.")


class Body(Protocol):
    """The shared part of an encoder: ``forward(obs batch) -> (B, out_dim)`` float32."""

    out_dim: int

    def __call__(self, obs: Any) -> torch.Tensor: ...


def segment_max(values: torch.Tensor, index: torch.Tensor, count: int) -> torch.Tensor:
    """Max of ``values`` (V, F) rows per segment ``index`` (V,) -> (count, F); empty segments give 0."""
    out = torch.full((count, values.shape[1]), -torch.inf, dtype=values.dtype, device=values.device)
    out = out.scatter_reduce(0, index.long()[:, None].expand_as(values), values, reduce="amax")
    return torch.where(torch.isfinite(out), out, torch.zeros((), dtype=out.dtype, device=out.device))


class IdentityBody(nn.Module):
    """Vectors as they are: (B, O) -> (B, O)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.out_dim = int(dim)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return obs.float()


class MLPBody(nn.Module):
    """Vectors through Linear + ReLU layers: (B, O) -> (B, hidden[-1])."""

    def __init__(self, dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = dim
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        self.net = nn.Sequential(*layers)
        self.out_dim = int(width)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs.float())


CPU_CHUNK_BYTES = 16 << 20
"""Largest float activation one CPU encoder pass should allocate (:func:`in_cpu_chunks`)."""


def in_cpu_chunks(forward, images: torch.Tensor, bytes_per_row: int, chunk_bytes: int | None = None,
                  ) -> torch.Tensor:
    """``forward(images)`` on CPU in row chunks whose largest activation stays under ``chunk_bytes``
    (default :data:`CPU_CHUNK_BYTES`); the rows' outputs are concatenated (gradients flow through as usual).

    Why: glibc's malloc serves every block above its mmap threshold (at most 32 MiB) with a fresh
    ``mmap`` and unmaps it on free, so each such activation pays a page fault per 4 KiB page on
    first touch. Measured on one thread: an elementwise pass over a (512, 32, 31, 31) float map
    (63 MB) took 53 ms against 4.7 ms for half of it (31 MB). Chunks keep every activation on
    reused heap memory. Per-row layers only (no BatchNorm: chunking would change its statistics);
    on other devices ``forward`` runs once on the whole batch.
    """
    rows = max(1, (CPU_CHUNK_BYTES if chunk_bytes is None else chunk_bytes) // max(1, bytes_per_row))
    if images.device.type != "cpu" or len(images) <= rows:
        return forward(images)
    return torch.cat([forward(chunk) for chunk in images.split(rows)])


class ConvBody(nn.Module):
    """DrQ's convolutions: uint8 (B, [K,] H, W, C) -> (B, filters * h * w).

    ``x / 255 - 0.5`` (DrQ-v2), frames folded into channels (K*C), ``layers`` 3x3 convs of
    ``filters`` with ReLU, the first with stride 2 (84x84 -> 35x35 with 4 layers).
    """

    def __init__(self, spec: ImageSpec, filters: int = 32, layers: int = 4,
                 strides: Sequence[int] | None = None) -> None:
        super().__init__()
        strides = tuple(strides) if strides is not None else (2,) + (1,) * (layers - 1)
        convs: list[nn.Module] = []
        side_h, side_w, channels = spec.height, spec.width, spec.in_channels
        largest = channels * side_h * side_w  # floats per image of the largest activation, input included
        for stride in strides:
            convs += [nn.Conv2d(channels, filters, 3, stride=stride), nn.ReLU(inplace=True)]
            side_h, side_w, channels = (side_h - 3) // stride + 1, (side_w - 3) // stride + 1, filters
            largest = max(largest, filters * side_h * side_w)
        self.convs = nn.Sequential(*convs)
        self.spec = spec
        if min(side_h, side_w) < 1:
            raise ValueError(f"images of {spec.height}x{spec.width} are too small for {len(strides)} conv layers "
                             f"of strides {list(strides)}")
        self.map_size = (int(side_h), int(side_w))
        """(h, w) of the last conv map"""
        self.activation_bytes = 4 * int(largest)
        """bytes of the largest float activation per image (the float input or a conv map)"""
        self.out_dim = int(filters * side_h * side_w)

    def feature_map(self, images: torch.Tensor, memory_format: torch.memory_format = torch.contiguous_format,
                    ) -> torch.Tensor:
        """uint8 (B, [K,] H, W, C) -> the last conv layer's map (B, filters, h, w), in ``memory_format``
        (NCHW by default; ``torch.channels_last`` is the convs' own layout, no copy)."""
        batch = images.shape[0]
        x = images.reshape(batch, -1, *images.shape[-3:])  # (B, K, H, W, C)
        x = x.permute(0, 1, 4, 2, 3).reshape(batch, self.spec.in_channels, self.spec.height, self.spec.width)
        # channels-last (NHWC in memory, as frames are stored) while still uint8: mkldnn's convs run
        # forward + backward ~1.4x faster on 64x64 frames than on NCHW (~1.07x at 84x84); the map's
        # logical (B, filters, h, w) order, and so every checkpoint, is unchanged
        x = self._first_conv(x.contiguous(memory_format=torch.channels_last).float())
        # an NCHW map is made so before the last ReLU (whose forward and backward then run on one
        # layout): the DrQ trunk flattens it in that order, and a small (B, filters, h, w) copy is the
        # cheapest place; a head that reads channels-last (the spatial softmax) skips the copy
        return self.convs[-1](self.convs[1:-1](x).contiguous(memory_format=memory_format))

    def _first_conv(self, pixels: torch.Tensor) -> torch.Tensor:
        """The first conv of ``pixels / 255 - 0.5`` from the pixels (float, 0..255): the scaling
        is folded into the weights, ``conv(x / 255 - 0.5; W, b) = conv(x; W / 255, b - 0.5 sum W)``
        (exact up to float rounding: the convs have no padding, so every tap reads a pixel). One
        pass over the float frames instead of three (convert, divide, subtract)."""
        conv = self.convs[0]
        return F.conv2d(pixels, conv.weight / 255.0, conv.bias - 0.5 * conv.weight.sum(dim=(1, 2, 3)), conv.stride)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, [K,] H, W, C) -> (B, out_dim); on CPU in row chunks (:func:`in_cpu_chunks`)."""
        return in_cpu_chunks(lambda chunk: self.feature_map(chunk).flatten(1), images, self.activation_bytes)


class PointNetBody(nn.Module):
    """PointNet without T-Nets (Qi et al. 2017): a shared per-point MLP, then a max over each
    cloud's points: :class:`PointBatch` (sum N, C) -> (B, widths[-1]). x, y, z are divided by
    ``point_scale`` first (the other channels, such as intensity or a label, are not)."""

    def __init__(self, channels: int, widths: Sequence[int] = (64, 128, 256), point_scale: float = 1.0) -> None:
        super().__init__()
        self.per_point = MLPBody(channels, widths)
        self.out_dim = self.per_point.out_dim
        scale = torch.ones(channels)
        scale[:3] = 1.0 / point_scale
        self.register_buffer("input_scale", scale, persistent=False)

    def forward(self, clouds: PointBatch) -> torch.Tensor:
        return segment_max(self.per_point(clouds.points * self.input_scale), clouds.batch_index, len(clouds))


class SparseVoxelBody(nn.Module):
    """robokit's spconv encoder over voxels: each cloud is voxelized on a cube grid by the numba
    voxelizer (mean point features per voxel, ``[b, z, y, x]`` coords), run through
    :class:`~robokit.pointcloud.backbones.SparseEncoder8x` and max-pooled over its active voxels:
    :class:`PointBatch` -> (B, 64). Needs spconv (the ``lidar`` extra); CPU voxelization."""

    def __init__(self, channels: int, voxel_size: float = 0.0625, extent: float = 1.0) -> None:
        super().__init__()
        # spconv loads only when this body is used
        from robokit.pointcloud.backbones import SparseEncoder8x

        cells = int(round(2 * extent / voxel_size))
        if cells % 8:
            raise ValueError(f"--agent.encoder.voxel-size: 2 * extent / voxel_size = {cells} cells must be "
                             f"divisible by 8 (the sparse encoder halves the grid three times)")
        self.voxel_size, self.extent, self.cells = float(voxel_size), float(extent), cells
        # short RL runs: BatchNorm momentum 0.1, as robokit's SparseClassifier (see SparseEncoder8x)
        self.encoder = SparseEncoder8x(channels, (cells, cells, cells), bn_momentum=0.1)
        self.out_dim = int(self.encoder.out_channels)

    def forward(self, clouds: PointBatch) -> torch.Tensor:
        from robokit.data.batch import split_ragged
        from robokit.pointcloud.voxelizer import voxelize_batch

        points = clouds.points.detach().cpu().numpy()
        offsets = clouds.offsets.cpu().numpy()
        low, high = -self.extent, self.extent
        features, coords, _ = voxelize_batch(split_ragged(points, offsets), (self.voxel_size,) * 3,
                                             (low, low, low, high, high, high))
        device = clouds.points.device
        if len(features) == 0:
            return torch.zeros(len(clouds), self.out_dim, device=device)
        out = self.encoder(torch.from_numpy(features).to(device), torch.from_numpy(coords).to(device), len(clouds))
        return segment_max(out.features, out.indices[:, 0], len(clouds))


class DictBody(nn.Module):
    """Each part through its own body, features concatenated in the spec's key order."""

    def __init__(self, parts: dict[str, nn.Module]) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(parts)
        self.out_dim = int(sum(body.out_dim for body in parts.values()))

    def forward(self, obs: ObsDict) -> torch.Tensor:
        return torch.cat([body(obs[name]) for name, body in self.parts.items()], dim=-1)


def build_body(spec: ObsSpec, config: EncoderConfig) -> nn.Module:
    """The body the spec and config ask for (see :class:`EncoderConfig`)."""
    if isinstance(spec, DictSpec):
        return DictBody({name: build_body(part, config) for name, part in spec.parts.items()})
    if isinstance(spec, VectorSpec | TextSpec):
        return MLPBody(spec.dim, config.mlp_hidden) if config.vector == "mlp" else IdentityBody(spec.dim)
    if isinstance(spec, ImageSpec):
        return ConvBody(spec, config.cnn_filters, config.cnn_layers)
    if isinstance(spec, PointCloudSpec):
        if config.pointcloud == "sparse":
            return SparseVoxelBody(spec.channels, config.voxel_size, config.cloud_extent)
        return PointNetBody(spec.channels, config.pointnet_widths, config.point_scale)
    raise TypeError(f"no encoder for observation spec {spec!r}")


def raw_vectors(spec: ObsSpec, config: EncoderConfig) -> bool:
    """Whether networks read the observation as it is (a vector with the identity encoder):
    then no encoder is built and the agent's networks are exactly the vector-only ones."""
    return isinstance(spec, VectorSpec) and config.vector == "identity"


def trunk(in_dim: int, feature_dim: int) -> nn.Sequential:
    """DrQ's per-network projection: Linear -> LayerNorm -> tanh."""
    return nn.Sequential(nn.Linear(in_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())


class FeatureCache:
    """The shared body's outputs on the observation batches of one update, detached.

    DrQ-v2's rule (``facebookresearch/drqv2`` ``drqv2.py``, ``DrQV2Agent.update``): the batch is
    encoded once, the critic step trains on that output, and the actor step reads the same
    output detached (``self.update_actor(obs.detach(), step)``), i.e. the features from the
    encoder weights *before* the critic's optimizer step. DrQ (``denisyarats/drq``) instead
    re-encodes in ``update_actor_and_alpha`` with the updated weights; that is
    ``EncoderConfig.reuse_features=False``. Batches are matched by identity (the same tensor,
    :class:`ObsDict` or :class:`PointBatch` object), and the cache holds a reference to each, so
    an identity cannot be reused while the cache lives. Active only inside :meth:`scope` (one
    ``Agent.update``); at most ``capacity`` batches are kept (the newest).
    """

    def __init__(self, capacity: int = 4) -> None:
        self.capacity = int(capacity)
        self.entries: list[tuple[Any, torch.Tensor]] | None = None  # None: not in an update

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Keep body outputs until the block ends (nested scopes share the outer one)."""
        if self.entries is not None:
            yield
            return
        self.entries = []
        try:
            yield
        finally:
            self.entries = None

    def get(self, obs: Any) -> torch.Tensor | None:
        """The cached (B, body_dim) output for this very batch object, or None."""
        for key, hidden in self.entries or ():
            if key is obs:
                return hidden
        return None

    def put(self, obs: Any, hidden: torch.Tensor) -> None:
        """Remember ``hidden`` (detached) as the body output on ``obs`` (no-op outside a scope)."""
        if self.entries is None:
            return
        kept = [(key, value) for key, value in self.entries if key is not obs]
        self.entries = kept[max(0, len(kept) - self.capacity + 1):] + [(obs, hidden.detach())]


#: head methods that take the observation first (wrapped by EncodedHead)
OBS_FIRST = frozenset({"sample", "sample_n", "log_prob", "mode", "distribution_params", "many_actions"})


class EncodedHead(nn.Module):
    """``head(trunk(body(obs)), ...)`` with the same methods as ``head``.

    Args:
        head: a network built for ``feature_dim`` inputs (policy, QEnsemble, ValueNet).
        body: the encoder body (shared or this network's own).
        feature_dim: trunk width (the head's input size).
        owns_body: register ``body`` as this network's submodule (its optimizer and target copy
            include it); otherwise it is only referenced (another network owns it).
        detach: stop gradients at the body's output (networks that must not train the body).
        cache: the shared body's :class:`FeatureCache` (None: always run the body).
    """

    def __init__(self, head: nn.Module, body: nn.Module, feature_dim: int, owns_body: bool, detach: bool,
                 cache: FeatureCache | None = None) -> None:
        super().__init__()
        if owns_body:
            self.body = body
        else:
            self.__dict__["body"] = body  # not a submodule: not in parameters(), state_dict() or copies
        self.trunk = trunk(body.out_dim, feature_dim)
        self.head = head
        self.detach = bool(detach)
        self.cache = cache

    def features(self, obs: Any) -> torch.Tensor:
        """Observation batch -> (B, feature_dim)."""
        return self.trunk(self.hidden(obs))

    def trains_body(self) -> bool:
        """Whether this read can train the body: not detached, autograd on, and the body's weights
        require grad (they do not while SAC's actor step freezes the critic that owns them)."""
        if self.detach or not torch.is_grad_enabled():
            return False
        weights = list(self.body.parameters())
        return not weights or any(w.requires_grad for w in weights)

    def hidden(self, obs: Any) -> torch.Tensor:
        """The body's output (B, body_dim): with its graph when this read trains the body; else
        detached, computed without a graph, or taken from the cache when the update already
        encoded this batch (see :class:`FeatureCache`)."""
        if self.trains_body():
            hidden = self.body(obs)
        else:
            cached = self.cache.get(obs) if self.cache is not None else None
            if cached is not None:
                return cached
            with torch.no_grad():
                hidden = self.body(obs)
        if self.cache is not None:
            self.cache.put(obs, hidden)
        return hidden

    def forward(self, obs: Any, *args: Any, **kwargs: Any) -> Any:
        return self.head(self.features(obs), *args, **kwargs)

    def _on_features(self, method: Any, obs: Any, *args: Any, **kwargs: Any) -> Any:
        return method(self.features(obs), *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name in ("head", "trunk", "body"):
                raise
        attribute = getattr(self.head, name)
        return functools.partial(self._on_features, attribute) if name in OBS_FIRST else attribute


def unwrap(network: nn.Module) -> nn.Module:
    """The head of an :class:`EncodedHead`, or the network itself."""
    return network.head if isinstance(network, EncodedHead) else network


def head_input(network: nn.Module, obs: Any) -> Any:
    """What :func:`unwrap` (``network``'s head) reads for ``obs``: the encoded features (B,
    feature_dim) of an :class:`EncodedHead` (with the graph when the read trains the body), else
    ``obs`` itself. Encode once, then call the head on the result as often as one loss needs."""
    return network.features(obs) if isinstance(network, EncodedHead) else obs


def image_keys(spec: ObsSpec) -> list[str | None]:
    """Where the images are: [None] for an image spec, the image parts' names for a dict."""
    if isinstance(spec, ImageSpec):
        return [None]
    if isinstance(spec, DictSpec):
        return [name for name, part in spec.parts.items() if isinstance(part, ImageSpec)]
    return []


def random_shift(images: torch.Tensor, pad: int, generator: torch.Generator) -> torch.Tensor:
    """DrQ's random shift on uint8 images (B, [K,] H, W, C): replicate-pad by ``pad`` pixels and
    crop back at a random offset per image (the same for its stacked frames).

    Done as one gather of whole pixels (C bytes each) with clamped indices, which equals
    replicate padding followed by the crop without building the padded batch: every output
    pixel's row in the (B * K * H * W, C) pixel table is computed from its image's offset, and
    ``index_select`` copies the rows (on one CPU thread ~5x faster than advanced indexing with
    four broadcast index tensors, which gathers byte by byte).
    """
    if pad <= 0:
        return images
    batch, height, width, channels = images.shape[0], images.shape[-3], images.shape[-2], images.shape[-1]
    device = images.device
    shifts = torch.randint(0, 2 * pad + 1, (2, batch), generator=generator, device=generator.device).to(device)
    rows = (torch.arange(height, device=device)[None] + shifts[0][:, None] - pad).clamp_(0, height - 1)  # (B, H)
    cols = (torch.arange(width, device=device)[None] + shifts[1][:, None] - pad).clamp_(0, width - 1)  # (B, W)
    frames = images.reshape(batch, -1, height, width, channels)  # (B, K, H, W, C)
    stacked = frames.shape[1]
    first = torch.arange(batch * stacked, device=device).reshape(batch, stacked) * (height * width)  # (B, K)
    pixel = first[:, :, None, None] + (rows * width)[:, None, :, None] + cols[:, None, None, :]  # (B, K, H, W)
    return frames.reshape(-1, channels).index_select(0, pixel.reshape(-1)).reshape(images.shape)


def augment_images(obs: Any, keys: list[str | None], pad: int, generator: torch.Generator) -> Any:
    """``obs`` with :func:`random_shift` applied to its images (``keys`` from :func:`image_keys`)."""
    if not keys:
        return obs
    if keys == [None]:
        return random_shift(obs, pad, generator)
    out = ObsDict(obs)
    for key in keys:
        out[key] = random_shift(obs[key], pad, generator)
    return out


def parameter_count(module: nn.Module) -> int:
    return int(sum(np.prod(p.shape) for p in module.parameters()))
