"""CQL / Cal-QL gradient updates per second on CPU: robokit vs d3rlpy 2.8.1's CQL, same run.

One update = one critic step (TD + CQL penalty over N=10 uniform, N current-policy and N
next-policy actions per state, importance weighted), one actor step, one temperature step and a
Polyak target update. Same sizes for everyone: 2 critics and an actor of hidden (256, 256),
batch 256, obs 17 / action 6 (Hopper-like), fixed conservative weight 5 (no Lagrange dual),
Adam. Threads: 1 (``--threads``). Rates are updates per CPU-second (process time, which with one
thread is time on a core), so other jobs on a shared CPU do not count against anyone; ``bound``
is the measured GEMM rate divided by the update's multiply-accumulates (``update_macs``).

- robokit_cql: ``robokit.algos.CQL`` (the penalty's 3N actions per state go through the
  vectorised ensemble in one batched pass per layer, the state part of the first layer once per
  state).
- robokit_calql: ``robokit.algos.CalQL`` (the same plus the Monte-Carlo lower bound).
- d3rlpy_cql: ``d3rlpy.algos.CQLConfig(...).create()`` with ``n_critics=2``,
  ``n_action_samples=10``, ``conservative_weight=5``, ``alpha_learning_rate=0`` (fixed weight),
  updated through ``impl.update`` on the same torch batches (its numpy-to-torch conversion is
  not timed).

The issue's target: robokit CQL >= 2x d3rlpy CQL updates/s. Contenders are timed in
interleaved rounds (the CPU is shared) and the median is reported.
"""

from __future__ import annotations

import json
import sys
import time

import torch
from sac_update import (  # benchmarks/ is the script dir
    ACT,
    BATCH,
    HIDDEN,
    OBS,
    interleaved_medians,
    random_batch,
    timing_parser,
)


def update_macs(n_actions: int = 10, members: int = 2) -> float:
    """Multiply-accumulates of one CQL update, counted layer by layer (the bound's numerator).

    The critic penalty dominates: 3N actions x B states through E members, forward, weight
    gradients and input gradients of every layer but the first. Add the data-action critic
    (fwd + bwd), the target (actor + critic forward), the penalty's actor pass (2B states) and
    the actor step (actor fwd + bwd, critic fwd + input bwd).
    """
    widths_q = [OBS + ACT, *HIDDEN, 1]
    widths_pi = [OBS, *HIDDEN, 2 * ACT]
    per_row_q = sum(a * b for a, b in zip(widths_q[:-1], widths_q[1:], strict=True))
    per_row_q_input_grad = per_row_q - widths_q[0] * widths_q[1]
    per_row_pi = sum(a * b for a, b in zip(widths_pi[:-1], widths_pi[1:], strict=True))
    penalty_rows = 3 * n_actions * BATCH * members
    penalty = penalty_rows * (2 * per_row_q + per_row_q_input_grad)
    data = BATCH * members * (3 * per_row_q)
    target = BATCH * (per_row_pi + members * per_row_q)
    sampling = 2 * BATCH * per_row_pi
    actor = BATCH * (3 * per_row_pi + members * 2 * per_row_q)
    return float(penalty + data + target + sampling + actor)


def gemm_rate(seconds: float) -> float:
    """Measured single-process fp32 GEMM rate (MAC/s) at the penalty's largest layer shape."""
    a, b = torch.randn(3 * 10 * BATCH, HIDDEN[0]), torch.randn(HIDDEN[0], HIDDEN[1])
    best = 0.0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        tick = time.process_time()
        for _ in range(5):
            torch.mm(a, b)
        best = max(best, 5 * a.shape[0] * a.shape[1] * b.shape[1] / max(time.process_time() - tick, 1e-9))
    return best


def make_d3rlpy():
    """An update function on d3rlpy's CQL, or (None, reason) when d3rlpy cannot be imported."""
    try:
        import d3rlpy
        from d3rlpy.models.encoders import VectorEncoderFactory
        from d3rlpy.torch_utility import TorchMiniBatch
    except Exception as err:  # noqa: BLE001 - report any import problem
        return None, f"d3rlpy import failed: {err}"
    encoder = VectorEncoderFactory(hidden_units=list(HIDDEN))
    config = d3rlpy.algos.CQLConfig(batch_size=BATCH, n_critics=2, n_action_samples=10, conservative_weight=5.0,
                                    alpha_learning_rate=0.0, actor_learning_rate=1e-4, critic_learning_rate=3e-4,
                                    temp_learning_rate=3e-4, actor_encoder_factory=encoder,
                                    critic_encoder_factory=encoder)
    algo = config.create(device="cpu:0")
    algo.create_impl((OBS,), ACT)
    step = [0]

    def update(b: dict[str, torch.Tensor]) -> None:
        column = {key: b[key][:, None] for key in ("reward", "terminated", "mc_return")}
        batch = TorchMiniBatch(observations=b["obs"], actions=b["action"], rewards=column["reward"],
                               next_observations=b["next_obs"], next_actions=b["action"],
                               returns_to_go=column["mc_return"], terminals=column["terminated"],
                               intervals=torch.ones_like(column["reward"]), device="cpu:0")
        algo.impl.update(batch, step[0])
        step[0] += 1

    return update, None


def main(argv: list[str] | None = None) -> int:
    args = timing_parser(__doc__, "about 3 s per contender and round").parse_args(argv)
    torch.set_num_threads(args.threads)
    seconds, rounds = (3.0, 3) if args.quick else (8.0, 5)
    rounds = args.rounds or rounds
    from robokit.algos import CQL, CalQL, CalQLConfig, CQLConfig

    gen = torch.Generator().manual_seed(0)
    batches = [random_batch(BATCH, gen) for _ in range(8)]
    for b in batches:
        b["mc_return"] = torch.randn(BATCH, generator=gen)
    contenders = {
        "robokit_cql": CQL(CQLConfig(hidden_dims=HIDDEN), OBS, ACT).update,
        "robokit_calql": CalQL(CalQLConfig(hidden_dims=HIDDEN), OBS, ACT).update,
    }
    d3rlpy_update, why = make_d3rlpy()
    if d3rlpy_update is not None:
        contenders["d3rlpy_cql"] = d3rlpy_update
    median = interleaved_medians(contenders, batches, seconds, rounds, args.threads, clock=time.process_time)
    macs, rate = update_macs(), gemm_rate(seconds)
    bound = rate / macs
    print(f"{'bound':<18} {bound:>10.2f}   ({macs / 1e9:.2f} GMAC per update at {rate / 1e9:.1f} GMAC/s)")
    peers = {k: round(v, 2) for k, v in median.items() if k.startswith("d3rlpy")}
    robokit = median["robokit_cql"]
    notes = (f"E=2, N=10 actions per proposal, batch {BATCH}, hidden {HIDDEN}, obs {OBS}, act {ACT}, "
             f"{args.threads} thread(s), CPU shared with other jobs; robokit Cal-QL: {median['robokit_calql']:.2f} "
             f"upd/s; target: ratio >= 2; bound = GEMM rate {rate / 1e9:.1f} GMAC/s (best CPU-time of "
             f"a 7680x256x256 mm here) / {macs / 1e9:.2f} GMAC per update, the same arithmetic for d3rlpy")
    if why:
        notes += f"; d3rlpy left out: {why}"
    ratio = round(robokit / max(peers.values()), 3) if peers else None
    print(json.dumps({"benchmark": "cql_update", "unit": "updates/s", "higher_is_better": True,
                      "robokit": round(robokit, 2), "peers": peers, "ratio": ratio, "bound": round(bound, 2),
                      "notes": notes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
