"""CQL / Cal-QL gradient updates per second on CPU: robokit vs d3rlpy 2.8.1's CQL, same run.

One update = one critic step (TD + CQL penalty over N=10 uniform, N current-policy and N
next-policy actions per state, importance weighted), one actor step, one temperature step and a
Polyak target update. Same sizes for everyone: 2 critics and an actor of hidden (256, 256),
batch 256, obs 17 / action 6 (Hopper-like), fixed conservative weight 5 (no Lagrange dual),
Adam. Threads: 1 (``--threads``).

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

import argparse
import json
import sys

import torch
from sac_update import (  # benchmarks/ is the script dir
    ACT,
    BATCH,
    HIDDEN,
    OBS,
    random_batch,
    time_updates,
)


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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="about 3 s per contender and round")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=None, help="interleaved timing rounds (median reported)")
    args = parser.parse_args(argv)
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
    speeds: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):  # interleave so load changes on the shared CPU hit everyone alike
        for name, update in contenders.items():
            speeds[name].append(time_updates(update, batches, seconds))
    median = {name: sorted(v)[len(v) // 2] for name, v in speeds.items()}
    print(f"{'contender':<16} {'updates/s':>10}   (median of {rounds} rounds, {args.threads} thread(s))")
    for name, value in median.items():
        print(f"{name:<16} {value:>10.2f}")
    peers = {k: round(v, 2) for k, v in median.items() if k.startswith("d3rlpy")}
    robokit = median["robokit_cql"]
    notes = (f"E=2, N=10 actions per proposal, batch {BATCH}, hidden {HIDDEN}, obs {OBS}, act {ACT}, "
             f"{args.threads} thread(s), CPU shared with other jobs; robokit Cal-QL: {median['robokit_calql']:.2f} "
             "upd/s; target: ratio >= 2")
    if why:
        notes += f"; d3rlpy left out: {why}"
    ratio = round(robokit / max(peers.values()), 3) if peers else None
    print(json.dumps({"benchmark": "cql_update", "unit": "updates/s", "higher_is_better": True,
                      "robokit": round(robokit, 2), "peers": peers, "ratio": ratio, "bound": None,
                      "notes": notes}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
