"""DGCNN: shapes, the kNN graph, permutation invariance, any cloud size, the backbone registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial import cKDTree

from robokit.pointcloud.backbones import BACKBONES, build_classifier
from robokit.pointcloud.dgcnn import DGCNN_K, DGCNNClassifier, edge_features, knn_indices


def _tiny(k=8, classes=5):
    torch.manual_seed(0)
    return DGCNNClassifier(classes, k=k, widths=(8, 8, 16, 16), emb_dims=32, hidden=(16, 16))


def test_knn_matches_a_kd_tree():
    points = np.random.default_rng(0).normal(size=(2, 60, 3)).astype(np.float32)
    index = knn_indices(torch.from_numpy(points).transpose(1, 2), 6).numpy()
    for b in range(2):
        _, expected = cKDTree(points[b]).query(points[b], k=6)
        assert all(set(index[b, i]) == set(expected[i]) for i in range(60))


def test_edge_features_by_hand():
    # three points on a line at x = 0, 1, 3 (1 channel): nearest two of each, self included
    x = torch.tensor([[[0.0, 1.0, 3.0]]])
    edges = edge_features(x, 2)  # (1, 2, 3, 2): [x_j - x_i, x_i]
    assert edges.shape == (1, 2, 3, 2)
    assert sorted(edges[0, 0, 0].tolist()) == [0.0, 1.0]  # point 0: itself and point 1
    assert sorted(edges[0, 0, 2].tolist()) == [-2.0, 0.0]  # point 2: point 1 and itself
    assert edges[0, 1].tolist() == [[0.0, 0.0], [1.0, 1.0], [3.0, 3.0]]


def test_official_defaults_and_registry():
    model = DGCNNClassifier(40)
    assert model.k == DGCNN_K == 20
    assert [layer.mlp[0].out_channels for layer in model.edge_convs] == [64, 64, 128, 256]
    assert model.lift[0].out_channels == 1024 and model.head[0].in_features == 2048
    assert "dgcnn" in BACKBONES
    small = build_classifier("dgcnn", 7, width=0.25, k=10)
    assert isinstance(small, DGCNNClassifier) and small.k == 10
    assert [layer.mlp[0].out_channels for layer in small.edge_convs] == [16, 16, 32, 64]


def test_logits_shape_and_point_gradients():
    model = _tiny()
    points = torch.rand(3, 50, 3, requires_grad=True)
    logits = model(points)
    assert logits.shape == (3, 5)
    logits.sum().backward()
    assert points.grad is not None and points.grad.abs().sum() > 0


def test_permutation_invariant():
    model = _tiny().eval()
    points = torch.rand(2, 64, 3)
    permuted = points[:, torch.randperm(64)]
    with torch.no_grad():
        assert torch.allclose(model(points), model(permuted), atol=1e-5)


@pytest.mark.parametrize("num_points", [1, 5, 300])
def test_any_cloud_size_even_below_k(num_points):
    model = _tiny(k=8).eval()
    with torch.no_grad():
        assert model(torch.rand(2, num_points, 3)).shape == (2, 5)


def test_graph_is_dynamic_density_changes_the_output():
    """Halving the density changes every kNN neighbourhood, so the features (unlike a max-pooled
    PointNet's on a subset of its own points) move."""
    model = _tiny().eval()
    points = torch.rand(1, 200, 3)
    with torch.no_grad():
        assert not torch.allclose(model(points), model(points[:, ::2]), atol=1e-4)


def test_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        _tiny()(torch.rand(2, 10, 4))
    with pytest.raises(ValueError, match="k must be"):
        DGCNNClassifier(3, k=0)


def test_dgcnn_trains_with_intact_and_reloads_with_its_k(tmp_path):
    """Teacher targets, snapshots and PGD go through DGCNN; the checkpoint rebuilds the same k."""
    from robokit.intact.evaluate import load_classifier
    from robokit.intact.train import TrainConfig, load_dataset, predict, train

    cfg = TrainConfig(method="intact", backbone="dgcnn", dgcnn_k=5, epochs=2, warmup_epochs=1, width=0.125,
                      num_points=48, train_per_class=4, test_per_class=1, dataset_points=128, batch_size=16,
                      task_clouds=8, progress=False, out=tmp_path / "run")
    data = load_dataset(cfg)
    trained = train(cfg, data)["trainer"].model
    model, state = load_classifier(tmp_path / "run" / "final.pt")
    assert isinstance(model, DGCNNClassifier) and model.k == 5 and state["backbone"] == "dgcnn"
    clouds = data.test_points[:, :48]
    assert np.array_equal(predict(model, clouds), predict(trained, clouds))
