"""IQL like for like: robokit vs d3rlpy 2.8.1 on the same Hopper-v5 data, in one run.

Both learners see the same transitions (the same minibatch index stream per seed), the same
network sizes (actor, two critics and V of hidden (256, 256), torch default init), batch 256,
expectile 0.7, beta 3, weight clip 100, lr 3e-4, discount 0.99, tau 0.005, and the official
IQL recipe where both libraries offer it: rewards scaled by 1000 / (max - min episode return)
(``train_offline.py``) and a cosine actor-lr decay over the run (``learner.py``; d3rlpy's
``CosineAnnealingLRFactory(T_max=updates)``, ``--no-official-recipe`` turns both off). Training
alternates blocks of updates between the two so load changes on a shared CPU hit both alike;
updates/s counts sampling + update for each, per CPU-second (process time, one thread). At the
end each policy's deterministic action (tanh of the mean for both) is evaluated on Hopper-v5
(``--eval-episodes`` episodes).

What differs is what the libraries do inside an update:
- robokit (``robokit.algos.IQL``, its defaults = the official IQL code): V step, actor step
  reading the updated V, Q step, Polyak; actor N(tanh mu, std) with a state-independent log std
  clipped to [-5, 2] from 0 (``--robokit-policy tanh_gaussian`` gives robokit's earlier actor).
- d3rlpy: one optimizer step on Q + V together, then the actor; its log std is a parameter
  squashed by a sigmoid into [-5, 2] (starting at -1.5).

Data: ``--dataset DIR`` (Minari) or, by default, robokit's own recipe is run once into
``--cache``: ``robokit train --algo sac --env Hopper-v5 --online-steps N --save-datasets`` and
its ``medium-replay``. ``--quick``: 300 updates on 20 random-policy episodes, 1 seed, 2 eval
episodes (a smoke run, not a result). Full (the issue's setting): 10k updates, 2 seeds,
1 torch thread. The last line is the benchmark JSON object.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HIDDEN, BATCH = (256, 256), 256


def recipe_dataset(cache: Path, online_steps: int) -> Path:
    """robokit's medium-replay recipe (SAC online, seed 0), run once and cached."""
    data = cache / f"hopper-sac-{online_steps}" / "data"
    if not (data / "medium-replay").exists():
        cmd = [sys.executable, "-m", "robokit", "train", "--algo", "sac", "--env", "Hopper-v5",
               "--online-steps", str(online_steps), "--seed", "0", "--out", str(data.parent / "run"),
               "--save-datasets", str(data), "--eval-every", str(online_steps), "--eval-episodes", "3",
               "--no-progress"]
        subprocess.run(cmd, check=True)
    return data / "medium-replay"


def random_dataset(cache: Path, episodes: int) -> Path:
    """``robokit collect --policy random`` (for --quick only)."""
    out = cache / f"hopper-random-{episodes}"
    if not out.exists():
        subprocess.run([sys.executable, "-m", "robokit", "collect", "--env", "Hopper-v5", "--policy", "random",
                        "--episodes", str(episodes), "--seed", "0", "--out", str(out)], check=True)
    return out


def flat_transitions(path: Path, official_recipe: bool) -> tuple[dict[str, np.ndarray], dict]:
    """Episodes -> flat float32 arrays obs, action, reward, next_obs, terminated, timeout (episode
    ends), and facts about the data; rewards scaled as the official IQL code does when asked."""
    from robokit.algos.iql import locomotion_reward_scale
    from robokit.data import load_episodes

    episodes = load_episodes(path)
    returns = [float(np.sum(ep.rewards)) for ep in episodes]
    scale = locomotion_reward_scale(returns) if official_recipe else 1.0
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("obs", "action", "reward", "next_obs", "terminated",
                                                           "timeout")}
    for ep in episodes:
        obs = np.asarray(ep.observations, np.float32)
        steps = len(ep.actions)
        parts["obs"].append(obs[:-1])
        parts["next_obs"].append(obs[1:])
        parts["action"].append(np.asarray(ep.actions, np.float32))
        parts["reward"].append(np.asarray(ep.rewards, np.float32) * np.float32(scale))
        parts["terminated"].append(np.asarray(ep.terminated, np.float32))
        end = np.zeros(steps, np.float32)
        end[-1] = 0.0 if ep.terminated[-1] else 1.0
        parts["timeout"].append(end)
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    facts = {"transitions": len(arrays["reward"]), "episodes": len(episodes), "reward_scale": scale,
             "return_min": min(returns), "return_max": max(returns), "return_mean": float(np.mean(returns))}
    return arrays, facts


class Robokit:
    """robokit's IQL with the shared settings."""

    name = "robokit"

    def __init__(self, obs_dim: int, act_dim: int, seed: int, updates: int, official: bool, policy: str) -> None:
        from robokit.algos import IQLConfig
        from robokit.algos.iql import IQL

        config = IQLConfig(hidden_dims=HIDDEN, batch_size=BATCH, policy=policy,
                           actor_lr_schedule="cosine" if official else "constant", cosine_decay_steps=updates)
        self.agent = IQL(config, obs_dim, act_dim, seed=seed)

    def update(self, batch: dict[str, torch.Tensor]) -> None:
        self.agent.update(batch)

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.agent.act(obs, deterministic)


class D3rlpy:
    """d3rlpy 2.8.1's IQL with the shared settings, fed the same torch batches."""

    name = "d3rlpy"

    def __init__(self, obs_dim: int, act_dim: int, seed: int, updates: int, official: bool) -> None:
        import d3rlpy
        from d3rlpy.models.encoders import VectorEncoderFactory
        from d3rlpy.optimizers import AdamFactory
        from d3rlpy.optimizers.lr_schedulers import CosineAnnealingLRFactory

        d3rlpy.seed(seed)
        encoder = VectorEncoderFactory(hidden_units=list(HIDDEN))
        actor_optim = AdamFactory(lr_scheduler_factory=CosineAnnealingLRFactory(T_max=updates)) if official \
            else AdamFactory()
        config = d3rlpy.algos.IQLConfig(batch_size=BATCH, actor_learning_rate=3e-4, critic_learning_rate=3e-4,
                                        gamma=0.99, tau=0.005, n_critics=2, expectile=0.7, weight_temp=3.0,
                                        max_weight=100.0, actor_encoder_factory=encoder,
                                        critic_encoder_factory=encoder, value_encoder_factory=encoder,
                                        actor_optim_factory=actor_optim)
        self.algo = config.create(device="cpu:0")
        self.algo.create_impl((obs_dim,), act_dim)
        self.steps = 0

    def update(self, batch: dict[str, torch.Tensor]) -> None:
        from d3rlpy.torch_utility import TorchMiniBatch

        column = {key: batch[key][:, None] for key in ("reward", "terminated")}
        minibatch = TorchMiniBatch(observations=batch["obs"], actions=batch["action"], rewards=column["reward"],
                                   next_observations=batch["next_obs"], next_actions=batch["action"],
                                   returns_to_go=torch.zeros_like(column["reward"]),
                                   terminals=column["terminated"], intervals=torch.ones_like(column["reward"]),
                                   device="cpu:0")
        self.algo.impl.update(minibatch, self.steps)
        self.steps += 1

    def act(self, obs: np.ndarray, deterministic: bool = True) -> np.ndarray:
        return self.algo.predict(np.asarray(obs, np.float32)[None])[0]


def batch_at(arrays: dict[str, np.ndarray], index: np.ndarray) -> dict[str, torch.Tensor]:
    return {key: torch.from_numpy(arrays[key][index]) for key in ("obs", "action", "reward", "next_obs", "terminated")}


def train_pair(learners: list, arrays: dict[str, np.ndarray], updates: int, seed: int, block: int) -> dict[str, float]:
    """Train every learner on the same index stream, alternating blocks; CPU seconds per learner
    (process time: with one thread, time on a core, so other jobs on a shared CPU do not count)."""
    rng = np.random.default_rng(seed)
    size = len(arrays["reward"])
    seconds = {learner.name: 0.0 for learner in learners}
    done = 0
    while done < updates:
        count = min(block, updates - done)
        indices = rng.integers(0, size, size=(count, BATCH))
        for learner in learners:
            start = time.process_time()
            for index in indices:
                learner.update(batch_at(arrays, index))
            seconds[learner.name] += time.process_time() - start
        done += count
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="300 updates, random data, 1 seed (smoke run)")
    parser.add_argument("--dataset", type=Path, default=None, help="Minari dataset dir (default: the recipe)")
    parser.add_argument("--cache", type=Path, default=Path("runs/bench_iql"))
    parser.add_argument("--dataset-steps", type=int, default=30_000, help="SAC env steps of the recipe")
    parser.add_argument("--updates", type=int, default=None)
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--eval-episodes", type=int, default=None)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--block", type=int, default=500, help="updates per learner before switching")
    parser.add_argument("--no-official-recipe", dest="official", action="store_false",
                        help="no reward normalisation and a constant actor lr for both")
    parser.add_argument("--robokit-policy", default="gaussian", choices=("gaussian", "tanh_gaussian"))
    parser.add_argument("--learners", nargs="+", default=["robokit", "d3rlpy"], choices=("robokit", "d3rlpy"),
                        help="train only these (e.g. robokit alone for an ablation)")
    parser.add_argument("--out", type=Path, default=None, help="also write the per-seed results here (JSON)")
    parser.add_argument("--combine", type=Path, nargs="+", default=None, metavar="JSON",
                        help="merge earlier --out files (e.g. one seed per process) into one summary; trains nothing")
    args = parser.parse_args(argv)
    if args.combine:
        return combine(args.combine, args.out)
    torch.set_num_threads(args.threads)
    updates = args.updates or (300 if args.quick else 10_000)
    seeds = args.seeds or ([0] if args.quick else [0, 1])
    episodes = args.eval_episodes or (2 if args.quick else 10)
    if args.dataset is not None:
        path = args.dataset
    elif args.quick:
        path = random_dataset(args.cache, 20)
    else:
        path = recipe_dataset(args.cache, args.dataset_steps)
    arrays, facts = flat_transitions(path, args.official)
    obs_dim, act_dim = arrays["obs"].shape[1], arrays["action"].shape[1]

    from robokit.envs import make_env
    from robokit.trainers.evaluation import evaluate

    env = make_env("Hopper-v5")
    runs = []
    for seed in seeds:
        learners = [Robokit(obs_dim, act_dim, seed, updates, args.official, args.robokit_policy)
                    if name == "robokit" else D3rlpy(obs_dim, act_dim, seed, updates, args.official)
                    for name in args.learners]
        seconds = train_pair(learners, arrays, updates, seed, args.block)
        for learner in learners:
            result = evaluate(learner, env, episodes, seed=seed)
            runs.append({"learner": learner.name, "seed": seed, "updates_per_s": updates / seconds[learner.name],
                         "return": result["eval/return_mean"], "return_std_episodes": result["eval/return_std"]})
            print(json.dumps(runs[-1]), flush=True)
    summary = summarize(runs)
    print(summary_text(summary))
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"runs": runs, "summary": summary, "data": facts, "args": vars(args)},
                                       default=str, indent=1))
    print(json.dumps(benchmark_line(summary, facts, args, path, updates, seeds, episodes)))
    return 0


def summarize(runs: list[dict]) -> dict:
    """Per learner: mean updates/s, the returns over seeds with their 95% Student-t interval, and,
    where both learners ran the same seeds, the paired difference robokit - d3rlpy per seed."""
    from robokit.intact.protocol import mean_ci95

    summary = {}
    for name in dict.fromkeys(r["learner"] for r in runs):
        mine = sorted((r for r in runs if r["learner"] == name), key=lambda r: r["seed"])
        returns = np.array([r["return"] for r in mine])
        interval = mean_ci95(returns)
        summary[name] = {"updates_per_s": float(np.mean([r["updates_per_s"] for r in mine])),
                         "return_mean": float(returns.mean()), "return_std_seeds": float(returns.std()),
                         "return_ci95": interval["ci95"], "seeds": [r["seed"] for r in mine],
                         "returns": returns.round(1).tolist()}
    if {"robokit", "d3rlpy"} <= summary.keys() and summary["robokit"]["seeds"] == summary["d3rlpy"]["seeds"]:
        summary["paired"] = paired_difference(summary["robokit"]["returns"], summary["d3rlpy"]["returns"])
    return summary


def summary_text(summary: dict) -> str:
    """The lines printed for a :func:`summarize` result: one per learner, then the pairing."""
    lines = [f"{name:<8} {row['updates_per_s']:8.1f} upd/s   return {row['return_mean']:7.1f} "
             f"+- {row['return_ci95']:5.1f} (95% CI) over seeds {row['seeds']}: {row['returns']}"
             for name, row in summary.items() if name != "paired"]
    if "paired" in summary:
        pair = summary["paired"]
        lines.append(f"paired robokit - d3rlpy: {pair['mean']:.1f} [{pair['low']:.1f}, {pair['high']:.1f}] "
                     f"(95% CI), wins {pair['robokit_wins']}:{pair['d3rlpy_wins']}, "
                     f"sign-flip p = {pair['sign_flip_p']:.3f}")
    return "\n".join(lines)


def paired_difference(mine: list[float], peer: list[float]) -> dict:
    """robokit - d3rlpy per seed: mean, 95% Student-t interval, seeds won by each, and the
    two-sided sign-flip (exact permutation) p-value of the mean difference."""
    import itertools

    from robokit.intact.protocol import mean_ci95

    diff = np.asarray(mine, np.float64) - np.asarray(peer, np.float64)
    interval = mean_ci95(diff)
    flips = [abs(np.dot(signs, diff)) for signs in itertools.product((1.0, -1.0), repeat=len(diff))]
    p_value = float(np.mean(np.asarray(flips) >= abs(diff.sum()) - 1e-9))
    return {"differences": diff.round(1).tolist(), "mean": interval["mean"], "ci95": interval["ci95"],
            "low": interval["low"], "high": interval["high"], "robokit_wins": int((diff > 0).sum()),
            "d3rlpy_wins": int((diff < 0).sum()), "sign_flip_p": p_value}


def combine(paths: list[Path], out: Path | None) -> int:
    """``--combine``: merge per-seed ``--out`` files (one seed per process) into one summary."""
    try:
        files = [json.loads(path.read_text()) for path in paths]
        runs = [run for data in files for run in data["runs"]]
    except (OSError, ValueError, KeyError, TypeError) as err:
        print(f"error: --combine: {err} (each file must be a benchmark --out JSON with 'runs')", file=sys.stderr)
        return 2
    summary = summarize(runs)
    print(summary_text(summary))
    first = next((data for data in files if data.get("args") and data.get("data")), None)
    if first is None:
        print("error: --combine: no file holds the run's 'args' and 'data' (a benchmark --out file does)",
              file=sys.stderr)
        return 2
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"runs": runs, "summary": summary, "sources": [str(p) for p in paths],
                                   "notes": [data["notes"] for data in files if data.get("notes")],
                                   "data": first["data"], "args": first["args"]}, indent=1))
    args = argparse.Namespace(**first["args"])
    path = Path(str(first["args"].get("dataset") or "medium-replay"))
    seeds = sorted({run["seed"] for run in runs})
    print(json.dumps(benchmark_line(summary, first["data"], args, path, int(first["args"]["updates"] or 10_000),
                                    seeds, int(first["args"]["eval_episodes"] or 10))))
    return 0


def benchmark_line(summary: dict, facts: dict, args: argparse.Namespace, path: Path, updates: int,
                   seeds: list[int], episodes: int) -> dict:
    """The closing JSON object: updates/s and returns of robokit and d3rlpy (where trained)."""
    described = "; ".join(f"return {name} {s['return_mean']:.1f} +- {s['return_std_seeds']:.1f} (std over seeds; "
                          f"95% CI +- {s['return_ci95']:.1f}) {s['returns']}"
                          for name, s in summary.items() if name != "paired")
    notes = (f"{'quick smoke run: random-policy data; ' if args.quick else ''}{facts['transitions']} transitions "
             f"({path.name}), {updates} updates, seeds {seeds}, {episodes} eval episodes, batch {BATCH}, hidden "
             f"{HIDDEN}, {args.threads} thread(s); official recipe (reward x{facts['reward_scale']:.3f}, cosine "
             f"actor lr) {'on' if args.official else 'off'}; robokit policy {args.robokit_policy}; {described}")
    rk, d3 = summary.get("robokit"), summary.get("d3rlpy")
    line = {"benchmark": "iql_vs_d3rlpy", "unit": "updates/s", "higher_is_better": True,
            "robokit": round(rk["updates_per_s"], 2) if rk else None,
            "peers": {"d3rlpy": round(d3["updates_per_s"], 2)} if d3 else {},
            "ratio": round(rk["updates_per_s"] / d3["updates_per_s"], 3) if rk and d3 else None, "bound": None,
            "robokit_return": round(rk["return_mean"], 1) if rk else None,
            "d3rlpy_return": round(d3["return_mean"], 1) if d3 else None, "notes": notes}
    if rk and d3 and d3["return_mean"]:
        line["return_ratio"] = round(rk["return_mean"] / d3["return_mean"], 3)
    if "paired" in summary:
        line["paired_return_difference"] = {key: round(value, 3) if isinstance(value, float) else value
                                            for key, value in summary["paired"].items()}
    return line


if __name__ == "__main__":
    sys.exit(main())
