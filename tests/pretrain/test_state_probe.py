"""The state probe of frozen embeddings (robokit.pretrain.probe): ridge, R^2, and the encoder plumbing.

Hand cases only (numpy and a tiny hand-written torch encoder): no MuJoCo, no training.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robokit.pretrain.probe import embedding_probe, r2_score, ridge_fit, state_probe_r2
from tests.pretrain.conftest import draw


def test_r2_score_against_hand_values() -> None:
    target = np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0]])
    assert r2_score(target, target) == pytest.approx(1.0)
    assert r2_score(np.tile(target.mean(axis=0), (3, 1)), target) == pytest.approx(0.0)  # the mean: 0
    # column 0: residuals (0.5, 0, -0.5) -> SS_res 0.5, SS_tot 2 -> 0.75; column 1: perfect -> 1
    predicted = np.array([[-0.5, 1.0], [1.0, 3.0], [2.5, 5.0]])
    assert r2_score(predicted, target) == pytest.approx((0.75 + 1.0) / 2)
    assert r2_score(-target, target) < 0  # worse than the mean


def test_ridge_fit_primal_and_dual_agree_and_recover_a_linear_map() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5))
    weights, bias = rng.normal(size=(5, 2)), np.array([0.3, -1.0])
    y = x @ weights + bias
    predict = ridge_fit(x, y, alpha=1e-8)  # F <= N: the (F, F) system
    new = rng.normal(size=(7, 5))
    np.testing.assert_allclose(predict(new), new @ weights + bias, atol=1e-6)
    wide = rng.normal(size=(6, 20))  # F > N: the (N, N) system, same ridge solution as sklearn's
    from sklearn.linear_model import Ridge

    target = rng.normal(size=(6, 2))
    reference = Ridge(alpha=0.5).fit(wide, target).predict(new_wide := rng.normal(size=(3, 20)))
    np.testing.assert_allclose(ridge_fit(wide, target, alpha=0.5)(new_wide), reference, atol=1e-8)


def test_state_probe_r2_reads_a_planted_position_and_not_noise() -> None:
    rng = np.random.default_rng(1)
    positions = rng.uniform(-1, 1, size=(200, 2))
    mixing = rng.normal(size=(2, 16))
    embeddings = np.tanh(positions @ mixing * 0.3) + 0.01 * rng.normal(size=(200, 16))  # nearly linear in xy
    assert state_probe_r2(embeddings[:150], positions[:150], embeddings[150:], positions[150:]) > 0.95
    noise = rng.normal(size=(200, 16))
    assert state_probe_r2(noise[:150], positions[:150], noise[150:], positions[150:]) < 0.1


class SpotCentroid(nn.Module):
    """A hand 'encoder': the brightness-weighted (row, col) centroid of a frame, (B, H, W, C) uint8 -> (B, 2)."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        weight = images.float().mean(dim=-1)  # (B, H, W)
        rows = torch.arange(images.shape[1], dtype=torch.float32)[:, None]
        cols = torch.arange(images.shape[2], dtype=torch.float32)[None, :]
        total = weight.sum(dim=(1, 2))
        return torch.stack([(weight * rows).sum(dim=(1, 2)) / total, (weight * cols).sum(dim=(1, 2)) / total], 1)


class Scaled(nn.Module):
    """Another encoder times ``scale``: the same information, at another scale."""

    def __init__(self, inner: nn.Module, scale: float) -> None:
        super().__init__()
        self.inner, self.scale = inner, scale

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.scale * self.inner(images)


class Constant(nn.Module):
    """An encoder that ignores the frame: (B, H, W, C) -> (B, 4) zeros plus one."""

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.ones(len(images), 4)


def test_embedding_probe_encodes_frames_and_scores_a_tracking_encoder_against_a_blind_one() -> None:
    rng = np.random.default_rng(2)
    positions = rng.uniform(-1, 1, size=(60, 2)).astype(np.float32)
    frames = np.stack([draw(p, 24) for p in positions])  # a 3x3 white spot at p, uint8 (60, 24, 24, 3)
    tracking = embedding_probe(SpotCentroid(), frames[:40], positions[:40], frames[40:], positions[40:])
    assert tracking["r2"] > 0.98  # the centroid is the spot's position up to rounding to pixels
    assert tracking["r2_any_scale"] > 0.98
    assert tracking["embedding_std"] > 1.0  # it moves over the frames (pixels)
    tiny = embedding_probe(Scaled(SpotCentroid(), 1e-4), frames[:40], positions[:40], frames[40:], positions[40:])
    assert tiny["r2_any_scale"] > 0.98  # the information is there ...
    assert tiny["r2"] < 0.1  # ... in variations of ~1e-3, which the alpha = 1 probe shrinks away
    blind = embedding_probe(Constant(), frames[:40], positions[:40], frames[40:], positions[40:])
    assert blind["embedding_std"] == 0.0
    assert blind["r2"] <= 0.0 and blind["r2_any_scale"] <= 0.0  # predicts the train mean at best
