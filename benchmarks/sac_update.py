"""SAC gradient updates per second on CPU: robokit's E=10 LayerNorm ensemble (the RLPD/WSRL critic)
against TorchRL's 10-critic SACLoss and two-critic references, in one run.

Sizes for everyone: batch 256, hidden (256, 256) for actor and critics, obs 17 / action 6
(Hopper-like), Adam lr 3e-4, ReLU. One update = one critic step, one actor step, one temperature
step and a Polyak target update (robokit's RLPD config at UTD 1, so the update is the same unit).

- robokit_rlpd_e10: ``robokit.algos.SAC(RLPDConfig(utd_ratio=1))``: 10 LayerNorm critics in one
  vectorised pass, target = min of a random subset of 2 (only those 2 target members are
  evaluated), actor on the ensemble mean. This is the headline ``robokit`` figure.
- torchrl_e10: TorchRL's ``SACLoss`` with ``num_qvalue_nets=10`` and LayerNorm critics of the same
  widths (its target is the min over all 10: SACLoss has no subset option).
- robokit_e2: ``robokit.algos.SAC`` with 2 critics (no LayerNorm), for reference.
- plain_two_critic: a straightforward two-critic SAC update written here in torch with the same
  layer sizes (two nn.Sequential critics + targets, tanh-Gaussian actor, auto temperature).
- torchrl_sacloss: TorchRL's ``SACLoss`` with 2 Q nets (vmapped), the same networks and Adam steps.

Targets (issue 10): robokit_rlpd_e10 >= 1.5x torchrl_e10 updates/s (``ratio_torchrl_e10`` in the
JSON line). ``bound`` is the FLOP-proportional rate: the update's GEMMs (``sac_update_gemms``)
timed as plain ``torch.mm`` calls of the same shapes on this thread; ``measured_over_ideal`` is
robokit's measured cost divided by that. Rates are updates per CPU-second (process time; with
one thread, time on a core, so other jobs on the shared CPU count less); contenders are timed in
interleaved rounds and the median is reported. Threads: 1 (``--threads``).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
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


def make_torchrl(num_qvalue_nets: int = 2, layer_norm: bool = False):
    """An update function built on TorchRL's SACLoss, or None (with the reason) if it cannot be built.

    Actor and critics are TorchRL ``MLP``s of the same widths as robokit's, with ReLU (TorchRL's
    default is Tanh) and, with ``layer_norm``, a LayerNorm after every hidden linear layer (before
    the ReLU, as robokit's critic). ``num_qvalue_nets`` critics are vmapped; SACLoss's target takes
    the min over all of them (it has no random-subset option) and its actor reads their min.
    """
    try:
        from tensordict import TensorDict
        from tensordict.nn import NormalParamExtractor, TensorDictModule
        from torchrl.modules import MLP, ProbabilisticActor, TanhNormal, ValueOperator
        from torchrl.objectives import SACLoss, SoftUpdate
    except Exception as err:  # noqa: BLE001 - report any import problem
        return None, f"torchrl import failed: {err}"
    actor_net = nn.Sequential(MLP(in_features=OBS, out_features=2 * ACT, num_cells=list(HIDDEN),
                                  activation_class=nn.ReLU), NormalParamExtractor())
    actor = ProbabilisticActor(TensorDictModule(actor_net, ["observation"], ["loc", "scale"]),
                               in_keys=["loc", "scale"], distribution_class=TanhNormal, return_log_prob=True)
    norm = {"norm_class": nn.LayerNorm, "norm_kwargs": [{"normalized_shape": w} for w in HIDDEN]} if layer_norm else {}
    qnet = ValueOperator(MLP(in_features=OBS + ACT, out_features=1, num_cells=list(HIDDEN), activation_class=nn.ReLU,
                             **norm), in_keys=["observation", "action"])
    loss = SACLoss(actor_network=actor, qvalue_network=qnet, num_qvalue_nets=num_qvalue_nets,
                   target_entropy=-float(ACT))
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


Gemm = tuple[int, int, int]  # (m, k, n): an (m, k) @ (k, n) product


def sac_update_gemms(ensemble: int, target_members: int, batch: int = BATCH) -> list[tuple[Gemm, int]]:
    """The matrix products of one SAC update with an E-member critic, as ((m, k, n), count) pairs.

    A linear layer (i -> o) on B rows is a (B, i) @ (i, o) product forward; its backward is
    (i, B) @ (B, o) for the weight gradient and (B, o) @ (o, i) for the input gradient (not
    needed for the first layer when the input needs no gradient). Per update:
    target = actor forward on next_obs + ``target_members`` critic forwards; critic step = E critic
    forwards + weight and input gradients; actor step = actor forward + E critic forwards with
    input gradients only (the critic is frozen, the action needs its gradient) + actor weight and
    input gradients. LayerNorm, activations, Adam and the Polyak update are not GEMMs.
    """
    widths_q, widths_pi = [OBS + ACT, *HIDDEN, 1], [OBS, *HIDDEN, 2 * ACT]
    layers_q = list(zip(widths_q[:-1], widths_q[1:], strict=True))
    layers_pi = list(zip(widths_pi[:-1], widths_pi[1:], strict=True))
    gemms: list[tuple[Gemm, int]] = []

    def forward(layers, count):
        gemms.extend(((batch, i, o), count) for i, o in layers)

    def weight_grads(layers, count):
        gemms.extend(((i, batch, o), count) for i, o in layers)

    def input_grads(layers, count):
        gemms.extend(((batch, o, i), count) for i, o in layers)

    forward(layers_pi, 1)                  # target: next action
    forward(layers_q, target_members)      # target: chosen target members
    forward(layers_q, ensemble)            # critic regression
    weight_grads(layers_q, ensemble)
    input_grads(layers_q[1:], ensemble)
    forward(layers_pi, 1)                  # actor: action for obs
    forward(layers_q, ensemble)            # actor: Q(obs, action) through the frozen critic
    input_grads(layers_q, ensemble)
    weight_grads(layers_pi, 1)
    input_grads(layers_pi[1:], 1)
    return gemms


def gemm_seconds(gemms: list[tuple[Gemm, int]], repeats: int = 20, clock=time.process_time) -> float:
    """Seconds a plain ``torch.mm`` of each listed shape takes on this thread, summed with the counts
    (best of ``repeats`` per shape): the update's cost if it were nothing but its GEMMs at the
    speed of one standalone matmul each."""
    total = 0.0
    for (m, k, n), count in gemms:
        a, b = torch.randn(m, k), torch.randn(k, n)
        torch.mm(a, b)
        best = math.inf
        for _ in range(repeats):
            tick = clock()
            for _ in range(5):
                torch.mm(a, b)
            best = min(best, (clock() - tick) / 5)
        total += count * best
    return total


def gemm_flops(gemms: list[tuple[Gemm, int]]) -> float:
    return float(sum(2 * m * k * n * count for (m, k, n), count in gemms))


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


def load_average() -> str:
    """The 1/5/15-minute load averages (the CPU is shared), or 'n/a'."""
    try:
        return "/".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "n/a"


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    seconds, rounds = (1.0, 3) if args.quick else (4.0, 5)
    rounds = args.rounds or rounds
    from robokit.algos import SAC, RLPDConfig, SACConfig

    gen = torch.Generator(device=args.device).manual_seed(0)
    batches = [random_batch(BATCH, gen) for _ in range(8)]
    torch.manual_seed(0)
    rlpd = RLPDConfig(hidden_dims=HIDDEN, batch_size=BATCH, utd_ratio=1)
    contenders = {"robokit_rlpd_e10": SAC(rlpd, OBS, ACT).update,
                  "robokit_e2": SAC(SACConfig(hidden_dims=HIDDEN), OBS, ACT).update,
                  "plain_two_critic": PlainSAC().update}
    why = {}
    for name, nets, layer_norm in (("torchrl_sacloss", 2, False), ("torchrl_e10", rlpd.ensemble_size, True)):
        update, why[name] = make_torchrl(nets, layer_norm)
        if update is not None:
            contenders[name] = update
    load_before = load_average()
    clock = time.perf_counter if args.device != "cpu" else time.process_time
    median = interleaved_medians(contenders, batches, seconds, rounds, args.threads, clock)
    print(f"load average (1/5/15 min): {load_before} before timing, {load_average()} after")
    return report(args, rlpd, median, why, load_before)


def report(args: argparse.Namespace, rlpd, median: dict[str, float], why: dict, load: str) -> int:
    """FLOP accounting and the JSON line."""
    robokit = median["robokit_rlpd_e10"]
    peers = {k: round(v, 2) for k, v in median.items() if k in ("plain_two_critic", "torchrl_sacloss", "torchrl_e10")}
    gemms = sac_update_gemms(rlpd.ensemble_size, rlpd.target_subset)
    ideal = gemm_seconds(gemms) if args.device == "cpu" else None
    flops = gemm_flops(gemms)
    notes = (f"robokit = RLPDConfig (E=10 LayerNorm critics, target min of a random 2, actor on the mean) "
             f"at UTD 1; torchrl_e10 = SACLoss(num_qvalue_nets=10) with LayerNorm critics (target min over all "
             f"10, no subset option); batch {BATCH}, hidden {HIDDEN}, obs {OBS}, act {ACT}, device {args.device}, "
             f"{args.threads} thread(s), updates per CPU-second (process time) on CPU; load average {load}; "
             f"robokit E=2: {median['robokit_e2']:.1f} upd/s")
    extra = {}
    if "torchrl_e10" in median:
        extra["ratio_torchrl_e10"] = round(robokit / median["torchrl_e10"], 3)
        notes += f"; target robokit >= 1.5x torchrl_e10: {extra['ratio_torchrl_e10']:.2f}x"
        if args.device == "cpu":  # the same accounting for TorchRL, whose target evaluates all 10 members
            torchrl_gemms = sac_update_gemms(rlpd.ensemble_size, rlpd.ensemble_size)
            torchrl_ideal = gemm_seconds(torchrl_gemms)
            extra["torchrl_e10_measured_over_ideal"] = round(1.0 / torchrl_ideal / median["torchrl_e10"], 2)
            notes += (f"; torchrl_e10: {gemm_flops(torchrl_gemms) / 1e9:.2f} GFLOP per update, measured cost / ideal "
                      f"= {extra['torchrl_e10_measured_over_ideal']:.2f}")
    bound = None
    if ideal is not None:
        bound = round(1.0 / ideal, 2)
        extra["measured_over_ideal"] = round(bound / robokit, 2)
        notes += (f"; GEMM FLOPs per update {flops / 1e9:.2f} G, plain torch.mm of the same shapes on this thread "
                  f"{flops / ideal / 1e9:.1f} GFLOP/s -> FLOP-proportional bound {bound:.1f} upd/s, "
                  f"measured cost / ideal = {extra['measured_over_ideal']:.2f}")
    for name, reason in why.items():
        if reason:
            notes += f"; {name} left out: {reason}"
    print(json.dumps({"benchmark": "sac_update", "unit": "updates/s", "higher_is_better": True,
                      "robokit": round(robokit, 2), "peers": peers, "ratio": round(robokit / max(peers.values()), 3),
                      "bound": bound, **extra, "notes": notes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
