"""INTACT plumbing for the detector: point -> voxel lookup, detector saliency, corruption hooks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robokit.detection.intact import (
    IntactDetectionConfig,
    carry_channels,
    detection_hooks,
    detector_point_saliency,
    point_voxel_index,
)

pytest.importorskip("spconv")

SIZE = (0.5, 0.5, 0.5)
RANGE = (0.0, 0.0, 0.0, 4.0, 4.0, 2.0)


def test_point_voxel_index_agrees_with_the_voxelizer():
    from robokit.pointcloud.voxelizer import voxelize

    rng = np.random.default_rng(0)
    points = rng.uniform([-1, -1, -0.5, 0], [5, 5, 2.5, 1], size=(500, 4)).astype(np.float32)
    features, coords, counts = voxelize(points, SIZE, RANGE)
    index = point_voxel_index(points, coords, SIZE, RANGE)
    inside = (points[:, :3] >= np.array(RANGE[:3])).all(1) & (
        points[:, :3] < np.array(RANGE[3:])
    ).all(1)
    assert ((index >= 0) == inside).all()
    np.testing.assert_array_equal(np.bincount(index[index >= 0], minlength=len(coords)), counts)
    for v in range(len(coords)):  # each voxel's feature is the mean of the points mapped to it
        np.testing.assert_allclose(
            points[index == v].mean(axis=0), features[v], rtol=1e-5, atol=1e-5
        )


def test_carry_channels_follows_dropped_and_moved_points():
    original = np.array([[0, 0, 0, 0.1], [1, 1, 1, 0.2], [2, 2, 2, 0.3]], dtype=np.float32)
    refilled = np.array(
        [[1, 1, 1], [2, 2, 2], [1, 1, 1]], dtype=np.float32
    )  # drop row 0, repeat row 1
    np.testing.assert_allclose(carry_channels(original, refilled)[:, 3], [0.2, 0.3, 0.2])
    moved = original[:, :3] + 0.01
    np.testing.assert_allclose(carry_channels(original, moved)[:, 3], [0.1, 0.2, 0.3])


@pytest.fixture(scope="module")
def scan(shared_data):
    from robokit.detection.dataset import KittiObjectDataset

    return KittiObjectDataset(shared_data / "kitti" / "object")[2]


def _tiny_model():
    from robokit.detection.model import SecondDetector, preset_config

    torch.manual_seed(0)
    return SecondDetector(preset_config("cpu-tiny"))


def test_detector_saliency_ranks_points_on_a_real_scan(scan):
    model = _tiny_model()
    saliency = detector_point_saliency(model, scan.points, scan.gt_boxes, scan.gt_classes)
    assert saliency.shape == (len(scan.points),) and saliency.dtype == np.float32
    assert saliency.min() == 0.0 and saliency.max() == 1.0
    assert model.training  # the mode is restored
    config = model.config
    low, high = np.array(config.point_range[:3]), np.array(config.point_range[3:])
    outside = ((scan.points[:, :3] < low) | (scan.points[:, :3] >= high)).any(
        axis=1
    )  # e.g. beyond 40 m
    assert outside.any()
    assert saliency[outside].max() < np.median(
        saliency[~outside]
    )  # no gradient reaches dropped points


def test_hooks_corrupt_only_after_warmup_and_keep_channels(scan):
    rng = np.random.default_rng(0)
    clouds, targets = [scan.points], [(scan.gt_boxes, scan.gt_classes)]
    assert detection_hooks(IntactDetectionConfig(method="standard")) is None
    hooks = detection_hooks(IntactDetectionConfig(method="random", warmup_epochs=2, clean_fraction=0.0))
    assert hooks.corrupt_batch(clouds, targets, None, 1, rng)[0] is scan.points
    corrupted = hooks.corrupt_batch(clouds, targets, None, 2, rng)[0]
    assert corrupted.shape == scan.points.shape and corrupted.dtype == np.float32
    assert not np.array_equal(corrupted, scan.points)
    assert set(np.unique(corrupted[:, 3])) <= set(
        np.unique(scan.points[:, 3])
    )  # reflectance carried over


def test_intact_serves_the_detector_adapted_teacher_adversarial_corruption_meta_step(scan):
    """The classifier's INTACT (adapted teacher, adversarial corruption, meta-learning) on a real scan."""
    model = _tiny_model()
    config = IntactDetectionConfig(method="intact", warmup_epochs=0, clean_fraction=0.0, attack_steps=1,
                                   drop_candidates=2, task_points=512, task_scenes=1)
    hooks = detection_hooks(config)
    hooks.begin(model, [scan])
    targets = [(scan.gt_boxes, scan.gt_classes)]
    rng = np.random.default_rng(1)
    teacher_before = [p.detach().clone() for p in hooks.teacher.parameters()]
    adapted = []
    original = hooks.meta.adapt
    hooks.meta.adapt = lambda *a, **k: adapted.append(a[0].shape) or original(*a, **k)
    out = hooks.corrupt_batch([scan.points], targets, model, 0, rng)[0]
    assert adapted == [(1, 512, 3)]  # the teacher adapted to this detector before targeting
    assert out.dtype == np.float32 and out.shape[1] == scan.points.shape[1]
    assert not np.array_equal(out, scan.points)
    logs = hooks.after_step(model, 2, rng)  # meta_every=2: a meta-step on a (scan x family x detector) task
    assert set(logs) == {"losses/teacher_query_before", "losses/teacher_query_after"}
    assert not all(torch.equal(a, b) for a, b in zip(teacher_before, hooks.teacher.parameters(), strict=True))
    assert hooks.after_step(model, 3, rng) == {}


def test_hooks_state_survives_a_checkpoint_round_trip(scan, tmp_path):
    """train-detector saves the hooks' state in its checkpoints; --resume restores it (snapshots at begin)."""
    from robokit.core.checkpoint import load_checkpoint, save_checkpoint

    model = _tiny_model()
    config = IntactDetectionConfig(method="intact", curriculum_threshold=0.5)
    hooks = detection_hooks(config)
    hooks.begin(model, [scan])
    hooks.curriculum.report(0.9)  # advance one level
    with torch.no_grad():
        next(hooks.teacher.parameters()).add_(1.0)
    hooks.snapshot(model)
    path = save_checkpoint(tmp_path / "hooks.pt", {"hooks": hooks.state_dict()})
    fresh = detection_hooks(config)
    assert fresh.curriculum.level == 0 and not fresh.snapshots
    fresh.load_state_dict(load_checkpoint(path)["hooks"])
    fresh.begin(model, [scan])
    assert fresh.curriculum.level == hooks.curriculum.level == 1
    assert all(torch.equal(a, b) for a, b in zip(fresh.teacher.parameters(), hooks.teacher.parameters(), strict=True))
    assert len(fresh.snapshots) == 1
    saved, restored = hooks.snapshots[0].state_dict(), fresh.snapshots[0].state_dict()
    assert all(torch.equal(saved[k], restored[k]) for k in saved)


def test_robust_score_reads_only_the_first_score_frames(scan):
    """``score_frames`` bounds the curriculum's per-epoch robust score to the first N training scans."""
    from robokit.detection.intact import DetectionTask

    model = _tiny_model().eval()
    seen = []

    def corrupt(clouds, targets):
        seen.append(len(clouds[0]))
        return clouds

    frames = [scan, scan, scan]
    for score_frames, expected in ((None, 3), (2, 2), (1, 1)):
        task = DetectionTask(IntactDetectionConfig(score_frames=score_frames))
        task.attach(frames)
        seen.clear()
        score = task.robust_score(model, corrupt, np.random.default_rng(0))
        assert len(seen) == expected and 0.0 <= score <= 1.0


def test_train_detector_classes_override_the_preset():
    from pathlib import Path

    from robokit.detection.train import TrainDetectorConfig, _detector_config

    car = _detector_config(TrainDetectorConfig(data=Path("d"), out=Path("o"), preset="cpu-tiny", classes=("Car",)))
    assert car.classes == ("Car",) and len(car.anchor_classes()) == 1
    default = _detector_config(TrainDetectorConfig(data=Path("d"), out=Path("o"), preset="cpu-tiny"))
    assert default.classes == ("Car", "Pedestrian", "Cyclist")


@pytest.mark.parametrize("method", ["intact", "random"])
def test_train_detector_cli_reaches_the_relative_gate(method):
    """``--robust-gate relative`` on ``robokit kitti train-detector`` sets the curriculum's gate (absolute by default)."""
    from robokit.core.config import parse
    from robokit.detection.cli import robust_hooks
    from robokit.detection.train import TrainDetectorConfig

    base = ["--data", "d", "--out", "o", "--robust-method", method]
    default = robust_hooks(parse(TrainDetectorConfig, base, prog="t"))
    relative = robust_hooks(parse(TrainDetectorConfig, base + ["--robust-gate", "relative"], prog="t"))
    assert default.curriculum.gate == "absolute"
    assert relative.curriculum.gate == "relative" and relative.curriculum.min_clean == 0.1
    assert robust_hooks(parse(TrainDetectorConfig, ["--data", "d", "--out", "o"], prog="t")) is None


def test_train_detector_cli_refuses_an_unknown_gate(capsys):
    from robokit.detection.cli import train_main

    with pytest.raises(SystemExit) as exit_:  # the argument parser's own exit, as for every robokit CLI
        train_main(["--data", "d", "--out", "o", "--robust-gate", "median"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "robust-gate" in err and "Traceback" not in err
