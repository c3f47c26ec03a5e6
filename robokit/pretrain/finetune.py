"""Fine-tuning on a few demonstrations of a held-out context, and evaluation by rollouts.

Three ways to get a policy from the few demos (official recipe: ``sweeps/finetune_sweep_*.py``,
``sweeps/bc_finetune_scratch_*.py``; defaults in docs/pretrain.md):

- **frozen**: the pretrained encoder is frozen (``requires_grad`` off, eval mode); every frame
  of the demos is encoded ONCE (:func:`encode_frames`, the official ``encode_data=True``) and an
  MLP head is fitted on the cached embeddings (:func:`fit_head`);
- **scratch**: BC from pixels, encoder and head trained together from random weights (the
  ``bc`` objective on the fine-tuning demos, with the random shift);
- **state**: an MLP on the privileged state (the reference a pixel policy is measured against).

:func:`rollout` runs a policy ``policy(obs, info) -> action`` in an env and reports
``success_rate`` (``info["success"]`` at any step) and the mean undiscounted ``return``.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from robokit.core.config import ConfigError, check_ranges
from robokit.pretrain.data import Demos, check_frame, load_demos
from robokit.pretrain.objectives import (
    BehaviourCloning,
    EncoderOptions,
    ObjectiveOptions,
    PixelEncoder,
    mlp_head,
)
from robokit.pretrain.training import make_optimizer

Policy = Callable[[Any, dict], np.ndarray]


@dataclasses.dataclass(frozen=True)
class HeadOptions:
    """The BC head fitted on embeddings or state (``--head.*``); defaults: docs/pretrain.md."""

    hidden: tuple[int, ...] = (256, 256)
    """hidden widths (official policy-mlp-256-0.1)"""
    dropout: float = 0.1
    """dropout after each hidden layer (official 0.1)"""
    steps: int = 10_000
    """gradient steps (official num_steps 10000)"""
    batch_size: int = 256
    """minibatch size (official 256)"""
    lr: float = 1e-3
    """AdamW learning rate before the batch-size scaling and cosine decay (official 1e-3)"""


def freeze(module: nn.Module) -> nn.Module:
    """No gradients, eval mode; returns ``module``."""
    module.requires_grad_(False)
    return module.eval()


@torch.no_grad()
def encode_frames(encoder: nn.Module, frames: np.ndarray | torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """phi of every frame: uint8 (N, H, W, C) -> (N, E) float32, in eval mode without gradients."""
    encoder.eval()
    frames = torch.as_tensor(frames)
    chunks = [encoder(frames[start:start + batch_size]) for start in range(0, len(frames), batch_size)]
    return torch.cat(chunks) if chunks else torch.zeros(0, getattr(encoder, "out_dim", 0))


class ActionHead(nn.Module):
    """``tanh(mlp(x))``: (B, D) -> (B, A) in (-1, 1)."""

    def __init__(self, in_dim: int, action_dim: int, options: HeadOptions = HeadOptions()) -> None:
        super().__init__()
        self.mlp = mlp_head(in_dim, action_dim, options.hidden, options.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.mlp(x))


def fit_head(inputs: torch.Tensor, actions: torch.Tensor, options: HeadOptions, generator: torch.Generator,
             on_step: Callable[[int, float], None] | None = None) -> tuple[ActionHead, float]:
    """BC of an :class:`ActionHead` on fixed inputs (N, D) -> actions (N, A); returns it (eval mode) and
    the last minibatch loss. ``on_step(step, loss)`` is called after each step (progress, logging)."""
    if len(inputs) != len(actions) or len(inputs) == 0:
        raise ValueError(f"fit_head: {len(inputs)} inputs for {len(actions)} actions")
    head = ActionHead(inputs.shape[1], actions.shape[1], options)
    optimizer, schedule = make_optimizer(head.parameters(), options.lr, options.batch_size, options.steps)
    head.train()
    loss = torch.zeros(())
    for step in range(options.steps):
        rows = torch.randint(0, len(inputs), (options.batch_size,), generator=generator)
        loss = F.mse_loss(head(inputs[rows]), actions[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if on_step is not None:
            on_step(step + 1, float(loss.detach()))
    return head.eval(), float(loss.detach())


def _frame(obs: Any, image_key: str | None) -> torch.Tensor:
    """One observation's frame as a uint8 batch of one (1, H, W, C); a dict gives its image part."""
    image = obs[image_key or "image"] if isinstance(obs, dict) else obs
    return torch.as_tensor(np.asarray(image))[None]


class FrozenEncoderPolicy:
    """``head(phi(image))`` for one observation; ``image_key`` picks the image of a dict observation."""

    def __init__(self, encoder: PixelEncoder, head: nn.Module, image_key: str | None = None) -> None:
        self.encoder, self.head, self.image_key = freeze(encoder), head.eval(), image_key

    @torch.no_grad()
    def __call__(self, obs: Any, info: dict) -> np.ndarray:
        return self.head(self.encoder(_frame(obs, self.image_key)))[0].numpy()


class PixelBCPolicy:
    """A :class:`BehaviourCloning` objective (encoder + head) acting on one observation."""

    def __init__(self, model: BehaviourCloning, image_key: str | None = None) -> None:
        self.model, self.image_key = model.eval(), image_key

    @torch.no_grad()
    def __call__(self, obs: Any, info: dict) -> np.ndarray:
        return self.model.act(_frame(obs, self.image_key))[0].numpy()


class StatePolicy:
    """``head(info["state"])``: the privileged-state reference."""

    def __init__(self, head: nn.Module) -> None:
        self.head = head.eval()

    @torch.no_grad()
    def __call__(self, obs: Any, info: dict) -> np.ndarray:
        if "state" not in info:
            raise KeyError("the state-based policy needs info['state'] from the env")
        return self.head(torch.as_tensor(np.asarray(info["state"], np.float32))[None])[0].numpy()


def rollout(policy: Policy, env: Any, episodes: int, seed: int) -> dict[str, float]:
    """Run ``episodes`` episodes (reset seeds ``seed, seed+1, ...``) -> ``success_rate`` and ``return``."""
    successes, returns = [], []
    for episode in range(int(episodes)):
        obs, info = env.reset(seed=int(seed) + episode)
        total, success, done = 0.0, False, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(policy(obs, info))
            total += float(reward)
            success = success or bool(info.get("success", False))
            done = bool(terminated or truncated)
        successes.append(success)
        returns.append(total)
    return {"success_rate": float(np.mean(successes)), "return": float(np.mean(returns))}


def mean_interval(values: Sequence[float], confidence: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the Student-t confidence interval of the mean of ``values`` (one value: no width)."""
    array = np.asarray(values, np.float64)
    mean = float(array.mean())
    if len(array) < 2:
        return mean, mean, mean
    from scipy import stats

    half = float(stats.t.ppf(0.5 + confidence / 2, len(array) - 1) * array.std(ddof=1) / np.sqrt(len(array)))
    return mean, mean - half, mean + half


@dataclasses.dataclass(frozen=True)
class FinetuneConfig:
    """``robokit finetune-bc``: BC on a few demos (frozen pretrained encoder, pixels from scratch, or state)."""

    data: Path
    """the few fine-tuning demos (a robokit replay file, one held-out context)"""
    out: Path
    """run folder (config.yaml, metrics.csv, final.pt, eval.json)"""
    encoder: Path | None = None
    """final.pt of `robokit pretrain` (needed by --mode frozen)"""
    mode: Literal["frozen", "scratch", "state"] = "frozen"
    """frozen: head on cached embeddings; scratch: BC on pixels from random weights; state: BC on privileged state"""
    head: HeadOptions = HeadOptions()
    scratch_encoder: EncoderOptions = EncoderOptions()
    """--mode scratch: the encoder trained from random weights (same options as pretraining)"""
    shift_pad: int = 6
    """--mode scratch: random-shift padding (the official scratch baseline uses pixels_crop)"""
    eval_env: str | None = None
    """env id to roll the policy out in (e.g. robokit/PointMassGoal-v0); none: no rollouts"""
    eval_context: int | None = None
    """the held-out context passed to the env as context=..."""
    eval_episodes: int = 20
    """rollouts (official 100)"""
    seed: int = 0
    """seeds the head, minibatches and rollouts (reset seeds seed*1000, +1, ...)"""
    progress: bool = True
    """show a progress bar"""
    overwrite: bool = False
    """replace the files of a previous run in --out"""
    resume: bool = False
    """reuse a finished run's final.pt (fine-tuning writes one checkpoint, at the end) and re-evaluate"""
    logger: tuple[Literal["console", "csv", "wandb", "none"], ...] = ("csv",)
    """logger adapters (as robokit train)"""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("eval_episodes",), non_negative=("shift_pad",))
        if self.mode == "frozen" and self.encoder is None:
            raise ConfigError("--mode frozen needs --encoder (final.pt of robokit pretrain)")


def make_context_env(env_id: str, context: int | None) -> Any:
    """``make_env(env_id, context=context)`` (actions in [-1, 1]); no ``context`` argument when None."""
    from robokit.envs import make_env

    return make_env(env_id, **({} if context is None else {"context": int(context)}))


def fit_policy(cfg: FinetuneConfig, demos: Demos, generator: torch.Generator,
               on_step: Callable[[int, float], None] | None = None) -> tuple[Policy, dict[str, Any], float]:
    """The policy of ``cfg.mode`` fitted on ``demos``: (policy, checkpoint state, last BC loss)."""
    steps = demos.steps()
    actions = torch.from_numpy(steps["action"])
    if cfg.mode == "state":
        demos.require_state()
        head, loss = fit_head(torch.from_numpy(steps["state"]), actions, cfg.head, generator, on_step)
        return StatePolicy(head), {"head": head.state_dict(), "in_dim": int(steps["state"].shape[1])}, loss
    if cfg.mode == "frozen":
        from robokit.pretrain.training import load_encoder

        encoder = freeze(load_encoder(cfg.encoder))
        check_frame(demos, encoder.frame, f"the encoder {cfg.encoder}")
        embeddings = encode_frames(encoder, steps["image"])
        head, loss = fit_head(embeddings, actions, cfg.head, generator, on_step)
        state = {"head": head.state_dict(), "encoder": encoder.state_dict(),
                 "encoder_description": encoder.describe(), "in_dim": encoder.out_dim}
        return FrozenEncoderPolicy(encoder, head, demos.image_key), state, loss
    return _fit_scratch(cfg, demos, on_step)


def _fit_scratch(cfg: FinetuneConfig, demos: Demos,
                 on_step: Callable[[int, float], None] | None) -> tuple[Policy, dict[str, Any], float]:
    from robokit.pretrain.data import PairSampler
    from robokit.pretrain.training import ObjectiveTrainer

    options = ObjectiveOptions(head_hidden=cfg.head.hidden, head_dropout=cfg.head.dropout)
    model = BehaviourCloning(PixelEncoder(demos.frame, cfg.scratch_encoder), demos.action_dim, options)
    trainer = ObjectiveTrainer(model, PairSampler(demos, k=1), cfg.head.batch_size, cfg.head.steps, cfg.head.lr,
                               cfg.shift_pad, cfg.seed)
    loss = 0.0
    while trainer.step < cfg.head.steps:
        loss = trainer.train_step()["losses/bc"]
        if on_step is not None:
            on_step(trainer.step, loss)
    state = {"model": model.state_dict(), "encoder_description": model.encoder.describe()}
    return PixelBCPolicy(model, demos.image_key), state, loss


def finetune(cfg: FinetuneConfig, demos: Demos | None = None) -> dict:
    """Fit the policy per ``cfg`` into ``cfg.out`` and roll it out in ``cfg.eval_env`` when given.

    Returns:
        {"checkpoint": final.pt path, "bc_loss": float, "eval": {"success_rate", "return"} or {}, "seconds"}
    """
    from tqdm import tqdm

    from robokit.core.atomic import atomic_path
    from robokit.core.config import to_dict
    from robokit.core.runs import FINAL_CHECKPOINT, save_step_checkpoint, start_run

    demos = demos if demos is not None else load_demos(cfg.data)
    if cfg.mode == "state":
        demos.require_state()
    if cfg.mode == "frozen":  # refuse a mismatched encoder before anything is written
        from robokit.pretrain.training import load_encoder

        check_frame(demos, load_encoder(cfg.encoder).frame, f"the encoder {cfg.encoder}")
    run = start_run(cfg, "robokit finetune-bc")
    started = time.perf_counter()
    bar = tqdm(total=cfg.head.steps, desc=f"finetune-bc {cfg.mode}", disable=not cfg.progress, leave=False)

    def on_step(step: int, loss: float) -> None:
        bar.update(1)
        if step % 100 == 0 or step == cfg.head.steps:
            run.logger.log({"losses/bc": loss}, step=step)

    policy, state, loss = fit_policy(cfg, demos, run.seeds.torch_gen, on_step)
    bar.close()
    save_step_checkpoint(run.out, cfg.head.steps, {"mode": cfg.mode, "config": to_dict(cfg), "step": cfg.head.steps,
                                                   **state}, final=True)
    scores: dict[str, float] = {}
    if cfg.eval_env is not None:
        env = make_context_env(cfg.eval_env, cfg.eval_context)
        scores = rollout(policy, env, cfg.eval_episodes, seed=1000 * cfg.seed)
        env.close()
        run.logger.log({f"eval/{key}": value for key, value in scores.items()}, step=cfg.head.steps)
        with atomic_path(run.out / "eval.json") as tmp:
            Path(tmp).write_text(json.dumps({"mode": cfg.mode, "demos": demos.buffer.next_episode_id, **scores}))
    run.logger.close()
    return {"checkpoint": run.out / FINAL_CHECKPOINT, "bc_loss": loss, "eval": scores,
            "seconds": time.perf_counter() - started}
