"""Representation-pretraining objectives on one pixel encoder (Brandfonbrener et al. 2023).

Every objective owns a :class:`PixelEncoder` phi (uint8 frames -> a low-dimensional embedding)
and the small heads its loss needs; ``objective.loss(batch, generator)`` returns the loss and
its ``losses/`` metrics. A batch is a :class:`PairBatch` of torch tensors: ``obs`` o_t and
``future_obs`` o_{t+k} uint8 ``(B, H, W, C)``, ``action`` a_t ``(B, A)`` float32 in [-1, 1] and
``task`` ``(B,)`` int64 (the episode's context index, used only by multi-head BC).

Both views go through the encoder in ONE call (``cat([o_t, o_{t+k}])``; on CPU the encoder runs
it in row chunks that keep every activation below glibc's mmap threshold, see
:func:`~robokit.nets.encoders.in_cpu_chunks`); images stay
uint8 until the encoder's first layer (robokit's :class:`~robokit.nets.encoders.ConvBody`:
``x / 255 - 0.5``) and the random shift is one batched gather on the uint8 batch
(:func:`~robokit.nets.encoders.random_shift`, each image its own offset).

Objectives (defaults and their sources: docs/pretrain.md):

- ``inverse_dynamics``: ``a_t ~ head([phi(o_t), phi(o_{t+k})])``, MSE; optional stop-gradient on
  the second view;
- ``bc``: ``a_t ~ head(phi(o_t))``, MSE, on the pooled multi-context corpus (optionally one
  head per context);
- ``contrastive``: InfoNCE between ``proj(phi(o_t)[, act(a_t)])`` and ``proj'(phi(o_{t+k}))`` on
  the unit sphere, other rows of the batch as negatives: contrastive dynamics with actions,
  SimCLR (two augmentations of o_t, ``nstep=0``) without;
- ``forward``: decode the pixels of o_{t+k} from ``[phi(o_t), act(a_t)]`` with a conv decoder;
- ``reconstruction``: decode the pixels of o_t from ``phi(o_t)`` (an autoencoder).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Literal, Protocol, TypedDict

import torch
from torch import nn
from torch.nn import functional as F

from robokit.core.config import check_ranges
from robokit.nets.encoders import ConvBody, in_cpu_chunks, random_shift, trunk
from robokit.nets.obs_spec import ImageSpec
from robokit.nets.spatial_softmax import SpatialSoftmax

ObjectiveName = Literal["inverse_dynamics", "bc", "contrastive", "forward", "reconstruction"]
OBJECTIVES: tuple[str, ...] = ("inverse_dynamics", "bc", "contrastive", "forward", "reconstruction")


class PairBatch(TypedDict):
    """What every objective reads (torch tensors on one device)."""

    obs: torch.Tensor  # (B, H, W, C) uint8, o_t
    future_obs: torch.Tensor  # (B, H, W, C) uint8, o_{t+k} (o_t itself when k = 0)
    action: torch.Tensor  # (B, A) float32, a_t
    task: torch.Tensor  # (B,) int64, context index


@dataclasses.dataclass(frozen=True)
class EncoderOptions:
    """The pixel encoder phi (``--encoder.*``); defaults: docs/pretrain.md."""

    embed_dim: int = 64
    """embedding width (official: encoder-conv-softmax-64-norm, 64)"""
    keypoints: int = 256
    """spatial-softmax keypoints on the last conv map (official 256); 0 = flatten the map (DrQ)"""
    cnn_filters: int = 32
    """filters of each 3x3 conv layer (robokit's DrQ body: 32)"""
    cnn_strides: tuple[int, ...] = (2, 2, 1, 1)
    """one stride per conv layer (official SimpleConv: 2, 2, 1, 1; DrQ: 2, 1, 1, 1)"""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("embed_dim", "cnn_filters", "cnn_strides"), non_negative=("keypoints",),
                     prefix="encoder.")


class PixelEncoder(nn.Module):
    """phi: uint8 frames (B, H, W, C) -> (B, embed_dim) in (-1, 1).

    robokit's DrQ conv body (``x / 255 - 0.5`` inside), then a spatial softmax (or the flat map)
    and the trunk ``Linear -> LayerNorm -> tanh`` (the official ``normalize_merge``).
    """

    def __init__(self, frame: Sequence[int], options: EncoderOptions = EncoderOptions()) -> None:
        super().__init__()
        height, width, channels = (int(v) for v in frame)
        self.frame = (height, width, channels)
        self.options = options
        self.body = ConvBody(ImageSpec(height, width, channels), options.cnn_filters,
                             strides=options.cnn_strides)
        self.pool = (SpatialSoftmax(options.cnn_filters, options.keypoints, *self.body.map_size)
                     if options.keypoints else None)
        pooled = self.pool.out_dim if self.pool is not None else self.body.out_dim
        self.trunk = trunk(pooled, options.embed_dim)
        self.out_dim = options.embed_dim
        pool_bytes = 4 * options.keypoints * self.body.map_size[0] * self.body.map_size[1]
        self.activation_bytes = max(self.body.activation_bytes, pool_bytes, 4 * pooled)
        """bytes of the largest float activation per frame (conv maps, keypoint logits, pooled)"""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, C) -> (B, embed_dim); on CPU in row chunks (:func:`in_cpu_chunks`)."""
        return in_cpu_chunks(self._encode, images, self.activation_bytes)

    def _encode(self, images: torch.Tensor) -> torch.Tensor:
        if self.pool is None:
            return self.trunk(self.body(images))
        return self.trunk(self.pool(self.body.feature_map(images, torch.channels_last)))

    def describe(self) -> dict:
        """Plain data that rebuilds this encoder (stored in checkpoints)."""
        return {"frame": list(self.frame), "options": dataclasses.asdict(self.options)}


def encoder_from_description(description: dict) -> PixelEncoder:
    """The (untrained) encoder :meth:`PixelEncoder.describe` describes."""
    options = dict(description["options"])
    options["cnn_strides"] = tuple(options["cnn_strides"])
    return PixelEncoder(description["frame"], EncoderOptions(**options))


def mlp_head(in_dim: int, out_dim: int, hidden: Sequence[int] = (256, 256), dropout: float = 0.0) -> nn.Sequential:
    """``Linear -> GELU [-> Dropout]`` per hidden width, then ``Linear`` (the official ``MLP``)."""
    layers: list[nn.Module] = []
    width = in_dim
    for size in hidden:
        layers += [nn.Linear(width, size), nn.GELU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def info_nce_logits(anchors: torch.Tensor, positives: torch.Tensor, temperature: float) -> torch.Tensor:
    """``logits[i, j] = <anchors_i, positives_j> / temperature``: (B, D), (B, D) -> (B, B)."""
    return anchors @ positives.T / temperature


def info_nce_loss(logits: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``-logits[i, i] + logsumexp_j logits[i, j]`` (the positives on the diagonal)."""
    return F.cross_entropy(logits, torch.arange(len(logits), device=logits.device))


class PixelDecoder(nn.Module):
    """The official ``SimpleDeconv``: ``Linear -> GELU`` to a (2, s, s) map, four 3x3 transposed
    convs (strides 1, 1, 2, 2; GELU) and a 2x2 one to C channels: (B, D) -> (B, H, W, C) in the
    encoder's scale (pixels / 255 - 0.5). Square frames with (H - 20) divisible by 4 (64, 84, ...)."""

    def __init__(self, in_dim: int, frame: Sequence[int], widths: Sequence[int] = (256, 128, 64, 32)) -> None:
        super().__init__()
        height, width, channels = (int(v) for v in frame)
        if height != width or (height - 20) % 4 or height < 24:
            raise ValueError(f"the pixel decoder needs square frames with (size - 20) divisible by 4 "
                             f"(64, 84, ...), got {height}x{width}")
        self.side = (height - 20) // 4
        self.dense = nn.Sequential(nn.Linear(in_dim, 2 * self.side * self.side), nn.GELU())
        layers: list[nn.Module] = []
        previous = 2
        for size, stride in zip(widths, (1, 1, 2, 2), strict=True):
            layers += [nn.ConvTranspose2d(previous, size, 3, stride=stride), nn.GELU()]
            previous = size
        layers.append(nn.ConvTranspose2d(previous, channels, 2, stride=1))
        self.deconvs = nn.Sequential(*layers)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        maps = self.dense(codes).reshape(len(codes), 2, self.side, self.side)
        return self.deconvs(maps).permute(0, 2, 3, 1)


def pixel_targets(images: torch.Tensor) -> torch.Tensor:
    """uint8 (B, H, W, C) -> float (B, H, W, C) on the encoder's scale ``x / 255 - 0.5``."""
    return images.float() / 255.0 - 0.5


@dataclasses.dataclass(frozen=True)
class ObjectiveOptions:
    """Options of the objectives' own heads (``--objective-options.*``); defaults: docs/pretrain.md."""

    stop_grad: bool = False
    """inverse_dynamics: no gradient through phi(o_{t+k}) (official default False)"""
    head_hidden: tuple[int, ...] = (256, 256)
    """hidden widths of the action heads (official policy-mlp-256)"""
    head_dropout: float = 0.1
    """dropout of the action heads (official policy-mlp-256-0.1)"""
    include_action: bool = True
    """contrastive: condition the anchor on a_t (contrastive dynamics); False: SimCLR"""
    temperature: float = 1.0
    """contrastive: InfoNCE temperature (official 1.0)"""
    projection_dim: int = 64
    """contrastive: width of the projections on the unit sphere (official encoder-projector-64)"""
    action_embed_dim: int = 64
    """contrastive / forward: width of the action encoder (official encoder-action-64, LayerNorm + tanh)"""
    decoder_widths: tuple[int, ...] = (256, 128, 64, 32)
    """forward / reconstruction: transposed-conv widths (official decoder-conv)"""
    multihead: bool = False
    """bc: one action head per context (the official MultiheadEncoderPolicy); False: one shared head"""
    num_tasks: int = 1
    """bc with multihead: number of contexts (set from the data)"""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("temperature", "projection_dim", "action_embed_dim", "decoder_widths",
                                     "num_tasks"), non_negative=("head_dropout",), prefix="objective-options.")


class Objective(Protocol):
    """A pretraining objective: an ``nn.Module`` with an encoder and a loss."""

    encoder: PixelEncoder
    uses_actions: bool

    def loss(self, batch: PairBatch) -> tuple[torch.Tensor, dict[str, float]]: ...

    def parameters(self): ...


def action_encoder(action_dim: int, width: int) -> nn.Sequential:
    """The official ``ActionEncoder``: MLP(256, 256) -> LayerNorm -> tanh: (B, A) -> (B, width)."""
    return nn.Sequential(mlp_head(action_dim, width), nn.LayerNorm(width), nn.Tanh())


class _EncoderObjective(nn.Module):
    """Shared parts: the encoder and the one batched forward of both views."""

    uses_actions = True

    def __init__(self, encoder: PixelEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def encode_pair(self, batch: PairBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(phi(o_t), phi(o_{t+k})), each (B, E), from one encoder call on the 2B frames."""
        both = self.encoder(torch.cat([batch["obs"], batch["future_obs"]]))
        return both[: len(batch["obs"])], both[len(batch["obs"]):]


class InverseDynamics(_EncoderObjective):
    """MSE of ``tanh(head([phi(o_t), phi(o_{t+k})]))`` against a_t."""

    def __init__(self, encoder: PixelEncoder, action_dim: int, options: ObjectiveOptions) -> None:
        super().__init__(encoder)
        self.stop_grad = options.stop_grad
        self.head = mlp_head(2 * encoder.out_dim, action_dim, options.head_hidden, options.head_dropout)

    def loss(self, batch: PairBatch) -> tuple[torch.Tensor, dict[str, float]]:
        now, later = self.encode_pair(batch)
        if self.stop_grad:
            later = later.detach()
        predicted = torch.tanh(self.head(torch.cat([now, later], dim=-1)))
        loss = F.mse_loss(predicted, batch["action"])
        return loss, {"losses/inverse_dynamics": float(loss.detach())}


class BehaviourCloning(_EncoderObjective):
    """MSE of ``tanh(head(phi(o_t)))`` against a_t; with ``multihead`` the head of the row's context."""

    def __init__(self, encoder: PixelEncoder, action_dim: int, options: ObjectiveOptions) -> None:
        super().__init__(encoder)
        self.action_dim = action_dim
        self.heads = options.num_tasks if options.multihead else 1
        self.head = mlp_head(encoder.out_dim, self.heads * action_dim, options.head_hidden, options.head_dropout)

    def act(self, obs: torch.Tensor, task: torch.Tensor | None = None) -> torch.Tensor:
        """uint8 (B, H, W, C) -> actions (B, A) in (-1, 1)."""
        out = self.head(self.encoder(obs)).reshape(len(obs), self.heads, self.action_dim)
        if self.heads == 1:
            return torch.tanh(out[:, 0])
        if task is None or int(task.max()) >= self.heads or int(task.min()) < 0:
            raise ValueError(f"multi-head BC needs task indices in [0, {self.heads})")
        return torch.tanh(out[torch.arange(len(obs), device=obs.device), task.long()])

    def loss(self, batch: PairBatch) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.mse_loss(self.act(batch["obs"], batch["task"]), batch["action"])
        return loss, {"losses/bc": float(loss.detach())}


class Contrastive(_EncoderObjective):
    """InfoNCE: anchors ``proj([phi(o_t)[, act(a_t)]])``, positives ``proj'(phi(o_{t+k}))`` (unit norm),
    the other rows as negatives; the encoder is shared by both views (official ``share_encoder``)."""

    def __init__(self, encoder: PixelEncoder, action_dim: int, options: ObjectiveOptions) -> None:
        super().__init__(encoder)
        self.uses_actions = options.include_action
        self.temperature = options.temperature
        anchor_in = encoder.out_dim
        if options.include_action:
            self.action_encoder = action_encoder(action_dim, options.action_embed_dim)
            anchor_in += options.action_embed_dim
        self.anchor_projector = mlp_head(anchor_in, options.projection_dim)
        self.positive_projector = mlp_head(encoder.out_dim, options.projection_dim)

    def logits(self, batch: PairBatch) -> torch.Tensor:
        """(B, B) InfoNCE logits; row i's positive is column i."""
        now, later = self.encode_pair(batch)
        anchor_in = torch.cat([now, self.action_encoder(batch["action"])], dim=-1) if self.uses_actions else now
        anchors = F.normalize(self.anchor_projector(anchor_in), dim=-1)
        positives = F.normalize(self.positive_projector(later), dim=-1)
        return info_nce_logits(anchors, positives, self.temperature)

    def loss(self, batch: PairBatch) -> tuple[torch.Tensor, dict[str, float]]:
        logits = self.logits(batch)
        loss = info_nce_loss(logits)
        accuracy = (logits.argmax(dim=1) == torch.arange(len(logits), device=logits.device)).float().mean()
        return loss, {"losses/contrastive": float(loss.detach()), "train/contrastive_accuracy": float(accuracy)}


class PixelPrediction(_EncoderObjective):
    """MSE of decoded pixels: o_{t+k} from ``[phi(o_t), act(a_t)]`` (forward) or o_t from ``phi(o_t)``
    (reconstruction)."""

    def __init__(self, encoder: PixelEncoder, action_dim: int, options: ObjectiveOptions, forward: bool) -> None:
        super().__init__(encoder)
        self.forward_model = forward
        self.uses_actions = forward
        code = encoder.out_dim
        if forward:
            self.action_encoder = action_encoder(action_dim, options.action_embed_dim)
            code += options.action_embed_dim
        self.decoder = PixelDecoder(code, encoder.frame, options.decoder_widths)

    def loss(self, batch: PairBatch) -> tuple[torch.Tensor, dict[str, float]]:
        if self.forward_model:
            code = torch.cat([self.encoder(batch["obs"]), self.action_encoder(batch["action"])], dim=-1)
            target, name = batch["future_obs"], "losses/forward"
        else:
            code, target, name = self.encoder(batch["obs"]), batch["obs"], "losses/reconstruction"
        loss = F.mse_loss(self.decoder(code), pixel_targets(target))
        return loss, {name: float(loss.detach())}


def build_objective(name: str, encoder: PixelEncoder, action_dim: int,
                    options: ObjectiveOptions = ObjectiveOptions()) -> nn.Module:
    """The objective module ``name`` (one of :data:`OBJECTIVES`) around ``encoder``."""
    if name == "inverse_dynamics":
        return InverseDynamics(encoder, action_dim, options)
    if name == "bc":
        return BehaviourCloning(encoder, action_dim, options)
    if name == "contrastive":
        return Contrastive(encoder, action_dim, options)
    if name in ("forward", "reconstruction"):
        return PixelPrediction(encoder, action_dim, options, forward=name == "forward")
    raise ValueError(f"--objective: unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}")


def augment_pair(batch: PairBatch, pad: int, generator: torch.Generator) -> PairBatch:
    """``batch`` with both views randomly shifted (uint8, one gather, each image its own shift)."""
    if pad <= 0:
        return batch
    both = random_shift(torch.cat([batch["obs"], batch["future_obs"]]), pad, generator)
    half = len(batch["obs"])
    return PairBatch(obs=both[:half], future_obs=both[half:], action=batch["action"], task=batch["task"])
