"""INTACT pieces: targeted corruptions, PGD, the training loop (determinism, methods) and CE metrics."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from robokit.intact.attacks import (
    TargetedCorruptionConfig,
    pgd_attack,
    random_drop,
    resample_to,
    targeted_corruption,
)
from robokit.intact.evaluate import DGCNN_MODELNET_C, error_metrics
from robokit.intact.train import RobustTrainer, TrainConfig, load_dataset, train
from robokit.pointcloud.backbones import PointNetClassifier

TINY = TrainConfig(epochs=3, warmup_epochs=1, width=0.25, num_points=64, train_per_class=6, test_per_class=2,
                   dataset_points=256, batch_size=16, progress=False, task_clouds=8)


def _clouds(batch=4, n=100, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, size=(batch, n, 3)).astype(np.float32)


def test_resample_to_subsets_and_refills():
    rng = np.random.default_rng(0)
    cloud = np.arange(30, dtype=np.float32).reshape(10, 3)
    subset = resample_to(cloud, 4, rng)
    assert subset.shape == (4, 3) and len({tuple(r) for r in subset}) == 4
    refilled = resample_to(cloud, 25, rng)
    assert refilled.shape == (25, 3)
    assert {tuple(r) for r in refilled} == {tuple(r) for r in cloud}  # all originals kept, only repeats added
    with pytest.raises(ValueError, match="empty"):
        resample_to(cloud[:0], 5, rng)


def test_targeted_drop_removes_salient_points_first():
    points = _clouds(8, 200)
    points[:, :, 0] = np.arange(200, dtype=np.float32)  # x encodes the point's identity
    saliency = np.zeros((8, 200), dtype=np.float32)
    saliency[:, :50] = 1.0  # the first 50 points are the salient ones
    config = TargetedCorruptionConfig(ops=("drop",), max_drop=0.5)
    targeted = targeted_corruption(points, saliency, 1.0, np.random.default_rng(0), config)
    untargeted = targeted_corruption(points, None, 1.0, np.random.default_rng(0), config)

    def salient_survivors(batch):
        return np.mean([len(np.unique(cloud[:, 0][cloud[:, 0] < 50])) for cloud in batch])

    assert targeted.shape == points.shape
    # 100 of 200 points go: uniform drop keeps about half the salient points, targeted far fewer
    assert salient_survivors(untargeted) == pytest.approx(25, abs=6)
    assert salient_survivors(targeted) < 8


def test_saliency_scaled_noise_leaves_unsalient_points_in_place():
    points = _clouds(2, 50)
    saliency = np.zeros((2, 50), dtype=np.float32)
    saliency[:, ::2] = 1.0
    out = targeted_corruption(points, saliency, 1.0, np.random.default_rng(1),
                              TargetedCorruptionConfig(ops=("noise",), max_sigma=0.05))
    moved = np.linalg.norm(out - points, axis=-1)
    assert np.all(moved[:, 1::2] == 0)
    assert 0.05 < np.std(out[:, ::2] - points[:, ::2]) < 0.2  # sigma = 0.05 * 2 * 1


def test_corruptions_are_deterministic_given_the_generator():
    points, saliency = _clouds(), np.random.default_rng(5).random((4, 100)).astype(np.float32)
    a = targeted_corruption(points, saliency, 0.6, np.random.default_rng(3))
    b = targeted_corruption(points, saliency, 0.6, np.random.default_rng(3))
    c = targeted_corruption(points, saliency, 0.6, np.random.default_rng(4))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(random_drop(points, 0.5, np.random.default_rng(2)),
                          random_drop(points, 0.5, np.random.default_rng(2)))


def test_targeted_corruption_rejects_bad_input():
    with pytest.raises(ValueError, match=r"\(B, N, 3\)"):
        targeted_corruption(np.zeros((5, 3), np.float32), None, 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="saliency shape"):
        targeted_corruption(_clouds(), np.zeros((4, 7)), 0.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown targeted ops"):
        targeted_corruption(_clouds(), None, 0.5, np.random.default_rng(0), TargetedCorruptionConfig(ops=("melt",)))


def test_pgd_stays_in_the_ball_and_raises_the_loss():
    torch.manual_seed(0)
    model = PointNetClassifier(3, widths=(16, 32), hidden=16).eval()
    points = torch.from_numpy(_clouds(6, 64))
    labels = model(points).argmax(1)  # attack the model's own predictions
    adv = pgd_attack(model, points, labels, eps=0.05, steps=5, generator=torch.Generator().manual_seed(0))
    assert (adv - points).abs().max() <= 0.05 + 1e-6
    loss = torch.nn.functional.cross_entropy
    with torch.no_grad():
        assert loss(model(adv), labels) > loss(model(points), labels)
    assert all(p.grad is None for p in model.parameters())


def _weights(trainer: RobustTrainer) -> torch.Tensor:
    return torch.cat([v.flatten().float() for v in trainer.model.state_dict().values()])


@pytest.mark.parametrize("method", ["standard", "adversarial", "curriculum", "intact"])
def test_training_is_deterministic_with_a_seed(method, tmp_path):
    data = load_dataset(TINY)
    cfg = dataclasses.replace(TINY, method=method)
    first = train(dataclasses.replace(cfg, out=tmp_path / "a"), data)
    second = train(dataclasses.replace(cfg, out=tmp_path / "b"), data)
    other = train(dataclasses.replace(cfg, out=tmp_path / "c", seed=1), data)
    assert torch.equal(_weights(first["trainer"]), _weights(second["trainer"]))
    assert not torch.equal(_weights(first["trainer"]), _weights(other["trainer"]))
    assert (tmp_path / "a" / "final.pt").is_file() and (tmp_path / "a" / "metrics.csv").is_file()
    if method == "intact":
        teachers = [torch.cat([p.flatten() for p in r["trainer"].teacher.parameters()]) for r in (first, second)]
        assert torch.equal(*teachers)


def test_intact_trainer_meta_trains_teacher_and_gates_curriculum():
    data = load_dataset(TINY)
    trainer = RobustTrainer(dataclasses.replace(TINY, method="intact", threshold=0.0), len(data.class_names))
    teacher_before = [p.detach().clone() for p in trainer.teacher.parameters()]
    for _ in range(3):
        trainer.train_epoch(data)
        trainer.end_epoch(data)
    assert not all(torch.equal(a, b) for a, b in zip(teacher_before, trainer.teacher.parameters(), strict=True))
    # warm-up epoch 0 reports nothing; epochs 1 and 2 each pass threshold 0 and advance
    assert trainer.curriculum.level == 2
    assert len(trainer.hooks.snapshots) == 3


def test_error_metrics_by_hand():
    result = {"clean": 0.9, "accuracy": {"jitter": {0: 0.8, 1: 0.6}, "scale": {0: 0.9, 1: 0.9}}}
    reference = {"clean": 0.8, "accuracy": {"jitter": {0: 0.7, 1: 0.5}, "scale": {0: 0.8, 1: 0.8}}}
    metrics = error_metrics(result, reference)
    assert metrics["CE"]["jitter"] == pytest.approx((0.2 + 0.4) / (0.3 + 0.5))
    assert metrics["RCE"]["jitter"] == pytest.approx((0.1 + 0.3) / (0.1 + 0.3))
    assert metrics["CE"]["scale"] == pytest.approx(0.2 / 0.4)
    assert metrics["RCE"]["scale"] == 1.0  # neither loses anything: 0 / 0 counts as equal
    assert metrics["mCE"] == pytest.approx((0.75 + 0.5) / 2)
    flat = error_metrics({"clean": 0.926, "accuracy": {"jitter": {s: 0.684 for s in range(5)}}}, DGCNN_MODELNET_C)
    assert flat["CE"]["jitter"] == pytest.approx(1.0)
    assert flat["RCE"]["jitter"] == pytest.approx(1.0)


def test_intact_runs_on_the_sparse_backbone(tmp_path):
    """Teacher targets, snapshots and PGD all go through the spconv classifier too."""
    pytest.importorskip("spconv")
    data = load_dataset(TINY)
    for method in ("intact", "adversarial"):
        cfg = dataclasses.replace(TINY, method=method, backbone="sparse", epochs=2, out=tmp_path / method)
        result = train(cfg, data)
        assert (tmp_path / method / "final.pt").is_file()
        assert 0.0 <= result["test_clean_acc"] <= 1.0


def test_cosine_schedule_anneals_to_zero_and_constant_does_not():
    data = load_dataset(TINY)
    lrs = {}
    for schedule in ("cosine", "constant"):
        trainer = RobustTrainer(dataclasses.replace(TINY, method="standard", lr_schedule=schedule),
                                len(data.class_names))
        lrs[schedule] = []
        for _ in range(TINY.epochs):
            trainer.train_epoch(data)
            lrs[schedule].append(trainer.end_epoch(data)["train/lr"])
        lrs[schedule].append(trainer.optimizer.param_groups[0]["lr"])
    assert lrs["cosine"][0] == TINY.lr and lrs["cosine"][-1] == pytest.approx(0.0, abs=1e-12)
    assert all(a > b for a, b in zip(lrs["cosine"][:-1], lrs["cosine"][1:], strict=True))
    assert lrs["constant"] == [TINY.lr] * (TINY.epochs + 1)
