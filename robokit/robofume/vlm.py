"""A CLIP-style vision-language success classifier (Hugging Face ``transformers``).

RoboFuME (arXiv 2310.15145) asks a VLM whether the instructed task is done and reads success off
the model's preference for the answer "yes" over "no". robokit does the same with a contrastive
CLIP model: each instruction is written into two prompts, ``yes_template`` and ``no_template``
(by default "is the task <instruction> done? yes" / "... no"); the image is scored against both by
CLIP's scaled cosine similarity, and the two-way softmax gives P(yes). Success is P(yes) > P(no),
i.e. P(yes) >= 0.5. Fine-tuning is binary cross-entropy on that softmax (all weights trained).

Two ways to get the model:

- :func:`build_vlm` with ``pretrained=<folder>``: a CLIP folder saved by ``save_pretrained``
  (for example ``openai/clip-vit-base-patch32`` downloaded elsewhere), read with
  ``local_files_only=True`` (nothing is downloaded), its own tokenizer and image mean/std;
- :func:`build_vlm` with ``instructions=[...]``: a tiny CLIP built from a config, random initial
  weights, and a word-level tokenizer trained here on the prompts (tests, reduced reproduction).

Either saves as a ``from_pretrained`` folder (config.json, model.safetensors, tokenizer files) plus
``robokit_reward.json`` (and ``mean_frame.npy`` when the frames are centred).

**Centred frames** (``center_frames``, on for the config-built CLIP, off for pretrained weights):
the training frames' per-pixel mean replaces CLIP's per-channel mean in the normalisation, so a
pixel reads as its difference from the average scene. Without it a randomly initialised ViT embeds
reset-free frames, which share all but a few pixels, almost identically (cosine >= 0.9995 between
any two frames of PushBackForth-v1), and the class-balanced loss has a minimum the text tower
reaches alone: it merges the "yes" and "no" prompt embeddings (P = 0.5 for every frame), after which
the image tower gets no gradient (docs/robofume_reward.md, "Why the tiny CLIP was constant").
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from robokit.robofume.success import CONFIG_FILE, RewardModelError, TorchSuccessModel

#: the prompts whose preference decides success (``{instruction}`` is filled in)
YES_TEMPLATE = "is the task {instruction} done? yes"
NO_TEMPLATE = "is the task {instruction} done? no"
#: CLIP's image normalisation (openai/clip-vit-*: preprocessor_config.json)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[BOS]", "[EOS]")
#: the centred model's mean training frame (H, W, 3) float32 in [0, 1], beside the weights
MEAN_FRAME_FILE = "mean_frame.npy"
#: the tiny config-built towers (overridable through build_vlm's ``tiny=`` dict)
TINY = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
        "patch_size": 8, "projection_dim": 64}


def _transformers() -> Any:
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("the 'vlm' reward model needs transformers: pip install -c constraints.txt "
                          "'robokit[robofume]'") from err
    transformers.utils.logging.disable_progress_bar()  # no per-shard bars in training logs
    return transformers


def train_word_tokenizer(texts: Sequence[str]) -> Any:
    """A lower-cased word-level tokenizer over the words of ``texts`` (punctuation split off),
    wrapped as a ``PreTrainedTokenizerFast`` that adds [BOS] ... [EOS] and pads with [PAD]."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(list(texts), trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS)))
    bos, eos = tokenizer.token_to_id("[BOS]"), tokenizer.token_to_id("[EOS]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[BOS] $A [EOS]", special_tokens=[("[BOS]", bos), ("[EOS]", eos)])
    return _transformers().PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", bos_token="[BOS]", eos_token="[EOS]")


def prompts_for(instructions: Sequence[str], yes_template: str = YES_TEMPLATE,
                no_template: str = NO_TEMPLATE) -> list[str]:
    """[yes prompt, no prompt] for each instruction, flattened (2 * len(instructions) strings)."""
    return [template.format(instruction=text) for text in instructions for template in (yes_template, no_template)]


def tiny_clip(tokenizer: Any, image_size: int, max_words: int, tiny: Mapping[str, int] | None = None) -> Any:
    """A small randomly initialised ``CLIPModel`` whose text tower matches ``tokenizer`` (vocabulary,
    [PAD]/[BOS]/[EOS] ids, so the pooled token is [EOS]) and whose vision tower takes
    ``image_size`` pixels a side."""
    transformers = _transformers()
    sizes = {**TINY, **(tiny or {})}
    tower = {key: sizes[key] for key in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads")}
    text = dict(tower, vocab_size=len(tokenizer), max_position_embeddings=max_words + 2,
                pad_token_id=tokenizer.pad_token_id, bos_token_id=tokenizer.bos_token_id,
                eos_token_id=tokenizer.eos_token_id)
    vision = dict(tower, image_size=image_size, patch_size=sizes["patch_size"], num_channels=3)
    config = transformers.CLIPConfig(text_config=text, vision_config=vision, projection_dim=sizes["projection_dim"])
    return transformers.CLIPModel(config)


class VLMSuccessModel(TorchSuccessModel):
    """A ``transformers`` CLIP model and its tokenizer as a success classifier (module docstring)."""

    kind = "vlm"

    def __init__(self, clip: Any, tokenizer: Any, image_size: tuple[int, int] = (64, 64),
                 instructions: Sequence[str] = (), yes_template: str = YES_TEMPLATE, no_template: str = NO_TEMPLATE,
                 image_mean: Sequence[float] = CLIP_MEAN, image_std: Sequence[float] = CLIP_STD,
                 center_frames: bool = False, mean_frame: np.ndarray | None = None) -> None:
        super().__init__(clip, image_size, instructions)
        self.clip: Any = clip  # the same module as ``network``, typed for transformers' methods
        self.tokenizer = tokenizer
        self.templates = (str(yes_template), str(no_template))
        self.image_mean, self.image_std = [float(v) for v in image_mean], [float(v) for v in image_std]
        self.vision_size = int(clip.config.vision_config.image_size)
        self.center_frames = bool(center_frames)
        self.mean_frame = None if mean_frame is None else torch.from_numpy(
            np.asarray(mean_frame, np.float32)).permute(2, 0, 1)  # (3, H, W) in [0, 1]

    def adapt(self, images: np.ndarray) -> None:
        """With ``center_frames``, keep the frames' per-pixel mean (once: a fitted model keeps its
        preprocessing when trained further). images (B, H, W, 3) uint8."""
        if self.center_frames and self.mean_frame is None:
            mean = np.asarray(images, np.float64).mean(axis=0) / 255.0
            self.mean_frame = torch.from_numpy(mean.astype(np.float32)).permute(2, 0, 1)

    def pixel_values(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 (B, H, W, 3) -> normalised float (B, 3, S, S) at the vision tower's size S
        (bilinear resize with antialiasing when H, W != S): (x - mean) / std, the mean being the
        mean frame when the model has one (centred frames), else the per-channel ``image_mean``."""
        x = images.permute(0, 3, 1, 2).float() / 255.0
        if self.mean_frame is not None:
            x = x - self.mean_frame
        if tuple(x.shape[-2:]) != (self.vision_size, self.vision_size):
            x = F.interpolate(x, size=(self.vision_size, self.vision_size), mode="bilinear",
                              align_corners=False, antialias=True)
        mean = torch.tensor(self.image_mean).view(1, 3, 1, 1) if self.mean_frame is None else 0.0
        std = torch.tensor(self.image_std).view(1, 3, 1, 1)
        return (x - mean) / std

    def prompt_logits(self, images: torch.Tensor, instructions: Sequence[str]) -> torch.Tensor:
        """(B, 2) CLIP logits of each image against its instruction's [yes, no] prompts."""
        unique = sorted(set(instructions))
        tokens = self.tokenizer(prompts_for(unique, *self.templates), padding=True, return_tensors="pt")
        text = _pooled(self.clip.get_text_features(input_ids=tokens["input_ids"],
                                                      attention_mask=tokens["attention_mask"]))
        image = _pooled(self.clip.get_image_features(pixel_values=self.pixel_values(images)))
        text = F.normalize(text, dim=-1).view(len(unique), 2, -1)
        image = F.normalize(image, dim=-1)
        rows = torch.tensor([unique.index(t) for t in instructions])
        scale = self.clip.logit_scale.exp()
        return scale * torch.einsum("bd,bkd->bk", image, text[rows])

    def success_logits(self, images: torch.Tensor, instructions: Sequence[str]) -> torch.Tensor:
        """logit(yes) - logit(no): its sigmoid is the two-way softmax P(yes)."""
        logits = self.prompt_logits(images, instructions)
        return logits[:, 0] - logits[:, 1]

    def settings(self) -> dict[str, Any]:
        return {**super().settings(), "yes_template": self.templates[0], "no_template": self.templates[1],
                "image_mean": self.image_mean, "image_std": self.image_std, "center_frames": self.center_frames}

    def _write(self, directory: Path) -> None:
        self.clip.save_pretrained(directory)  # config.json + model.safetensors
        self.tokenizer.save_pretrained(directory)
        if self.mean_frame is not None:
            np.save(directory / MEAN_FRAME_FILE, self.mean_frame.permute(1, 2, 0).numpy(), allow_pickle=False)

    @classmethod
    def from_pretrained(cls, path: str | Path, image_size: tuple[int, int] = (64, 64),
                        instructions: Sequence[str] = (), **settings: Any) -> VLMSuccessModel:
        """A CLIP folder (``save_pretrained`` layout) read with ``local_files_only=True``; its
        image mean/std from ``preprocessor_config.json`` when present, else CLIP's."""
        directory = Path(path)
        if not (directory / "config.json").exists():
            raise RewardModelError(f"{directory}: no config.json (not a Hugging Face model folder)")
        transformers = _transformers()
        clip = transformers.CLIPModel.from_pretrained(directory, local_files_only=True)
        tokenizer = transformers.AutoTokenizer.from_pretrained(directory, local_files_only=True)
        processor = directory / "preprocessor_config.json"
        if processor.exists() and "image_mean" not in settings:
            values = json.loads(processor.read_text())
            settings = {"image_mean": values.get("image_mean", CLIP_MEAN),
                        "image_std": values.get("image_std", CLIP_STD), **settings}
        return cls(clip, tokenizer, image_size, instructions, **settings)

    @classmethod
    def load(cls, directory: Path, config: Mapping[str, Any]) -> VLMSuccessModel:
        """A model written by :meth:`save` (``config`` is its ``robokit_reward.json``; its mean
        frame from ``mean_frame.npy`` when saved centred)."""
        keys = ("yes_template", "no_template", "image_mean", "image_std", "center_frames")
        settings = {key: config[key] for key in keys if key in config}
        if (directory / MEAN_FRAME_FILE).exists():
            settings["mean_frame"] = _mean_frame(directory / MEAN_FRAME_FILE, tuple(config["image_size"]))
        return cls.from_pretrained(directory, tuple(config["image_size"]), config.get("instructions", ()), **settings)


def _mean_frame(path: Path, image_size: tuple[int, int]) -> np.ndarray:
    """The saved (H, W, 3) mean frame, checked against the model's image size."""
    frame = np.load(path, allow_pickle=False)
    if frame.shape != (*image_size, 3):
        raise RewardModelError(f"{path}: mean frame of shape {frame.shape}, the model takes ({image_size[0]}, "
                               f"{image_size[1]}, 3) images")
    return frame


def _pooled(output: Any) -> torch.Tensor:
    """The projected embedding from ``get_*_features`` (a tensor, or an output's ``pooler_output``)."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def build_vlm(instructions: Sequence[str] = (), image_size: tuple[int, int] | int = (64, 64),
              pretrained: str | Path | None = None, yes_template: str = YES_TEMPLATE,
              no_template: str = NO_TEMPLATE, seed: int = 0, tiny: Mapping[str, int] | None = None,
              center_frames: bool | None = None) -> VLMSuccessModel:
    """A "vlm" success model: from the CLIP folder ``pretrained`` (no download), or else a tiny
    CLIP built from a config (``seed``-ed random weights; ``tiny`` overrides :data:`TINY`) with a
    word-level tokenizer trained on the prompts of ``instructions`` (required then).
    ``center_frames`` (None: on for the config-built model, off for pretrained weights, which keep
    their own normalisation) subtracts the training frames' mean frame (module docstring)."""
    size = (int(image_size), int(image_size)) if isinstance(image_size, int) else tuple(int(s) for s in image_size)
    if pretrained is not None:
        return VLMSuccessModel.from_pretrained(pretrained, size, instructions, yes_template=yes_template,  # type: ignore[arg-type]
                                               no_template=no_template, center_frames=bool(center_frames))
    if not instructions:
        raise RewardModelError("a config-built 'vlm' needs its instructions (to build its tokenizer's vocabulary)")
    prompts = prompts_for(instructions, yes_template, no_template)
    tokenizer = train_word_tokenizer(prompts)
    max_words = max(len(tokenizer(prompt, add_special_tokens=False)["input_ids"]) for prompt in prompts)
    torch.manual_seed(seed)
    clip = tiny_clip(tokenizer, size[0], max_words, tiny)
    return VLMSuccessModel(clip, tokenizer, size, instructions, yes_template, no_template,  # type: ignore[arg-type]
                           center_frames=True if center_frames is None else center_frames)


__all__ = ["CONFIG_FILE", "MEAN_FRAME_FILE", "VLMSuccessModel", "build_vlm", "prompts_for", "tiny_clip", "train_word_tokenizer"]
