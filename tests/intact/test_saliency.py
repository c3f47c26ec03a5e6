"""Saliency targets and the Reptile-meta-trained teacher."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robokit.intact.meta import MetaConfig, MetaLearner
from robokit.intact.saliency import (
    SaliencyTask,
    SaliencyTeacher,
    gradient_saliency,
    make_task,
    rank_normalise,
    saliency_agreement,
    saliency_loss,
    teacher_saliency,
)
from robokit.pointcloud.backbones import PointNetClassifier


def _clouds(batch=6, n=64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, size=(batch, n, 3)).astype(np.float32)


def _radial_task(seed: int) -> SaliencyTask:
    """A synthetic task whose saliency is learnable from geometry: far-out points matter."""
    clouds = torch.from_numpy(_clouds(8, 48, seed))
    target = rank_normalise(clouds.norm(dim=-1))
    return SaliencyTask(clouds[:4], target[:4], clouds[4:], target[4:], "radial")


def test_rank_normalise_and_agreement_by_hand():
    scores = torch.tensor([[0.3, 5.0, -1.0, 2.0]])
    torch.testing.assert_close(rank_normalise(scores), torch.tensor([[1 / 3, 1.0, 0.0, 2 / 3]]))
    target = torch.tensor([[0.0, 0.1, 0.9, 0.8, 0.2]])
    assert saliency_agreement(target, target, 0.4) == 1.0
    assert saliency_agreement(-target, target, 0.4) == 0.0


def test_gradient_saliency_leaves_the_model_alone():
    torch.manual_seed(0)
    model = PointNetClassifier(3, widths=(8, 16), hidden=8).train()
    before = [p.detach().clone() for p in model.parameters()]
    points = torch.from_numpy(_clouds())
    saliency = gradient_saliency(model, points, torch.tensor([0, 1, 2, 0, 1, 2]))
    assert saliency.shape == (6, 64) and (saliency >= 0).all() and saliency.sum() > 0
    assert model.training
    assert all(p.grad is None for p in model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


def test_teacher_output_shape_and_range():
    teacher = SaliencyTeacher(widths=(8, 16), head_width=8)
    out = teacher(torch.from_numpy(_clouds(3, 40)))
    assert out.shape == (3, 40)
    assert ((out >= 0) & (out <= 1)).all()
    torch.testing.assert_close(teacher_saliency(None, torch.zeros(2, 5, 3)), torch.full((2, 5), 0.5))


def test_outer_step_changes_only_teacher_parameters():
    torch.manual_seed(0)
    task_model = PointNetClassifier(3, widths=(8, 16), hidden=8)
    task_before = {k: v.clone() for k, v in task_model.state_dict().items()}
    teacher = SaliencyTeacher(widths=(8, 16), head_width=8)
    teacher_before = [p.detach().clone() for p in teacher.parameters()]
    meta = MetaLearner(teacher, MetaConfig(rule="reptile", inner_steps=2))
    task = make_task(task_model, _clouds(8, 32), np.array([0, 1, 2, 0, 1, 2, 0, 1]), support=4, name="t")
    logs = meta.outer_step([task])
    assert set(logs) == {"losses/teacher_query_before", "losses/teacher_query_after"}
    # every teacher parameter moved ...
    assert all(not torch.equal(a, b) for a, b in zip(teacher_before, teacher.parameters(), strict=True))
    # ... and nothing of the task model did (weights, BN buffers, gradients)
    for name, value in task_model.state_dict().items():
        assert torch.equal(value, task_before[name]), name
    assert all(p.grad is None for p in task_model.parameters())


def test_meta_training_learns_a_transferable_saliency():
    torch.manual_seed(0)
    teacher = SaliencyTeacher(widths=(16, 32), head_width=16)
    meta = MetaLearner(teacher, MetaConfig(rule="reptile", inner_lr=5e-3, inner_steps=3, meta_step=0.5))
    held_out = _radial_task(seed=999)
    with torch.no_grad():
        loss_before = saliency_loss(teacher(held_out.query_points), held_out.query_target).item()
    for step in range(40):
        meta.outer_step([_radial_task(seed=2 * step), _radial_task(seed=2 * step + 1)])
    with torch.no_grad():
        predicted = teacher(held_out.query_points)
    assert saliency_loss(predicted, held_out.query_target).item() < loss_before - 0.05
    assert saliency_agreement(predicted, held_out.query_target, 0.2) > 0.6  # chance is 0.2


@pytest.mark.parametrize("rule", ["fomaml", "reptile"])
def test_meta_step_is_deterministic_given_the_seed(rule):
    def run():
        torch.manual_seed(1)
        teacher = SaliencyTeacher(widths=(8, 16), head_width=8)
        MetaLearner(teacher, MetaConfig(rule=rule)).outer_step([_radial_task(0), _radial_task(1)])
        return torch.cat([p.detach().flatten() for p in teacher.parameters()])

    assert torch.equal(run(), run())


def test_removal_saliency_map_by_hand():
    from robokit.intact.saliency import point_cloud_saliency_map

    points = np.array([[0, 0, 0], [2, 0, 0], [0, 1, 0], [0, 0, 0]], dtype=np.float32)  # median centre (0, 0, 0)
    grads = np.array([[1, 1, 1], [-1, 0, 0], [0, 3, 0], [0, 0, 0]], dtype=np.float32)
    # -(g . (x - c)) * r: the centre point scores 0; moving point 1 inwards raises the loss (g_x < 0)
    np.testing.assert_allclose(point_cloud_saliency_map(points, grads), [0.0, 4.0, -3.0, 0.0])
    np.testing.assert_allclose(point_cloud_saliency_map(points, grads, power=0.0), [0.0, 2.0, -3.0, 0.0])
