"""The adversarial curriculum's corruption: within the same budget it hurts a fixed student more than chance."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from robokit.intact.adversarial import (
    AdversarialConfig,
    adversarial_corruption,
    adversarial_drop,
    perturbation_bounds,
    saliency_pgd,
)
from robokit.intact.attacks import TargetedCorruptionConfig
from robokit.intact.saliency import gradient_saliency, rank_normalise
from robokit.intact.train import (
    ClassificationTask,
    RobustTrainer,
    TrainConfig,
    load_dataset,
    subsample_batch,
)

CFG = TrainConfig(method="standard", epochs=8, width=0.5, num_points=128, train_per_class=16, test_per_class=4,
                  dataset_points=256, batch_size=16, progress=False)


@pytest.fixture(scope="module")
def student():
    """A PointNet trained for a few epochs on the procedural set, then frozen: (model, task, clouds, labels)."""
    data = load_dataset(CFG)
    trainer = RobustTrainer(CFG, len(data.class_names))
    for _ in range(CFG.epochs):
        trainer.train_epoch(data)
        trainer.end_epoch(data)
    model = trainer.model.eval()
    for param in model.parameters():
        param.grad = None  # the last training step's gradients; the adversary must add none
    task = ClassificationTask(CFG)
    clouds = subsample_batch(data.test_points, CFG.num_points, np.random.default_rng(0))
    return model, task, list(clouds), list(data.test_labels)


def _saliency(model, clouds, labels):
    points = torch.from_numpy(np.stack(clouds))
    return list(rank_normalise(gradient_saliency(model, points, torch.as_tensor(np.asarray(labels)))).numpy())


def _mean_loss(task, model, clouds, labels):
    return float(task.losses(model, clouds, labels).mean())


def test_loss_greedy_drop_beats_a_random_drop_of_the_same_size(student):
    model, task, clouds, labels = student
    budget = TargetedCorruptionConfig(max_drop=0.5)
    uniform = [np.full(len(c), 0.5) for c in clouds]
    adversarial = adversarial_drop(model, task, clouds, labels, _saliency(model, clouds, labels), 1.0,
                                   np.random.default_rng(1), budget, candidates=4)
    random = adversarial_drop(model, task, clouds, labels, uniform, 1.0, np.random.default_rng(1), budget,
                              candidates=1)
    assert all(a.shape == c.shape for a, c in zip(adversarial, clouds, strict=True))  # refilled to N
    for out in (adversarial, random):  # 64 of 128 distinct points survive, the rest are repeats
        assert all(len(np.unique(o, axis=0)) == 64 for o in out)
    assert _mean_loss(task, model, adversarial, labels) > _mean_loss(task, model, random, labels) + 0.1


@pytest.mark.parametrize("family", ["noise", "displace"])
def test_saliency_restricted_pgd_beats_a_random_point_in_the_same_box(student, family):
    model, task, clouds, labels = student
    saliency = _saliency(model, clouds, labels)
    bounds = perturbation_bounds(family, saliency, 1.0, np.random.default_rng(2))
    adversarial = saliency_pgd(model, task, clouds, labels, bounds, np.random.default_rng(3), steps=3)
    random = saliency_pgd(model, task, clouds, labels, bounds, np.random.default_rng(3), steps=0)
    for out in (adversarial, random):
        for o, c, b in zip(out, clouds, bounds, strict=True):
            assert np.all(np.abs(o - c) <= b[:, None] + 1e-6)  # inside the budget, still (N,3)
    if family == "displace":
        moved = [np.abs(o - c).max(axis=1) > 0 for o, c in zip(adversarial, clouds, strict=True)]
        assert all(m.sum() == round(1.0 * 0.3 * CFG.num_points) for m in moved)
    assert _mean_loss(task, model, adversarial, labels) > _mean_loss(task, model, random, labels) + 0.1


def test_adversarial_corruption_leaves_the_model_and_rejects_unknown_families(student):
    model, task, clouds, labels = student
    before = {k: v.clone() for k, v in model.state_dict().items()}
    out = adversarial_corruption(model, task, clouds[:4], labels[:4], _saliency(model, clouds[:4], labels[:4]),
                                 "noise", 0.5, np.random.default_rng(0), config=AdversarialConfig(pgd_steps=2))
    assert len(out) == 4 and all(o.dtype == np.float32 for o in out)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    with pytest.raises(ValueError, match="family"):
        adversarial_corruption(model, task, clouds[:1], labels[:1], [np.ones(CFG.num_points)], "melt", 0.5,
                               np.random.default_rng(0))


def test_intact_hooks_corrupt_after_warmup_with_the_adapted_teacher(student):
    from robokit.intact.hooks import CurriculumHooks
    from robokit.intact.train import intact_config

    model, task, clouds, labels = student
    config = dataclasses.replace(intact_config(dataclasses.replace(CFG, method="intact", warmup_epochs=1)),
                                 clean_fraction=0.0)
    hooks = CurriculumHooks(task, config)
    rng = np.random.default_rng(0)
    assert hooks.corrupt_batch(clouds[:6], labels[:6], model, 0, rng)[0] is clouds[0]  # warm-up: clean
    calls = []
    original = hooks.meta.adapt
    hooks.meta.adapt = lambda *a, **k: calls.append(a[0].shape) or original(*a, **k)
    with torch.no_grad():  # as inside an evaluation's transform (the detector's robust score)
        out = hooks.corrupt_batch(clouds[:6], labels[:6], model, 1, rng)
    assert len(out) == 6 and all(o.shape == c.shape for o, c in zip(out, clouds[:6], strict=True))
    assert all(not np.array_equal(o, c) for o, c in zip(out, clouds[:6], strict=True))
    assert calls and all(shape[1:] == (CFG.num_points, 3) for shape in calls)  # one adaptation per family


@pytest.mark.parametrize("target", ["gradient", "removal"])
def test_teacher_targets_rank_the_students_saliency(student, target):
    from robokit.intact.hooks import CurriculumHooks
    from robokit.intact.saliency import point_cloud_saliency_map
    from robokit.intact.train import intact_config

    model, task, clouds, labels = student
    hooks = CurriculumHooks(task, intact_config(dataclasses.replace(CFG, method="intact", saliency_target=target)))
    points, ranks = hooks.saliency_targets(model, clouds[:3], labels[:3], "clean", 1.0, np.random.default_rng(0))
    grads = task.point_grads(model, clouds[:3], labels[:3])
    for cloud, grad, got, rank in zip(clouds[:3], grads, points, ranks, strict=True):
        raw = np.linalg.norm(grad, axis=1) if target == "gradient" else point_cloud_saliency_map(cloud, grad)
        order = np.argsort(got.numpy()[:, 0])  # teacher inputs are a permutation of the cloud's points
        expected = rank_normalise(torch.from_numpy(raw[None].astype(np.float32)))[0].numpy()
        np.testing.assert_allclose(rank.numpy()[order], expected[np.argsort(cloud[:, 0])], atol=1e-6)
