"""ModelNet-C's protocol: corrupt at the input size, classify the survivors (no resampling back up)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robokit.intact import evaluate
from robokit.intact.evaluate import evaluate_sets
from robokit.intact.protocol import (
    MODELNET_C_POINTS,
    accuracy_clouds,
    build_suite,
    corrupt_clouds,
    mean_ci95,
    predict_clouds,
)
from robokit.pointcloud.corruptions import modelnet_c


class CountsPoints(nn.Module):
    """A fixed 'classifier' whose answer depends only on how many points it is given:
    class 0 when it sees at least 1,000 points, class 1 otherwise (a stand-in for a model
    whose features depend on density)."""

    num_classes = 2

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        margin = torch.full((points.shape[0],), float(points.shape[1] - 1000))
        return torch.stack([margin, -margin], dim=1)


def _clouds(count=6, points=MODELNET_C_POINTS, seed=0):
    rng = np.random.default_rng(seed)
    clouds = rng.normal(size=(count, points, 3)).astype(np.float32)
    return clouds / np.linalg.norm(clouds, axis=-1).max(axis=1)[:, None, None]


def test_a_point_count_dependent_model_sees_a_global_drop():
    """Failed under the old protocol: resampling back to the input size hid every global drop."""
    clouds, labels = _clouds(), np.zeros(6, dtype=np.int64)
    model = CountsPoints()
    exact = evaluate_sets(model, evaluate.build_suite(clouds, "modelnet-c", MODELNET_C_POINTS), labels)
    assert exact["clean"] == 1.0
    assert exact["accuracy"]["dropout_global"] == dict.fromkeys(modelnet_c.LEVELS, 0.0)
    assert exact["accuracy"]["add_global"] == dict.fromkeys(modelnet_c.LEVELS, 1.0)
    old = evaluate.build_suite(clouds, "modelnet-c", MODELNET_C_POINTS, protocol="resample")
    assert all(accuracy_clouds(model, old[("dropout_global", lv)], labels) == 1.0 for lv in modelnet_c.LEVELS)


def test_survivor_counts_are_modelnet_c_s():
    clouds = _clouds(3)
    sets = build_suite(clouds, MODELNET_C_POINTS, seed=1)
    for level in modelnet_c.LEVELS:
        sizes = {
            name: {len(c) for c in sets[(name, level)]}
            for name in ("dropout_global", "dropout_local", "add_global", "add_local", "jitter")
        }
        assert sizes["dropout_global"] == {int(1024 * (1 - modelnet_c.DROPOUT_GLOBAL_RATE[level]))}
        assert sizes["dropout_local"] == {1024 - modelnet_c.DROPOUT_LOCAL_POINTS[level]}
        assert sizes["add_global"] == {1024 + modelnet_c.ADD_GLOBAL_POINTS[level]}
        assert sizes["add_local"] == {1024 + modelnet_c.ADD_LOCAL_POINTS[level]}
        assert sizes["jitter"] == {1024}


def test_smaller_input_size_thins_every_cloud_by_the_same_factor():
    sets = build_suite(_clouds(3), 256, seed=2)
    assert {len(c) for c in sets[("clean", -1)]} == {256}
    assert {len(c) for c in sets[("dropout_global", 2)]} == {128}  # 512 survivors / 4
    assert {len(c) for c in sets[("add_local", 4)]} == {round(1524 / 4)}


def test_clouds_of_other_sizes_are_brought_to_1024_before_corruption():
    sets = build_suite(_clouds(2, points=2048), MODELNET_C_POINTS, seed=0)
    assert {len(c) for c in sets[("clean", -1)]} == {1024}
    assert {len(c) for c in sets[("dropout_global", 0)]} == {768}


def test_suites_are_deterministic_per_seed():
    clouds = _clouds(2)
    a, b = build_suite(clouds, 512, seed=3), build_suite(clouds, 512, seed=3)
    c = build_suite(clouds, 512, seed=4)
    assert all(np.array_equal(x, y) for x, y in zip(a[("add_local", 1)], b[("add_local", 1)], strict=True))
    assert not np.array_equal(a[("jitter", 1)][0], c[("jitter", 1)][0])


def test_unknown_protocol_is_refused():
    with pytest.raises(ValueError, match="protocol"):
        corrupt_clouds(_clouds(1), "jitter", 0, 1024, np.random.default_rng(0), protocol="pad")


def test_ragged_prediction_matches_cloud_by_cloud():
    torch.manual_seed(0)

    class MaxPool(nn.Module):
        def __init__(self):
            super().__init__()
            self.mlp = nn.Linear(3, 4)

        def forward(self, points):
            return self.mlp(points).max(dim=1).values

    model = MaxPool()
    rng = np.random.default_rng(0)
    clouds = [rng.normal(size=(n, 3)).astype(np.float32) for n in (5, 9, 5, 1, 9)]
    one_by_one = [int(model(torch.from_numpy(c)[None]).argmax()) for c in clouds]
    assert predict_clouds(model, clouds, batch_size=2).tolist() == one_by_one


def test_mean_ci95_by_hand():
    ci = mean_ci95([1.0, 2.0, 3.0, 4.0, 5.0])
    # t(0.975, 4) = 2.7764, std = sqrt(2.5)
    assert ci["mean"] == 3.0 and ci["n"] == 5
    assert ci["ci95"] == pytest.approx(2.7764 * np.sqrt(2.5) / np.sqrt(5), rel=1e-4)
    assert mean_ci95([0.5])["ci95"] == 0.0
