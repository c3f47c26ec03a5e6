"""Procedural shapes: layout, determinism, intra-class variation, and not separable by one statistic."""

import numpy as np
import pytest

from robokit.pointcloud.io import load_modelnet_h5, read_shape_names
from robokit.pointcloud.procedural import (
    PROCEDURAL_CLASSES,
    make_procedural_dataset,
    prepare_procedural,
    sample_shape,
)


@pytest.fixture(scope="module")
def small_set():
    return make_procedural_dataset(6, num_points=256, seed=0)


def test_layout_and_unit_sphere(small_set):
    data, label = small_set
    assert len(PROCEDURAL_CLASSES) >= 10
    assert data.shape == (6 * len(PROCEDURAL_CLASSES), 256, 3) and data.dtype == np.float32
    assert label.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(label), [6] * len(PROCEDURAL_CLASSES))
    radius = np.linalg.norm(data, axis=2)
    np.testing.assert_allclose(radius.max(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(data.mean(axis=1), 0.0, atol=1e-5)


def test_deterministic_from_seed(small_set):
    again, label = make_procedural_dataset(6, num_points=256, seed=0)
    np.testing.assert_array_equal(again, small_set[0])
    other, _ = make_procedural_dataset(6, num_points=256, seed=1)
    assert not np.allclose(other, small_set[0])


def test_objects_of_a_class_differ_in_shape(small_set):
    data, label = small_set
    for k in range(len(PROCEDURAL_CLASSES)):
        extents = np.ptp(data[label == k], axis=1)  # (6, 3) bounding-box size per object
        assert extents.std(axis=0).max() > 0.02, PROCEDURAL_CLASSES[k]


def test_no_single_statistic_separates_the_classes():
    """A 5-NN on any one global statistic stays far from perfect (13 classes, chance 7.7 %)."""
    train, train_label = make_procedural_dataset(30, num_points=256, seed=0)
    test, test_label = make_procedural_dataset(10, num_points=256, seed=1)

    def statistics(clouds):
        radius = np.linalg.norm(clouds, axis=2)
        extent = np.ptp(clouds, axis=1)
        eig = np.stack([np.linalg.eigvalsh(np.cov(c.T)) for c in clouds])
        return {
            "radius_mean": radius.mean(1),
            "radius_std": radius.std(1),
            "extent_x": extent[:, 0],
            "extent_y": extent[:, 1],
            "extent_z": extent[:, 2],
            "eig_min": eig[:, 0],
            "eig_max": eig[:, 2],
        }

    train_stats, test_stats = statistics(train), statistics(test)
    for name in train_stats:
        gaps = np.abs(test_stats[name][:, None] - train_stats[name][None])
        votes = train_label[np.argsort(gaps, axis=1)[:, :5]]
        predicted = np.array(
            [np.bincount(v, minlength=len(PROCEDURAL_CLASSES)).argmax() for v in votes]
        )
        assert (predicted == test_label).mean() < 0.6, name


def test_unknown_class_is_named():
    with pytest.raises(KeyError, match="spaceship"):
        sample_shape("spaceship", 10, np.random.default_rng(0))


def test_prepare_writes_modelnet_layout(tmp_path):
    out = prepare_procedural(
        tmp_path / "proc", n_train_per_class=2, n_test_per_class=1, num_points=64
    )
    assert sorted(p.name for p in out.iterdir()) == [
        "ply_data_test0.h5",
        "ply_data_train0.h5",
        "shape_names.txt",
        "test_files.txt",
        "train_files.txt",
    ]
    train, train_label = load_modelnet_h5(out, "train")
    test, test_label = load_modelnet_h5(out, "test")
    assert train.shape == (2 * len(PROCEDURAL_CLASSES), 64, 3) and test.shape[0] == len(
        PROCEDURAL_CLASSES
    )
    assert read_shape_names(out) == list(PROCEDURAL_CLASSES)
    assert not np.allclose(train[0], test[0])  # disjoint seeds for the two splits
    np.testing.assert_array_equal(np.unique(train_label), np.arange(len(PROCEDURAL_CLASSES)))


def test_yaw_range_controls_alignment():
    """Cars are longer than wide: aligned (yaw 0) they always point along x, with yaw 180 not."""
    aligned, _ = make_procedural_dataset(
        12, num_points=256, seed=0, classes=("car",), max_yaw_deg=0
    )
    turned, _ = make_procedural_dataset(12, num_points=256, seed=0, classes=("car",))
    along_x = lambda clouds: np.ptp(clouds[:, :, 0], axis=1) > np.ptp(clouds[:, :, 2], axis=1)  # noqa: E731
    assert along_x(aligned).all()
    assert not along_x(turned).all()
