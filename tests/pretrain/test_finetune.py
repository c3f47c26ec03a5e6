"""Fine-tuning: the frozen encoder stays frozen, frames are encoded once, the state reference works."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robokit.core.checkpoint import load_checkpoint
from robokit.pretrain.data import demos_from_episodes
from robokit.pretrain.finetune import (
    FinetuneConfig,
    HeadOptions,
    finetune,
    fit_policy,
    mean_interval,
    rollout,
)
from robokit.pretrain.objectives import EncoderOptions, PixelEncoder
from robokit.pretrain.training import PretrainConfig, pretrain
from tests.pretrain.conftest import DotGoalEnv, dot_episodes, expert

SMALL = EncoderOptions(embed_dim=8, keypoints=8, cnn_filters=8, cnn_strides=(2, 1))
HEAD = HeadOptions(hidden=(32,), steps=40, batch_size=16)


@pytest.fixture(scope="module")
def encoder_checkpoint(tmp_path_factory, dot_corpus):
    out = tmp_path_factory.mktemp("pretrain") / "run"
    cfg = PretrainConfig(objective="inverse_dynamics", data=out / "unused.npz", out=out, steps=6, batch_size=8,
                         encoder=SMALL, checkpoint_every=3, progress=False, logger=("none",))
    return pretrain(cfg, dot_corpus)["checkpoint"]


def few_demos(count: int = 3, context: int = 5):
    return demos_from_episodes(dot_episodes([context], count, seed=1), source="few")


def test_frozen_encoder_is_bit_identical_after_finetuning_and_has_no_gradients(tmp_path, encoder_checkpoint):
    before = load_checkpoint(encoder_checkpoint)["encoder"]
    cfg = FinetuneConfig(data=tmp_path / "unused", out=tmp_path / "ft", encoder=encoder_checkpoint, head=HEAD,
                         progress=False, logger=("none",))
    result = finetune(cfg, few_demos())
    after = load_checkpoint(result["checkpoint"])["encoder"]
    assert before.keys() == after.keys()
    for name in before:
        assert torch.equal(before[name], after[name]), name
    policy, _, _ = fit_policy(cfg, few_demos(), torch.Generator().manual_seed(0))
    assert not any(p.requires_grad for p in policy.encoder.parameters())
    assert not policy.encoder.training


def test_frames_are_encoded_once_however_many_head_steps(tmp_path, encoder_checkpoint, monkeypatch):
    calls = []
    original = PixelEncoder.forward

    def counting(self, images):
        calls.append(len(images))
        return original(self, images)

    monkeypatch.setattr(PixelEncoder, "forward", counting)
    demos = few_demos()
    cfg = FinetuneConfig(data=tmp_path, out=tmp_path / "ft", encoder=encoder_checkpoint,
                         head=HeadOptions(hidden=(32,), steps=200, batch_size=16))
    fit_policy(cfg, demos, torch.Generator().manual_seed(0))
    assert calls == [len(demos)]  # one batched pass over every frame (< 512), none per head step


def test_state_reference_solves_the_held_out_context_and_rollout_reports_success():
    demos = few_demos(count=10)
    cfg = FinetuneConfig(data=None, out=None, mode="state", head=HeadOptions(hidden=(64, 64), steps=600,
                                                                           batch_size=64, dropout=0.0))
    policy, _, loss = fit_policy(cfg, demos, torch.Generator().manual_seed(0))
    assert loss < 0.05
    scores = rollout(policy, DotGoalEnv(context=5), episodes=10, seed=123)
    assert scores["success_rate"] >= 0.8
    assert rollout(expert, DotGoalEnv(context=5), 5, 0)["success_rate"] == 1.0
    assert rollout(lambda obs, info: np.zeros(2, np.float32), DotGoalEnv(context=5), 5, 0)["success_rate"] < 1.0


def test_scratch_mode_trains_an_encoder_from_random_weights(tmp_path):
    cfg = FinetuneConfig(data=None, out=None, mode="scratch", scratch_encoder=SMALL, shift_pad=2,
                         head=HeadOptions(hidden=(32,), steps=5, batch_size=8))
    policy, state, _ = fit_policy(cfg, few_demos(), torch.Generator().manual_seed(0))
    action = policy(DotGoalEnv(5).reset(seed=0)[0], {})
    assert action.shape == (2,) and np.all(np.abs(action) <= 1)
    assert "model" in state


def test_mean_interval_matches_the_t_interval():
    mean, low, high = mean_interval([1.0, 2.0, 3.0])
    assert mean == 2.0 and high - mean == pytest.approx(4.302653 * 1.0 / np.sqrt(3), rel=1e-5)
    assert mean_interval([0.5]) == (0.5, 0.5, 0.5)
