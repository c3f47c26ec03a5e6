"""INTACT on a policy's input: perturbation saliency and single-cloud corruptions with extra channels."""

from __future__ import annotations

import numpy as np
import pytest

from robokit.intact.attacks import TargetedCorruptionConfig, corrupt_cloud
from robokit.intact.policy import occlusion_saliency


def test_occlusion_saliency_finds_the_entries_a_policy_reads():
    # a policy that steers by entries 2 and 7 (a bin's range and intensity) and ignores the rest
    def policy(batch):
        scan = batch["scan"]
        return np.stack([scan[:, 2] - 1.0, 3.0 * scan[:, 7] + 0 * batch["proprio"][:, 0]], axis=1)

    obs = {"scan": np.full(10, 0.5, np.float32), "proprio": np.zeros(3, np.float32)}
    groups = np.stack([np.arange(5), 5 + np.arange(5)], axis=1)  # bin b = entries b and 5 + b
    saliency = occlusion_saliency(policy, obs, "scan", groups, np.array([1.0, 0.0]))
    # bin 2: entry 2 0.5 -> 1 moves action 0 by 0.5 (0.5 * 0.25); entry 7 0.5 -> 0 moves action 1 by 1.5
    np.testing.assert_allclose(saliency, [0.0, 0.0, 0.5 * 0.25 + 0.5 * 2.25, 0.0, 0.0])
    with pytest.raises(ValueError, match="groups"):
        occlusion_saliency(policy, obs, "scan", groups, np.array([1.0]))


def test_corrupt_cloud_targets_salient_points_and_keeps_their_other_channels():
    rng = np.random.default_rng(0)
    cloud = np.concatenate([rng.uniform(-1, 1, (200, 3)), np.arange(200)[:, None] / 200], axis=1).astype(np.float32)
    salient = np.zeros(200)
    salient[:50] = 1.0  # the first 50 points matter
    config = TargetedCorruptionConfig()
    kept_targeted = corrupt_cloud(cloud, salient, "drop", 0.5, np.random.default_rng(1), config)
    kept_random = corrupt_cloud(cloud, None, "drop", 0.5, np.random.default_rng(1), config)
    assert kept_targeted.shape == cloud.shape == kept_random.shape  # refilled to N by repeats
    ids_targeted = np.unique(np.round(kept_targeted[:, 3] * 200).astype(int))
    ids_random = np.unique(np.round(kept_random[:, 3] * 200).astype(int))
    assert len(ids_targeted) == len(ids_random) == 200 - 75  # the same budget: 0.5 * 0.75 * 200 dropped
    assert (ids_targeted < 50).sum() < 10 < (ids_random < 50).sum()  # targeted: the salient ones go first
    noisy = corrupt_cloud(cloud, salient, "noise", 1.0, np.random.default_rng(2), config)
    np.testing.assert_array_equal(noisy[:, 3], cloud[:, 3])  # intensity untouched
    np.testing.assert_array_equal(noisy[50:, :3], cloud[50:, :3])  # zero saliency: zero sigma
    assert not np.array_equal(noisy[:50, :3], cloud[:50, :3])
    with pytest.raises(ValueError, match="op"):
        corrupt_cloud(cloud, None, "blur", 0.5, rng)
    with pytest.raises(ValueError, match="saliency"):
        corrupt_cloud(cloud, salient[:10], "drop", 0.5, rng)
