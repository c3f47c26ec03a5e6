"""SAC gradient updates per second on CPU: robokit's E=10 ensemble vs two-critic references.

- robokit: ``robokit.algos.SAC`` with a 10-member vectorised Q ensemble (target = min of a random
  subset of 2, actor on the ensemble mean), batch 256, hidden (256, 256), obs 17 / action 6 (Hopper-like).
- plain_two_critic: a straightforward two-critic SAC update written here in torch with the same
  layer sizes (two nn.Sequential critics + targets, tanh-Gaussian actor, auto temperature).
- torchrl_sacloss: TorchRL's ``SACLoss`` (2 Q nets, vmapped) with the same networks and Adam steps.

The issue's target: the 10-member update costs at most 2x the two-critic reference, i.e.
robokit updates/s >= 0.5 x plain_two_critic updates/s. One update = one critic step, one actor
step, one temperature step and a Polyak target update. Threads: 1 (``--threads``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import sys
import time

import torch
from torch import nn

OBS, ACT, HIDDEN, BATCH = 17, 6, (256, 256), 256


def random_batch(n: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    return {"obs": torch.randn(n, OBS, generator=generator), "action": torch.rand(n, ACT, generator=generator) * 2 - 1,
            "reward": torch.randn(n, generator=generator), "next_obs": torch.randn(n, OBS, generator=generator),
            "terminated": (torch.rand(n, generator=generator) < 0.05).float()}


def mlp(inp: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inp, HIDDEN[0]), nn.ReLU(), nn.Linear(HIDDEN[0], HIDDEN[1]), nn.ReLU(),
                         nn.Linear(HIDDEN[1], out))


class PlainSAC:
    """Reference two-critic SAC (Haarnoja et al. 2018 v2), written without robokit."""

    def __init__(self) -> None:
        self.actor = mlp(OBS, 2 * ACT)
        self.q1, self.q2 = mlp(OBS + ACT, 1), mlp(OBS + ACT, 1)
        self.q1_target, self.q2_target = copy.deepcopy(self.q1), copy.deepcopy(self.q2)
        self.log_alpha = torch.zeros((), requires_grad=True)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=3e-4)
        self.critic_opt = torch.optim.Adam(list(self.q1.parameters()) + list(self.q2.parameters()), lr=3e-4)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=3e-4)

    def sample(self, obs):
        mean, log_std = self.actor(obs).chunk(2, -1)
        log_std = log_std.clamp(-5, 2)
        u = mean + log_std.exp() * torch.randn_like(mean)
        log_prob = (-0.5 * ((u - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - u - nn.functional.softplus(-2 * u))).sum(-1)
        return torch.tanh(u), log_prob

    def update(self, b) -> None:
        alpha = self.log_alpha.exp().detach()
        with torch.no_grad():
            a2, lp2 = self.sample(b["next_obs"])
            x2 = torch.cat([b["next_obs"], a2], -1)
            q_next = torch.min(self.q1_target(x2), self.q2_target(x2)).squeeze(-1) - alpha * lp2
            target = b["reward"] + 0.99 * (1 - b["terminated"]) * q_next
        x = torch.cat([b["obs"], b["action"]], -1)
        critic_loss = ((self.q1(x).squeeze(-1) - target) ** 2).mean() + ((self.q2(x).squeeze(-1) - target) ** 2).mean()
        self.critic_opt.zero_grad()
        critic_loss.backward()
        self.critic_opt.step()
        a, lp = self.sample(b["obs"])
        xa = torch.cat([b["obs"], a], -1)
        for p in list(self.q1.parameters()) + list(self.q2.parameters()):
            p.requires_grad_(False)
        q = torch.min(self.q1(xa), self.q2(xa)).squeeze(-1)
        for p in list(self.q1.parameters()) + list(self.q2.parameters()):
            p.requires_grad_(True)
        actor_loss = (alpha * lp - q).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()
        alpha_loss = -(self.log_alpha * (lp.detach() - ACT)).mean()
        self.alpha_opt.zero_grad()
        alpha_loss.backward()
        self.alpha_opt.step()
        with torch.no_grad():
            for net, tgt in ((self.q1, self.q1_target), (self.q2, self.q2_target)):
                for p, tp in zip(net.parameters(), tgt.parameters(), strict=True):
                    tp.lerp_(p, 0.005)


def make_torchrl():
    """An update function built on TorchRL's SACLoss, or None (with the reason) if it cannot be built."""
    try:
        from tensordict import TensorDict
        from tensordict.nn import NormalParamExtractor, TensorDictModule
        from torchrl.modules import MLP, ProbabilisticActor, TanhNormal, ValueOperator
        from torchrl.objectives import SACLoss, SoftUpdate
    except Exception as err:  # noqa: BLE001 - report any import problem
        return None, f"torchrl import failed: {err}"
    actor_net = nn.Sequential(MLP(in_features=OBS, out_features=2 * ACT, num_cells=list(HIDDEN)),
                              NormalParamExtractor())
    actor = ProbabilisticActor(TensorDictModule(actor_net, ["observation"], ["loc", "scale"]),
                               in_keys=["loc", "scale"], distribution_class=TanhNormal, return_log_prob=True)
    qnet = ValueOperator(MLP(in_features=OBS + ACT, out_features=1, num_cells=list(HIDDEN)),
                         in_keys=["observation", "action"])
    loss = SACLoss(actor_network=actor, qvalue_network=qnet, num_qvalue_nets=2, target_entropy=-float(ACT))
    loss.make_value_estimator(gamma=0.99)
    updater = SoftUpdate(loss, eps=0.995)
    opt_actor = torch.optim.Adam(loss.actor_network_params.flatten_keys().values(), lr=3e-4)
    opt_critic = torch.optim.Adam(loss.qvalue_network_params.flatten_keys().values(), lr=3e-4)
    opt_alpha = torch.optim.Adam([loss.log_alpha], lr=3e-4)

    def update(b) -> None:
        td = TensorDict({"observation": b["obs"], "action": b["action"],
                         "next": {"observation": b["next_obs"], "reward": b["reward"][:, None],
                                  "done": b["terminated"][:, None].bool(),
                                  "terminated": b["terminated"][:, None].bool()}}, batch_size=[len(b["obs"])])
        out = loss(td)
        for opt in (opt_actor, opt_critic, opt_alpha):
            opt.zero_grad()
        (out["loss_actor"] + out["loss_qvalue"] + out["loss_alpha"]).backward()
        for opt in (opt_actor, opt_critic, opt_alpha):
            opt.step()
        updater.step()

    return update, None


def synchronize() -> None:
    """Wait for queued CUDA work, so a timing covers the kernels and not only their launch."""
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def time_updates(update, batches, seconds: float, clock=time.perf_counter) -> float:
    """Updates per second of ``clock`` over at least ``seconds`` (after 3 warm-up updates)."""
    for b in batches[:3]:
        update(b)
    synchronize()
    count, start = 0, clock()
    while True:
        update(batches[count % len(batches)])
        count += 1
        synchronize()
        elapsed = clock() - start
        if elapsed >= seconds and count >= 5:
            return count / elapsed


def timing_parser(description: str, quick_help: str) -> argparse.ArgumentParser:
    """--quick, --threads and --rounds, shared by the update benchmarks."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (median reported)")
    return parser


def interleaved_medians(contenders: dict, batches: list, seconds: float, rounds: int, threads: int,
                        clock=time.perf_counter) -> dict[str, float]:
    """Median updates/s per contender over ``rounds`` interleaved rounds (so load changes on a
    shared CPU hit everyone alike); prints the table."""
    speeds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, update in contenders.items():
            speeds[name].append(time_updates(update, batches, seconds, clock))
    median = {name: sorted(v)[len(v) // 2] for name, v in speeds.items()}
    print(f"{'contender':<18} {'updates/s':>10}   (median of {rounds} rounds, {threads} thread(s))")
    for name, value in median.items():
        print(f"{name:<18} {value:>10.2f}")
    return median


def main(argv: list[str] | None = None) -> int:
    parser = timing_parser(__doc__, "about 5 s per contender")
    parser.add_argument("--device", default="cpu", help="torch device every contender runs on (cpu, cuda)")
    args = parser.parse_args(argv)
    with torch.device(args.device):  # networks, optimizers, generators and batches all on one device
        return run(args)


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    seconds, rounds = (1.5, 3) if args.quick else (5.0, 5)
    rounds = args.rounds or rounds
    from robokit.algos import SAC, SACConfig

    gen = torch.Generator(device=args.device).manual_seed(0)
    batches = [random_batch(BATCH, gen) for _ in range(8)]
    torch.manual_seed(0)
    contenders = {
        "robokit_e10": SAC(SACConfig(hidden_dims=HIDDEN, ensemble_size=10, target_subset=2, layer_norm=False,
                                     actor_q_reduction="mean"), OBS, ACT).update,
        "robokit_e2": SAC(SACConfig(hidden_dims=HIDDEN), OBS, ACT).update,
        "plain_two_critic": PlainSAC().update,
    }
    torchrl_update, why = make_torchrl()
    if torchrl_update is not None:
        contenders["torchrl_sacloss"] = torchrl_update
    median = interleaved_medians(contenders, batches, seconds, rounds, args.threads)
    peers = {k: round(v, 2) for k, v in median.items() if k in ("plain_two_critic", "torchrl_sacloss")}
    robokit = median["robokit_e10"]
    cost_ratio = median["plain_two_critic"] / robokit
    notes = (f"E=10 (subset 2, mean actor) vs 2-critic peers; batch {BATCH}, hidden {HIDDEN}, obs {OBS}, act {ACT}, "
             f"device {args.device}, {args.threads} CPU thread(s); robokit E=2: {median['robokit_e2']:.1f} upd/s; "
             f"E=10 cost = {cost_ratio:.2f}x plain two-critic (target <= 2x, i.e. ratio vs plain >= 0.5)")
    if why:
        notes += f"; torchrl left out: {why}"
    print(json.dumps({"benchmark": "sac_update", "unit": "updates/s", "higher_is_better": True,
                      "robokit": round(robokit, 2), "peers": peers, "ratio": round(robokit / max(peers.values()), 3),
                      "bound": None, "notes": notes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
