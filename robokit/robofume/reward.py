"""Success reward models behind one interface: ``(images, instructions) -> P(success)``.

RoboFuME (Yang, Sobol Mark et al. 2023, arXiv 2310.15145) replaces the hand-written reward of
online fine-tuning by a success detector trained on demonstrations (successes) and failure
observations; its output is the reward and, thresholded, ends the forward/backward sub-episode.
Three kinds share :class:`SuccessModel`:

- ``"vlm"``: a CLIP-style vision-language model fine-tuned as a binary success classifier,
  success when P(yes) > P(no) (:mod:`robokit.robofume.vlm`, needs ``transformers``);
- ``"cnn"``: a small convolutional classifier on the image and a hashed instruction (the paper's
  baseline classifier);
- ``"oracle"``: the simulator's truth, read from the step's ``info`` dict (:meth:`OracleReward.from_info`).

A saved model is a directory holding ``robokit_reward.json`` (the kind and its settings) and the
weights; :func:`load_success_model` reads the kind from it. A Hugging Face CLIP folder without that
file (for example ``openai/clip-vit-base-patch32`` downloaded elsewhere) loads as an untrained
``"vlm"``. Weights are read with ``torch.load(weights_only=True)`` or safetensors, never pickle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robokit.nets.encoders import ConvBody, random_shift
from robokit.nets.obs_spec import ImageSpec
from robokit.nets.text import hash_embed
from robokit.robofume.success import (
    CONFIG_FILE,
    SUCCESS_THRESHOLD,
    RewardModelError,
    SuccessModel,
    TorchSuccessModel,
    check_inputs,
)

KINDS = ("vlm", "cnn", "oracle")


class CNNSuccessNet(nn.Module):
    """DrQ convolutions on the image, concatenated with a hashed instruction, then an MLP:
    uint8 (B, H, W, 3) and (B, text_dim) -> (B,) success logit."""

    def __init__(self, image_size: tuple[int, int], filters: int = 16, layers: int = 4,
                 feature_dim: int = 64, text_dim: int = 64, hidden: int = 128) -> None:
        super().__init__()
        self.body = ConvBody(ImageSpec(*image_size), filters=filters, layers=layers)
        self.project = nn.Sequential(nn.Linear(self.body.out_dim, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())
        self.head = nn.Sequential(nn.Linear(feature_dim + text_dim, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, images: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        features = self.project(self.body(images))
        return self.head(torch.cat([features, text], dim=-1)).squeeze(-1)


class CNNSuccessModel(TorchSuccessModel):
    """The small CNN classifier (the paper's baseline): see :class:`CNNSuccessNet`."""

    kind = "cnn"

    def __init__(self, image_size: tuple[int, int] = (64, 64), instructions: Sequence[str] = (),
                 filters: int = 16, layers: int = 4, feature_dim: int = 64, text_dim: int = 64,
                 seed: int = 0) -> None:
        self.arch = {"filters": int(filters), "layers": int(layers), "feature_dim": int(feature_dim),
                     "text_dim": int(text_dim)}
        with torch.random.fork_rng():  # seeded initial weights, the caller's global generator untouched
            torch.manual_seed(seed)
            network = CNNSuccessNet(image_size, **self.arch)
        super().__init__(network, image_size, instructions)

    def success_logits(self, images: torch.Tensor, instructions: Sequence[str]) -> torch.Tensor:
        text = torch.from_numpy(hash_embed(list(instructions), self.arch["text_dim"]))
        return self.network(images, text)

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), **self.arch}

    def _write(self, directory: Path) -> None:
        torch.save(self.network.state_dict(), directory / "weights.pt")

    @classmethod
    def load(cls, directory: Path, config: Mapping[str, Any]) -> CNNSuccessModel:
        model = cls(tuple(config["image_size"]), config.get("instructions", ()),
                    **{key: config[key] for key in ("filters", "layers", "feature_dim", "text_dim")})
        state = torch.load(directory / "weights.pt", map_location="cpu", weights_only=True)
        model.network.load_state_dict(state)
        return model


class OracleReward:
    """The simulator's truth as the reward: :meth:`from_info` reads ``info["success"]``.

    It cannot judge an image alone, so :meth:`predict_proba` refuses; the loop calls
    :meth:`from_info` with each step's ``info`` instead.
    """

    kind = "oracle"

    def from_info(self, info: Mapping[str, Any]) -> float:
        """1.0 when ``info["success"]`` (the env's truth for the current instruction) else 0.0."""
        if "success" not in info:
            raise RewardModelError("the oracle reward needs info['success'] from the environment; "
                                   f"this info has keys {sorted(info)}")
        return 1.0 if bool(info["success"]) else 0.0

    def predict_proba(self, images: np.ndarray, instructions: Sequence[str]) -> np.ndarray:
        raise RewardModelError("the oracle reward reads the simulator's info, not images: call from_info(info)")

    def save(self, path: str | Path) -> None:
        from robokit.data.formats.common import atomic_directory

        with atomic_directory(Path(path), overwrite=True) as tmp:
            (tmp / CONFIG_FILE).write_text(json.dumps({"kind": self.kind}) + "\n")


def build_success_model(kind: str, **config: Any) -> SuccessModel:
    """A fresh model of ``kind``: "vlm" (see :func:`robokit.robofume.vlm.build_vlm`), "cnn"
    (``image_size``, ``instructions``, layer sizes, ``seed`` of the initial weights) or "oracle"."""
    if kind == "cnn":
        return CNNSuccessModel(**config)
    if kind == "vlm":
        from robokit.robofume.vlm import build_vlm

        return build_vlm(**config)
    if kind == "oracle":
        return OracleReward()
    raise RewardModelError(f"unknown reward model kind '{kind}' (one of {', '.join(KINDS)})")


def load_success_model(path: str | Path) -> SuccessModel:
    """The model saved in the directory ``path`` (its kind read from ``robokit_reward.json``), or a
    Hugging Face CLIP folder (``config.json`` + weights) as an untrained "vlm"."""
    directory = Path(path)
    if not directory.is_dir():
        raise RewardModelError(f"{directory}: no such reward model directory")
    config_path = directory / CONFIG_FILE
    if not config_path.exists():
        if (directory / "config.json").exists():
            from robokit.robofume.vlm import VLMSuccessModel

            return VLMSuccessModel.from_pretrained(directory)
        raise RewardModelError(f"{directory}: neither {CONFIG_FILE} (a robokit reward model) nor config.json "
                               "(a Hugging Face model folder)")
    try:
        config = json.loads(config_path.read_text())
    except json.JSONDecodeError as err:
        raise RewardModelError(f"{config_path}: not valid JSON ({err})") from err
    kind = config.get("kind")
    if kind == "cnn":
        return CNNSuccessModel.load(directory, config)
    if kind == "vlm":
        from robokit.robofume.vlm import VLMSuccessModel

        return VLMSuccessModel.load(directory, config)
    if kind == "oracle":
        return OracleReward()
    raise RewardModelError(f"{config_path}: key 'kind': unknown reward model kind {kind!r} (one of {', '.join(KINDS)})")


def _labelled(positives: tuple[np.ndarray, Sequence[str]], negatives: tuple[np.ndarray, Sequence[str]],
              model: TorchSuccessModel) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Stack positives and negatives into (N, H, W, 3) images, N instructions, (N,) 0/1 labels."""
    if len(positives[0]) == 0 or len(negatives[0]) == 0:
        raise RewardModelError(f"a success classifier needs both classes: {len(positives[0])} positives, "
                               f"{len(negatives[0])} negatives")
    known = model.instructions
    pos, pos_text = check_inputs(positives[0], positives[1], model.image_size, known)
    neg, neg_text = check_inputs(negatives[0], negatives[1], model.image_size, known)
    labels = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))]).astype(np.float32)
    return np.concatenate([pos, neg]), pos_text + neg_text, labels


def by_label(images: np.ndarray, instructions: Sequence[str],
             labels: np.ndarray) -> tuple[tuple[np.ndarray, list[str]], tuple[np.ndarray, list[str]]]:
    """Labelled frames -> (positives, negatives), each (images, instructions), as
    :func:`fit_success_model` takes them (label 1 = success)."""
    truth = np.asarray(labels).astype(bool)
    texts = [str(text) for text in instructions]
    return ((images[truth], [texts[i] for i in np.flatnonzero(truth)]),
            (images[~truth], [texts[i] for i in np.flatnonzero(~truth)]))


#: the random shift's pixels at 64x64 (DrQ shifts 84x84 frames by 4; the reward models' measured setting)
SHIFT_PAD_64 = 4


def default_augment_pad(image_size: tuple[int, int]) -> int:
    """The random-shift pad for frames of ``image_size`` (H, W): 4 pixels per 64 (4 at 64x64, 5 at
    84x84), and none below 64 pixels a side.

    Below 64 the shift is off because it is what made the reduced RoboFuME reproduction's
    classifiers constant: on 32x32 frames, where the block is 2-3 pixels and success is an
    instruction-dependent position, a shift of 4 (or even 2) pixels left the CNN at the
    class-prior loss on every seed, while no shift separated the held-out frames
    (docs/robofume.md, "Why the reward models were constant").
    """
    side = min(int(image_size[0]), int(image_size[1]))
    return SHIFT_PAD_64 * side // 64 if side >= 64 else 0


def fit_success_model(model: SuccessModel, positives: tuple[np.ndarray, Sequence[str]],
                      negatives: tuple[np.ndarray, Sequence[str]], *, epochs: int = 30, batch_size: int = 32,
                      lr: float = 3e-4, seed: int = 0, weight_decay: float = 1e-4, augment_pad: int | None = None,
                      balance: bool = True) -> dict[str, Any]:
    """Fine-tune ``model`` as a binary success classifier; returns the training metrics.

    The model first fits its data-dependent preprocessing on the training frames
    (:meth:`TorchSuccessModel.adapt`: the config-built VLM's mean frame). Then binary
    cross-entropy on the success logit (for the VLM: the yes-minus-no logit, i.e. the
    two-way softmax over the "yes" and "no" prompts), AdamW, ``epochs`` shuffled passes of
    ``batch_size``, DrQ random shifts of ``augment_pad`` pixels on the images (None:
    :func:`default_augment_pad` of the model's image size). With ``balance`` the positives' loss
    is weighted by n_neg / n_pos so both classes count equally.

    Args:
        positives: (images (P, H, W, 3) uint8, P instructions) that show success.
        negatives: (images (N, H, W, 3) uint8, N instructions) that do not.
    Returns: ``losses`` (mean per epoch), ``loss_first``/``loss_last``, ``train_accuracy``,
        ``constant`` (True when the fitted model gives every training frame the same answer:
        it learned nothing beyond a class prior), ``augment_pad``, ``n_pos``, ``n_neg``,
        ``steps``, ``seconds``.
    """
    if not isinstance(model, TorchSuccessModel):
        raise RewardModelError(f"a '{getattr(model, 'kind', type(model).__name__)}' reward model is not trainable")
    if not model.instructions:
        model.instructions = tuple(sorted(set(map(str, positives[1])) | set(map(str, negatives[1]))))
    images, texts, labels = _labelled(positives, negatives, model)
    model.adapt(images)
    pad = default_augment_pad(model.image_size) if augment_pad is None else int(augment_pad)
    n_pos = int(labels.sum())
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    weight = torch.tensor((len(labels) - n_pos) / n_pos if balance else 1.0)
    loss_fn = nn.BCEWithLogitsLoss(pos_weight=weight)
    optimizer = torch.optim.AdamW(model.network.parameters(), lr=lr, weight_decay=weight_decay)
    all_images, all_labels = torch.from_numpy(images), torch.from_numpy(labels)
    losses, steps, start = [], 0, time.perf_counter()
    model.network.train()
    for _ in range(int(epochs)):
        order = torch.randperm(len(labels), generator=generator)
        total = 0.0
        for begin in range(0, len(order), batch_size):
            index = order[begin:begin + batch_size]
            batch = random_shift(all_images[index], pad, generator)
            loss = loss_fn(model.success_logits(batch, [texts[i] for i in index.tolist()]), all_labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(index)
            steps += 1
        losses.append(total / len(labels))
    predictions = model.predict_proba(images, texts) >= SUCCESS_THRESHOLD
    return {"losses": losses, "loss_first": losses[0] if losses else float("nan"),
            "loss_last": losses[-1] if losses else float("nan"),
            "train_accuracy": float(np.mean(predictions == labels.astype(bool))),
            "constant": bool(predictions.all() or not predictions.any()), "augment_pad": pad, "n_pos": n_pos,
            "n_neg": len(labels) - n_pos, "steps": steps, "seconds": time.perf_counter() - start}


def confusion_table(model: SuccessModel, images: np.ndarray, instructions: Sequence[str],
                    labels: Sequence[int] | np.ndarray) -> dict[str, float]:
    """The paper's Table II figures for ``model`` on labelled frames (label 1 = success).

    Returns ``fp_rate`` = FP / (FP + TN) (failures called success), ``fn_rate`` = FN / (FN + TP),
    ``accuracy``, ``precision`` = TP / (TP + FP), the counts ``tp fp tn fn`` and ``n``; a rate
    whose denominator is 0 is NaN.
    """
    truth = np.asarray(labels).astype(bool).reshape(-1)
    if len(truth) != len(np.asarray(images)):
        raise RewardModelError(f"{len(np.asarray(images))} images but {len(truth)} labels")
    predicted = np.asarray(model.predict_proba(images, instructions)) >= SUCCESS_THRESHOLD
    tp, fp = int(np.sum(predicted & truth)), int(np.sum(predicted & ~truth))
    tn, fn = int(np.sum(~predicted & ~truth)), int(np.sum(~predicted & truth))
    return {**confusion_rates(tp, fp, tn, fn), "tp": tp, "fp": fp, "tn": tn, "fn": fn, "n": len(truth)}


def confusion_rates(tp: int, fp: int, tn: int, fn: int) -> dict[str, float]:
    """Table II's rates from counts: ``fp_rate`` = FP / (FP + TN), ``fn_rate`` = FN / (FN + TP),
    ``accuracy``, ``precision`` = TP / (TP + FP); a rate whose denominator is 0 is NaN."""

    def ratio(num: int, den: int) -> float:
        return num / den if den else float("nan")

    return {"fp_rate": ratio(fp, fp + tn), "fn_rate": ratio(fn, fn + tp), "accuracy": ratio(tp + tn, tp + fp + tn + fn),
            "precision": ratio(tp, tp + fp)}


__all__ = ["CONFIG_FILE", "KINDS", "SUCCESS_THRESHOLD", "CNNSuccessModel", "OracleReward", "RewardModelError",
           "SuccessModel", "TorchSuccessModel", "build_success_model", "by_label", "check_inputs",
           "confusion_rates", "confusion_table", "default_augment_pad", "fit_success_model", "load_success_model"]
