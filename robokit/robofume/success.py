"""The seam of RoboFuME's success reward models: the :class:`SuccessModel` Protocol, input checks
and :class:`TorchSuccessModel`, the trainable base of the "vlm" and "cnn" kinds
(:mod:`robokit.robofume.reward` builds, loads and fits them)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch
from torch import nn

#: the file naming a saved model's kind and settings
CONFIG_FILE = "robokit_reward.json"
#: P(success) at or above this is a success (== P(yes) > P(no) for the VLM)
SUCCESS_THRESHOLD = 0.5
_PREDICT_CHUNK = 256


class RewardModelError(ValueError):
    """Bad input to a reward model (missing path, wrong image size, unknown instruction); one line."""


@runtime_checkable
class SuccessModel(Protocol):
    """``(images, instructions) -> P(success)`` and a directory to save to."""

    def predict_proba(self, images: np.ndarray, instructions: Sequence[str]) -> np.ndarray:
        """images (B, H, W, 3) uint8 and B instructions -> (B,) float P(success)."""
        ...

    def save(self, path: str | Path) -> None:
        """Write the model to the directory ``path`` (atomically)."""
        ...


def check_inputs(images: Any, instructions: Sequence[str], image_size: tuple[int, int],
                 known: Sequence[str]) -> tuple[np.ndarray, list[str]]:
    """Validate a batch: ``images`` (B, H, W, 3) uint8 (or one (H, W, 3) image) with ``(H, W) ==
    image_size``, one instruction per image, each in ``known`` (when ``known`` is not empty)."""
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    texts = [instructions] if isinstance(instructions, str) else [str(text) for text in instructions]
    expected = (*image_size, 3)
    if array.ndim != 4 or array.shape[1:] != expected:
        raise RewardModelError(f"images of shape {tuple(array.shape[1:]) if array.ndim == 4 else array.shape}: "
                               f"this reward model takes (B, {expected[0]}, {expected[1]}, 3) uint8")
    if array.dtype != np.uint8:
        raise RewardModelError(f"images of dtype {array.dtype}: this reward model takes uint8 pixels")
    if len(texts) != len(array):
        raise RewardModelError(f"{len(array)} images but {len(texts)} instructions")
    unknown = sorted(set(texts) - set(known)) if known else []
    if unknown:
        raise RewardModelError(f"unknown instruction '{unknown[0]}' (this reward model knows: "
                               + ", ".join(f"'{text}'" for text in known) + ")")
    return array, texts


class TorchSuccessModel:
    """A trainable success model: ``network`` maps a batch to one success logit per image.

    Subclasses set ``kind``, implement :meth:`success_logits` and :meth:`_write` / ``_settings``.
    ``instructions`` is the closed set the model answers for (empty: any instruction).
    """

    kind = ""

    def __init__(self, network: nn.Module, image_size: tuple[int, int], instructions: Sequence[str] = ()) -> None:
        self.network = network
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.instructions = tuple(str(text) for text in instructions)

    def success_logits(self, images: torch.Tensor, instructions: Sequence[str]) -> torch.Tensor:
        """uint8 (B, H, W, 3) tensor and B instructions -> (B,) logit of success (P = sigmoid)."""
        raise NotImplementedError

    def adapt(self, images: np.ndarray) -> None:
        """Fit data-dependent preprocessing on the training frames (B, H, W, 3) uint8 before the
        weights are trained (:func:`robokit.robofume.reward.fit_success_model` calls it). None here."""

    def predict_proba(self, images: np.ndarray, instructions: Sequence[str]) -> np.ndarray:
        """images (B, H, W, 3) uint8, B instructions -> (B,) float64 P(success)."""
        array, texts = check_inputs(images, instructions, self.image_size, self.instructions)
        self.network.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(array), _PREDICT_CHUNK):
                chunk = torch.from_numpy(np.ascontiguousarray(array[start:start + _PREDICT_CHUNK]))
                out.append(torch.sigmoid(self.success_logits(chunk, texts[start:start + _PREDICT_CHUNK])))
        return torch.cat(out).double().numpy() if out else np.zeros(0)

    def settings(self) -> dict[str, Any]:
        """The JSON-able settings written to ``robokit_reward.json`` (kind added by :meth:`save`)."""
        return {"image_size": list(self.image_size), "instructions": list(self.instructions)}

    def save(self, path: str | Path, overwrite: bool = True, extra_files: Mapping[str, str] | None = None) -> None:
        """Write ``robokit_reward.json`` and the weights into the directory ``path``, atomically
        (a temporary directory renamed into place), with ``extra_files`` (name -> text) beside them."""
        from robokit.data.formats.common import atomic_directory

        with atomic_directory(Path(path), overwrite=overwrite) as tmp:
            self._write(tmp)
            config = {"kind": self.kind, **self.settings()}
            (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=1) + "\n")
            for name, text in (extra_files or {}).items():
                (tmp / name).write_text(text)

    def _write(self, directory: Path) -> None:
        raise NotImplementedError
