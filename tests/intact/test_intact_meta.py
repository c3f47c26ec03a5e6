"""Meta-learning of the teacher (first-order MAML and Reptile) and its fast adaptation, on a toy task family."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from robokit.intact.meta import MetaConfig, MetaLearner
from robokit.intact.saliency import (
    SaliencyTask,
    SaliencyTeacher,
    rank_normalise,
    saliency_agreement,
    saliency_loss,
)


def _direction_task(seed: int, clouds: int = 8, points: int = 48) -> SaliencyTask:
    """Points matter by how far they lie along a task-specific direction d: target = rank(x . d).

    Geometry alone cannot tell d, so only a teacher adapted on the task's support set can score well.
    """
    rng = np.random.default_rng(seed)
    direction = rng.normal(size=3)
    direction /= np.linalg.norm(direction)
    x = torch.from_numpy(rng.uniform(-1, 1, size=(clouds, points, 3)).astype(np.float32))
    target = rank_normalise(x @ torch.from_numpy(direction.astype(np.float32)))
    half = clouds // 2
    return SaliencyTask(x[:half], target[:half], x[half:], target[half:], f"d={direction.round(2)}")


def _flat(module: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in module.parameters()])


@pytest.mark.parametrize("rule", ["fomaml", "reptile"])
def test_adapted_teacher_differs_from_the_initialisation_and_scores_higher(rule):
    torch.manual_seed(0)
    teacher = SaliencyTeacher(widths=(16, 32), head_width=16)
    meta = MetaLearner(teacher, MetaConfig(rule=rule, inner_lr=1e-2, inner_steps=5, outer_lr=3e-3))
    for step in range(15):
        logs = meta.outer_step([_direction_task(2 * step), _direction_task(2 * step + 1)])
        assert set(logs) == {"losses/teacher_query_before", "losses/teacher_query_after"}
    init = _flat(teacher)
    task = _direction_task(seed=10_000)  # a direction never seen in meta-training
    adapted = meta.adapt(task.support_points, task.support_target)
    assert torch.equal(_flat(teacher), init)  # adapting works on a copy
    assert not torch.equal(_flat(adapted), init)
    with torch.no_grad():
        before, after = teacher(task.query_points), adapted(task.query_points)
    assert saliency_loss(after, task.query_target) < saliency_loss(before, task.query_target) - 0.02
    assert saliency_agreement(after, task.query_target, 0.2) > saliency_agreement(before, task.query_target, 0.2)


def test_the_two_outer_rules_update_the_initialisation_differently():
    def one_step(rule):
        torch.manual_seed(1)
        teacher = SaliencyTeacher(widths=(8, 16), head_width=8)
        before = _flat(teacher)
        MetaLearner(teacher, MetaConfig(rule=rule)).outer_step([_direction_task(0), _direction_task(1)])
        return before, _flat(teacher)

    start, fomaml = one_step("fomaml")
    same_start, reptile = one_step("reptile")
    assert torch.equal(start, same_start)
    assert not torch.equal(start, fomaml) and not torch.equal(start, reptile)
    assert not torch.allclose(fomaml, reptile)
    # Reptile moves meta_step of the way to the adapted weights; FOMAML one Adam step of size outer_lr
    assert (fomaml - start).abs().max() <= MetaConfig().outer_lr * 1.01


def test_meta_config_rejects_bad_values():
    with pytest.raises(ValueError, match="meta rule"):
        MetaConfig(rule="maml2")
    with pytest.raises(ValueError, match="meta_step"):
        MetaConfig(meta_step=0.0)
