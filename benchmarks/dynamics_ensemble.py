"""Probabilistic dynamics ensemble: training and rollout throughput, robokit vs a per-member torch loop.

- robokit: :class:`robokit.nets.dynamics.EnsembleDynamics` (E members in one batched matmul per layer):
  ``train_step`` with the optimizer of ``make_optimizer`` (what ``fit`` runs: fused Adam, the per-layer
  L2 decay as Adam's weight decay) on a per-member batch; ``step`` (one imagined step, random elite per row).
- per_member_loop: the same model written plainly in torch: E separate ``nn.Sequential`` MLPs (SiLU,
  same widths, same Gaussian NLL, soft log-variance bounds and weight decay in the loss), a Python loop
  over members in both the training step and the rollout step, torch's default Adam (lr 1e-3).
- per_member_loop_fused_adam: the same loop with ``Adam(fused=True)`` (training only; its rollout is the
  loop's), so the optimizer implementation is not what separates the two.

Sizes are Uni-O4's on Hopper (the MOBILE dynamics config): obs 11, action 3, four hidden layers of
200, E = 7, 5 elites, training batch 256 per member, rollout batch 512 (Uni-O4's OPE start states).
Unit: transitions per CPU-second (``time.process_time``, one thread: time descheduled by other jobs on
the shared CPU does not count; training: E x 256 rows per step; rollout: 512 rows per step), medians
of interleaved rounds. The issue's target is robokit >= 2x the loop. ``bound``: the rate of robokit's
training step if it were only its GEMMs and SiLU passes (:func:`kernel_replay`, timed in the same
rounds; ``bound_gemm_only`` leaves out the SiLUs, ``bound_per_member_kernels`` runs the same kernels one
member at a time as the loop does). ``previous_step`` (a reference row, not a peer): robokit's step before
``train_step``, torch's default Adam on ``nll_loss`` with the decay in the loss. The last line is the
benchmark JSON object (training throughput; the rollout figures are in its notes).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sac_update import load_average, time_updates  # noqa: E402  (shared timing helpers)

OBS, ACT, HIDDEN, MEMBERS, ELITES = 11, 3, (200, 200, 200, 200), 7, 5
TRAIN_BATCH, ROLLOUT_BATCH = 256, 512
DECAYS = (2.5e-5, 5e-5, 7.5e-5, 7.5e-5, 1e-4)
PREVIOUS = "robokit_previous_step"  # reference row, not a peer
#: bound rows (kernel replays, timed with the contenders) -> kernel_replay options
BOUNDS = {"bound: GEMMs + SiLU": {}, "bound: GEMMs only": {"silu": False},
          "bound: per-member GEMMs+SiLU": {"per_member": True}}


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
    """name -> (training step on an (inputs, targets) batch, rollout step on an (obs, action) batch or None)."""
    from robokit.nets.dynamics import EnsembleDynamics

    torch.manual_seed(0)
    robokit = EnsembleDynamics(OBS, ACT, HIDDEN, MEMBERS, ELITES, DECAYS)
    robokit.fitted.fill_(True)
    robokit_optimizer = robokit.make_optimizer(lr=1e-3)
    previous = copy.deepcopy(robokit)  # the step before train_step: default Adam on nll_loss (decay in the loss)
    previous_optimizer = torch.optim.Adam(previous.parameters(), lr=1e-3)

    def previous_step(batch):
        loss = previous.nll_loss(*batch)
        previous_optimizer.zero_grad(set_to_none=True)
        loss.backward()
        previous_optimizer.step()

    out = {"robokit": (lambda b: robokit.train_step(*b, robokit_optimizer),
                       lambda b: robokit.step(b[0], b[1], None, generator)),
           PREVIOUS: (previous_step, None),
           **{name: (kernel_replay(robokit, **kwargs), None) for name, kwargs in BOUNDS.items()}}
    for name, fused in (("per_member_loop", None), ("per_member_loop_fused_adam", True)):
        loop = LoopEnsemble()
        optimizer = torch.optim.Adam(loop.parameters(), lr=1e-3, fused=fused)

        def train(batch, loop=loop, optimizer=optimizer):
            loss = loop.loss(*batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        out[name] = (train, (lambda b, loop=loop: loop.step(b[0], b[1], generator)) if not fused else None)
    return out


def kernel_replay(model, silu: bool = True, per_member: bool = False):
    """The matrix products (and SiLU passes) of one robokit training step, replayed in order on the
    step's shapes with no autograd, loss or optimizer: per layer i -> o the forward ``baddbmm``
    (E, B, i) @ (E, i, o) + bias, the weight gradient (E, i, B) @ (E, B, o) and, past the first layer
    (whose input needs no gradient), the input gradient (E, B, o) @ (E, o, i); with ``silu`` also the
    SiLU forward and backward of each hidden layer. ``per_member``: the same products one member at a
    time (the loop's kernel order). A training step cannot do less work than its replay, so the
    replay's rate bounds the step's on this thread."""
    layers = [*model.layers, model.output]

    @torch.no_grad()
    def members(h, weights, biases):
        inputs, pre = [], []
        for i, (weight, bias) in enumerate(zip(weights, biases, strict=True)):
            inputs.append(h)
            pre.append(torch.baddbmm(bias, h, weight))
            h = F.silu(pre[-1]) if silu and i < len(layers) - 1 else pre[-1]
        grad = h
        for i in reversed(range(len(layers))):
            if silu and i < len(layers) - 1:
                grad = torch.ops.aten.silu_backward(grad, pre[i])
            torch.bmm(inputs[i].transpose(1, 2), grad)
            if i > 0:
                grad = torch.bmm(grad, weights[i].transpose(1, 2))

    def replay(batch):
        groups = [slice(e, e + 1) for e in range(MEMBERS)] if per_member else [slice(None)]
        for group in groups:
            members(batch[0][group], [layer.weight[group] for layer in layers], [layer.bias[group] for layer in layers])

    return replay


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about 1 CPU-s per contender, phase and round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3 quick, 5 full)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seconds, rounds = (1.0, 3) if args.quick else (4.0, 5)
    rounds = args.rounds or rounds
    generator = torch.Generator().manual_seed(0)
    train_batches, rollout_batches = make_batches(generator)
    models = contenders(generator)
    load_before = load_average()
    speed: dict[str, dict[str, list[float]]] = {n: {"train": [], "rollout": []} for n in models}
    for _ in range(rounds):  # interleaved, so load changes on the shared CPU hit all alike
        for name, (train, step) in models.items():
            speed[name]["train"].append(time_updates(train, train_batches, seconds, time.process_time)
                                        * MEMBERS * TRAIN_BATCH)
            if step is not None:
                speed[name]["rollout"].append(time_updates(step, rollout_batches, seconds, time.process_time)
                                              * ROLLOUT_BATCH)
    median = {n: {k: sorted(v)[len(v) // 2] if v else math.nan for k, v in phases.items()}
              for n, phases in speed.items()}
    load = f"{load_before} before timing, {load_average()} after"
    print(f"{'contender':<28} {'train transitions/s':>20} {'rollout transitions/s':>22}  (median of {rounds}, "
          f"per CPU-second)")
    for name, value in median.items():
        print(f"{name:<28} {value['train']:>20.0f} {value['rollout']:>22.0f}")
    print(f"load average (1/5/15 min): {load}")
    bound, bound_gemm, bound_loop = (median.pop(name)["train"] for name in BOUNDS)
    previous = median.pop(PREVIOUS)["train"]
    robokit, peers = median["robokit"], {n: median[n]["train"] for n in median if n != "robokit"}
    train_ratio = robokit["train"] / max(peers.values())
    rollout_ratio = robokit["rollout"] / median["per_member_loop"]["rollout"]
    notes = (f"E={MEMBERS}, {ELITES} elites, hidden {HIDDEN}, obs {OBS}, act {ACT}; train batch {TRAIN_BATCH}/member, "
             f"rollout batch {ROLLOUT_BATCH}; {args.threads} CPU thread(s), transitions per CPU-second, median of "
             f"{rounds} interleaved rounds; load {load}; ratio against the best peer; rollout: robokit "
             f"{robokit['rollout']:.0f} vs loop {median['per_member_loop']['rollout']:.0f} transitions/s "
             f"(ratio {rollout_ratio:.2f}); target >= 2x; MBPO-style library peers (mbrl-lib) are not installed in "
             f"this environment, so they are left out")
    print(json.dumps({"benchmark": "dynamics_ensemble", "unit": "training transitions/s", "higher_is_better": True,
                      "robokit": round(robokit["train"], 1), "peers": {n: round(v, 1) for n, v in peers.items()},
                      "ratio": round(train_ratio, 3), "bound": round(bound, 1),
                      "ratio_plain_loop": round(robokit["train"] / peers["per_member_loop"], 3),
                      "bound_gemm_only": round(bound_gemm, 1), "bound_per_member_kernels": round(bound_loop, 1),
                      "bound_over_plain_loop": round(bound / peers["per_member_loop"], 3),
                      "rollout_ratio": round(rollout_ratio, 3), "previous_step": round(previous, 1),
                      "notes": notes}))
    return 0 if math.isfinite(train_ratio) else 1


if __name__ == "__main__":
    sys.exit(main())
