"""Meta-learning of the saliency teacher (first-order MAML or Reptile) and its fast adaptation.

A *task* (:class:`~robokit.intact.saliency.SaliencyTask`) is a support and a query set of clouds
with target saliency, drawn from (class or scene subset) x (corruption family) x (student
snapshot). :class:`MetaLearner` learns an initialisation of the teacher from which a few inner
steps on a task's support set give good saliency on its query set; :meth:`MetaLearner.adapt` is
those inner steps, and it is what the adversarial curriculum calls before it targets a batch,
so the saliency that aims the corruption comes from the *adapted* teacher.

Outer rules (``rule``):

=========  ===========================================================================
fomaml     first-order MAML (Finn et al. 2017, sec. 5.2): the gradient of the query loss
           at the adapted weights is applied to the initialisation by an outer Adam
           (learning rate ``outer_lr``; MAML's meta step size beta = 1e-3)
reptile    Reptile (Nichol et al. 2018): move the initialisation ``meta_step`` of the way
           towards the mean adapted weights
=========  ===========================================================================

The inner loop is ``inner_steps`` steps of a fresh Adam (``inner_lr``) per task, as in
openai/supervised-reptile (Adam, lr 1e-3); saliency losses are small and their scale varies by
task, which plain SGD handles badly at a fixed step size. Both rules adapt on the support half
only (openai/supervised-reptile's inner loop sees the whole sampled mini-dataset), so both see
the same data and the reported query loss after adaptation is on clouds the inner loop never saw.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch import nn

from robokit.intact.saliency import SaliencyTask, saliency_loss

META_RULES = ("fomaml", "reptile")


@dataclass(frozen=True)
class MetaConfig:
    """Settings of the teacher's meta-learning and adaptation (see the module docstring)."""

    rule: Literal["fomaml", "reptile"] = "fomaml"
    inner_lr: float = 2e-3
    inner_steps: int = 4
    outer_lr: float = 1e-3
    meta_step: float = 0.5

    def __post_init__(self) -> None:
        if self.rule not in META_RULES:
            raise ValueError(f"unknown meta rule {self.rule!r}; choose from {META_RULES}")
        if self.inner_steps < 0 or self.inner_lr <= 0 or self.outer_lr <= 0:
            raise ValueError("meta-learning needs inner_steps >= 0, inner_lr > 0 and outer_lr > 0")
        if not 0.0 < self.meta_step <= 1.0:
            raise ValueError(f"Reptile meta_step must be in (0, 1], got {self.meta_step}")


def task_loss(teacher: nn.Module, points: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Saliency loss of ``teacher`` on clouds (S,N,3) against targets (S,N)."""
    return saliency_loss(teacher(points), target)


class MetaLearner:
    """Meta-trains ``teacher`` in place (:meth:`outer_step`) and adapts copies of it (:meth:`adapt`).

    Only the teacher's parameters change; the task models that made the targets are never read
    here (tasks carry their targets).
    """

    def __init__(self, teacher: nn.Module, config: MetaConfig = MetaConfig()) -> None:
        self.teacher = teacher
        self.config = config
        self.outer_optimizer = torch.optim.Adam(teacher.parameters(), lr=config.outer_lr)

    @torch.enable_grad()
    def adapt(
        self, points: torch.Tensor, target: torch.Tensor, steps: int | None = None
    ) -> nn.Module:
        """A copy of the teacher after ``steps`` (default ``inner_steps``) Adam steps on (S,N,3)/(S,N).

        Gradients are on here, so it also works inside ``torch.no_grad()`` (an evaluation's transform).
        """
        fast = copy.deepcopy(self.teacher)
        fast.train()
        optimizer = torch.optim.Adam(fast.parameters(), lr=self.config.inner_lr)
        for _ in range(self.config.inner_steps if steps is None else steps):
            optimizer.zero_grad(set_to_none=True)
            task_loss(fast, points, target).backward()
            optimizer.step()
        return fast.eval()

    def outer_step(self, tasks: Sequence[SaliencyTask]) -> dict[str, float]:
        """One meta-update over ``tasks``; returns the mean query loss before and after adaptation."""
        if not tasks:
            raise ValueError("MetaLearner.outer_step needs at least one task")
        before, after = [], []
        updates = [torch.zeros_like(p) for p in self.teacher.parameters()]
        for task in tasks:
            with torch.no_grad():
                before.append(task_loss(self.teacher, task.query_points, task.query_target).item())
            if self.config.rule == "reptile":
                fast = self.adapt(task.support_points, task.support_target)
                for update, slow, adapted in zip(updates, self.teacher.parameters(), fast.parameters(), strict=True):
                    update += adapted.detach() - slow.detach()
                with torch.no_grad():
                    after.append(task_loss(fast, task.query_points, task.query_target).item())
            else:
                fast = self.adapt(task.support_points, task.support_target).train()
                loss = task_loss(fast, task.query_points, task.query_target)
                grads = torch.autograd.grad(loss, list(fast.parameters()))
                for update, grad in zip(updates, grads, strict=True):
                    update += grad
                after.append(loss.item())
        self._apply(updates, len(tasks))
        return {
            "losses/teacher_query_before": float(np.mean(before)),
            "losses/teacher_query_after": float(np.mean(after)),
        }

    def _apply(self, updates: list[torch.Tensor], count: int) -> None:
        if self.config.rule == "reptile":
            with torch.no_grad():
                for param, update in zip(self.teacher.parameters(), updates, strict=True):
                    param += self.config.meta_step * update / count
            return
        self.outer_optimizer.zero_grad(set_to_none=True)
        for param, update in zip(self.teacher.parameters(), updates, strict=True):
            param.grad = update / count
        self.outer_optimizer.step()

    def state_dict(self) -> dict:
        return {"outer_optimizer": self.outer_optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.outer_optimizer.load_state_dict(state["outer_optimizer"])

