"""Probabilistic dynamics ensemble: training and rollout throughput, robokit vs a per-member torch loop.

- robokit: :class:`robokit.nets.dynamics.EnsembleDynamics` (E members in one batched matmul per layer):
  ``nll_loss`` + Adam step on a per-member batch; ``step`` (one imagined step, random elite per row).
- per_member_loop: the same model written plainly in torch: E separate ``nn.Sequential`` MLPs (SiLU,
  same widths, same Gaussian NLL, soft log-variance bounds and weight decay), a Python loop over
  members in both the training step and the rollout step.

Sizes are Uni-O4's on Hopper (the MOBILE dynamics config): obs 11, action 3, four hidden layers of
200, E = 7, 5 elites, training batch 256 per member, rollout batch 512 (Uni-O4's OPE start states).
Unit: transitions/s (training: E x 256 rows per step; rollout: 512 rows per step). The issue's target
is robokit >= 2x the loop. The last line is the benchmark JSON object (training throughput; the
rollout figures are in its notes).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sac_update import time_updates  # noqa: E402  (the shared timing loop)

OBS, ACT, HIDDEN, MEMBERS, ELITES = 11, 3, (200, 200, 200, 200), 7, 5
TRAIN_BATCH, ROLLOUT_BATCH = 256, 512
DECAYS = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)


class LoopEnsemble(nn.Module):
    """The reference: E independent torch MLPs evaluated one after the other."""

    def __init__(self) -> None:
        super().__init__()
        widths = [OBS + ACT, *HIDDEN]
        self.members = nn.ModuleList()
        for _ in range(MEMBERS):
            layers: list[nn.Module] = []
            for i, o in zip(widths[:-1], widths[1:], strict=True):
                layers += [nn.Linear(i, o), nn.SiLU()]
            layers.append(nn.Linear(widths[-1], 2 * (OBS + 1)))
            self.members.append(nn.Sequential(*layers))
        self.max_logvar = nn.Parameter(torch.full((OBS + 1,), 0.5))
        self.min_logvar = nn.Parameter(torch.full((OBS + 1,), -10.0))

    def member(self, e: int, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = self.members[e](x).chunk(2, -1)
        logvar = self.max_logvar - F.softplus(self.max_logvar - logvar)
        return mean, self.min_logvar + F.softplus(logvar - self.min_logvar)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        total = 0.01 * (self.max_logvar.sum() - self.min_logvar.sum())
        for e in range(MEMBERS):
            mean, logvar = self.member(e, x[e])
            total = total + ((mean - y[e]).pow(2) * torch.exp(-logvar)).mean() + logvar.mean()
            linears = [m for m in self.members[e] if isinstance(m, nn.Linear)]
            total = total + sum(0.5 * d * lin.weight.pow(2).sum() for d, lin in zip(DECAYS, linears, strict=True))
        return total

    @torch.no_grad()
    def step(self, obs: torch.Tensor, action: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = torch.cat([obs, action], -1)
        outputs = [self.member(e, x) for e in range(MEMBERS)]
        mean = torch.stack([m for m, _ in outputs])
        std = torch.stack([(0.5 * lv).exp() for _, lv in outputs])
        pick = torch.randint(ELITES, (len(obs),), generator=generator)
        rows = torch.arange(len(obs))
        sample = mean[pick, rows] + std[pick, rows] * torch.randn(len(obs), OBS + 1, generator=generator)
        return obs + sample[:, :-1]


def make_batches(generator: torch.Generator) -> tuple[list, list]:
    train = [(torch.randn(MEMBERS, TRAIN_BATCH, OBS + ACT, generator=generator),
              torch.randn(MEMBERS, TRAIN_BATCH, OBS + 1, generator=generator)) for _ in range(4)]
    rollout = [(torch.randn(ROLLOUT_BATCH, OBS, generator=generator),
                torch.rand(ROLLOUT_BATCH, ACT, generator=generator) * 2 - 1) for _ in range(4)]
    return train, rollout


def contenders(generator: torch.Generator) -> dict[str, tuple]:
    from robokit.nets.dynamics import EnsembleDynamics

    torch.manual_seed(0)
    robokit = EnsembleDynamics(OBS, ACT, HIDDEN, MEMBERS, ELITES, DECAYS)
    robokit.fitted.fill_(True)
    loop = LoopEnsemble()
    out = {}
    for name, model, loss_fn, step_fn in (
            ("robokit", robokit, robokit.nll_loss, lambda b: robokit.step(b[0], b[1], None, generator)),
            ("per_member_loop", loop, loop.loss, lambda b: loop.step(b[0], b[1], generator))):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def train(batch, loss_fn=loss_fn, optimizer=optimizer):
            loss = loss_fn(*batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        out[name] = (train, step_fn)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about 1 s per contender and phase")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seconds, rounds = (1.0, 3) if args.quick else (4.0, 5)
    generator = torch.Generator().manual_seed(0)
    train_batches, rollout_batches = make_batches(generator)
    models = contenders(generator)
    speed: dict[str, dict[str, list[float]]] = {n: {"train": [], "rollout": []} for n in models}
    for _ in range(rounds):  # interleaved, so load changes on the shared CPU hit both alike
        for name, (train, step) in models.items():
            speed[name]["train"].append(time_updates(train, train_batches, seconds) * MEMBERS * TRAIN_BATCH)
            speed[name]["rollout"].append(time_updates(step, rollout_batches, seconds) * ROLLOUT_BATCH)
    median = {n: {k: sorted(v)[len(v) // 2] for k, v in phases.items()} for n, phases in speed.items()}
    print(f"{'contender':<16} {'train transitions/s':>20} {'rollout transitions/s':>22}  (median of {rounds})")
    for name, value in median.items():
        print(f"{name:<16} {value['train']:>20.0f} {value['rollout']:>22.0f}")
    train_ratio = median["robokit"]["train"] / median["per_member_loop"]["train"]
    rollout_ratio = median["robokit"]["rollout"] / median["per_member_loop"]["rollout"]
    notes = (f"E={MEMBERS}, {ELITES} elites, hidden {HIDDEN}, obs {OBS}, act {ACT}; train batch {TRAIN_BATCH}/member, "
             f"rollout batch {ROLLOUT_BATCH}; {args.threads} CPU thread(s); rollout: robokit "
             f"{median['robokit']['rollout']:.0f} vs loop {median['per_member_loop']['rollout']:.0f} transitions/s "
             f"(ratio {rollout_ratio:.2f}); target >= 2x; MBPO-style library peers (mbrl-lib) are not installed in "
             f"this environment, so they are left out")
    print(json.dumps({"benchmark": "dynamics_ensemble", "unit": "training transitions/s", "higher_is_better": True,
                      "robokit": round(median["robokit"]["train"], 1),
                      "peers": {"per_member_loop": round(median["per_member_loop"]["train"], 1)},
                      "ratio": round(train_ratio, 3), "bound": None, "notes": notes}))
    return 0 if math.isfinite(train_ratio) else 1


if __name__ == "__main__":
    sys.exit(main())
