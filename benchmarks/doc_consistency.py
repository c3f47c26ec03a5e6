"""Reduced reproduction of DoC's consistency experiment: achieved return against the return a
policy is conditioned on, for DoC, DT, RCSL and BC, on stochastic problems and a deterministic
twin (Yang et al., ICLR 2023, the bandit and FrozenLake experiments).

For every env and seed: an offline dataset from a mixture of good and bad policies is written
(Minari), each method is trained with robokit's trainer (``robokit train --algo A --env E
--dataset D --offline-steps N --online-steps 0``), then evaluated conditioned on each target
return of a grid (DT, RCSL: the target return; DoC: the prior latent whose predicted value is
closest to the target; BC: unconditioned). The bandit also runs tabular DoC / DT / BC.

Writes ``--out``/doc_consistency.json and the plot ``--plot`` (x: conditioned return, y:
achieved). The last stdout line is one JSON object (benchmark convention; "peers" are the
baseline methods here, not other libraries).

    python benchmarks/doc_consistency.py --quick          # one env, one seed, few steps (< 2 min)
    nice -n 10 python benchmarks/doc_consistency.py       # the reduced recipe of docs/algos/doc.md
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("OMP_NUM_THREADS", "1")

@dataclasses.dataclass(frozen=True)
class EnvCase:
    env_id: str
    targets: tuple[float, ...]
    episodes: int  # dataset episodes
    horizon: int
    return_scale: float = 1.0
    eval_episodes: int = 50


UNIT = (0.0, 0.25, 0.5, 0.75, 1.0)
ENVS = {
    "bandit": EnvCase("robokit/BernoulliBandit-v0", UNIT, 1000, 1, eval_episodes=500),
    "frozenlake": EnvCase("robokit/FrozenLake-v0", UNIT, 300, 100, eval_episodes=30),
    "frozenlake8x8": EnvCase("robokit/FrozenLake8x8-v0", UNIT, 300, 200, eval_episodes=10),
    "frozenlake-deterministic": EnvCase("robokit/FrozenLakeDeterministic-v0", UNIT, 300, 100, eval_episodes=10),
    "pendulum-noisy": EnvCase("robokit/NoisyInvertedPendulum-v0", (0.0, 40.0, 80.0, 120.0, 160.0), 200, 100,
                              return_scale=100.0, eval_episodes=10),
    "pendulum": EnvCase("robokit/InvertedPendulum-v0", (0.0, 25.0, 50.0, 75.0, 100.0), 200, 100,
                        return_scale=100.0, eval_episodes=10),
}
NEURAL = ("doc", "dt", "rcsl", "bc")


def behaviour_policy(env_name: str, env, rng: np.random.Generator):
    """The dataset's mixture of good and bad policies, as ``start_episode() -> policy(obs)``.

    bandit: the DoC code's behaviour (arm 0, which pays 10%, with probability 0.9; arm 1 pays 90%).
    FrozenLake: per episode eps ~ U(0, 1); eps-greedy on the value-iteration optimal policy.
    pendulum: per episode eps ~ U(0, 1); each step a uniform random action with probability eps,
    else the PD controller.
    """
    from robokit.envs.stochastic import frozen_lake_optimal_policy, one_hot_action

    if env_name == "bandit":
        return lambda: (lambda obs: one_hot_action(int(rng.random() < 0.1), 2))
    if env_name.startswith("pendulum"):
        def start_pendulum():
            eps = rng.random()
            return lambda obs: (rng.uniform(-1, 1, 1) if rng.random() < eps else pd_action(obs)).astype(np.float32)
        return start_pendulum
    best = frozen_lake_optimal_policy(env)

    def start_episode():
        eps = rng.random()
        return lambda obs: one_hot_action(best[int(np.argmax(obs))] if rng.random() >= eps else rng.integers(4), 4)
    return start_episode


def pd_action(obs: np.ndarray) -> np.ndarray:
    """A PD controller that balances InvertedPendulum (force / 3, the env's action scale)."""
    x, angle, x_dot, angle_dot = obs
    return np.clip([(0.5 * x + 8.0 * angle + 1.0 * x_dot + 1.5 * angle_dot) / 3.0], -1.0, 1.0)


def make_dataset(env_name: str, episodes: int, seed: int, out_dir: Path) -> list:
    from robokit.data import save_minari
    from robokit.envs import make_env
    from robokit.trainers.datasets import collect_episodes

    env_id = ENVS[env_name].env_id
    env = make_env(env_id)
    rng = np.random.default_rng(seed)
    start = behaviour_policy(env_name, env, rng)
    data = []
    for k in range(episodes):
        data += collect_episodes(env, start(), 1, seed=seed * 100_000 + k)
    save_minari(data, out_dir, env_id=env_id)
    return data


def agent_overrides(algo: str, args: argparse.Namespace, case: EnvCase) -> dict:
    """The reduced recipe's settings (docs/algos/doc.md lists them)."""
    context = 1 if case.horizon == 1 else args.context
    common = {"batch_size": args.batch_size}
    if algo == "bc":
        return {**common, "hidden_dims": (args.hidden, args.hidden)}
    if algo == "rcsl":
        return {**common, "hidden_dims": (args.hidden, args.hidden), "learning_rate": args.lr,
                "return_scale": case.return_scale}
    seq = {**common, "context_length": context, "hidden": args.hidden, "learning_rate": args.lr,
           "max_timestep": case.horizon, "return_scale": case.return_scale, "dropout": 0.0}
    if algo == "doc":
        seq.update(future_length=context, latent_dim=args.latent)
    return seq


def train_neural(algo: str, env_name: str, dataset: Path, seed: int, args: argparse.Namespace, run_root: Path):
    from robokit.trainers.trainer import Trainer, config_class_for

    case = ENVS[env_name]
    cls = config_class_for(algo)
    agent_cfg = dataclasses.replace(cls().agent, **agent_overrides(algo, args, case))
    config = cls(env=case.env_id, dataset=dataset, offline_steps=args.steps, online_steps=0, seed=seed,
                 out=run_root / f"{env_name}-{algo}-{seed}", logger=("csv",), eval_every=0, eval_episodes=1,
                 log_every=max(args.steps // 4, 1), progress=False, agent=agent_cfg)
    trainer = Trainer(algo, config)
    trainer.run()
    return trainer.agent, trainer.eval_env


def consistency(agent, env, targets, episodes: int, seed: int) -> dict:
    """Achieved mean return per target (and DoC's own highest-value choice under "auto")."""
    from robokit.trainers.evaluation import evaluate

    out = {}
    conditioned = hasattr(agent, "reset_context")
    for target in (targets if conditioned else (None,)):
        agent.target_return = target
        out["none" if target is None else f"{target:g}"] = evaluate(agent, env, episodes, seed=seed)["eval/return_mean"]
    if getattr(agent, "name", "") == "doc":
        agent.target_return = None
        out["auto"] = evaluate(agent, env, episodes, seed=seed)["eval/return_mean"]
    return out


def tabular_bandit(seed: int, steps: int, episodes: int) -> dict:
    """Tabular DoC (the paper's min-max sign, and the official code's joint sign), DT and BC on the
    bandit; expected return of each learned policy."""
    from robokit.algos.tabular import TabularBC, TabularConfig, TabularDoC, TabularDT

    probs = np.array([0.1, 0.9])
    rng = np.random.default_rng(seed)
    actions = (rng.random(episodes) < 0.1).astype(np.int64)
    rewards = (rng.random(episodes) < probs[actions]).astype(np.float64)
    states = np.zeros(episodes, np.int64)
    out = {}
    cases = (("tabular-doc", TabularDoC, "reverse"), ("tabular-doc-joint", TabularDoC, "joint"),
             ("tabular-dt", TabularDT, "reverse"), ("tabular-bc", TabularBC, "reverse"))
    for name, cls, mi_gradient in cases:
        agent = cls(TabularConfig(steps=steps, mi_gradient=mi_gradient), 1, 2, seed)
        agent.fit(states, actions, rewards)
        if name == "tabular-dt":
            out[name] = {f"{t:g}": float(agent.action_probs(0, int(t >= 0.5)) @ probs) for t in (0.0, 1.0)}
        else:
            out[name] = {"auto" if name.startswith("tabular-doc") else "none": float(agent.action_probs(0) @ probs)}
    return out


def optimal_return(env_name: str, episodes: int = 200) -> float:
    """Mean return of the reference policy (bandit: 0.9; FrozenLake: value iteration; pendulum: the PD
    controller), by rollouts."""
    if env_name == "bandit":
        return 0.9
    from robokit.envs import make_env
    from robokit.envs.stochastic import frozen_lake_optimal_policy, one_hot_action
    from robokit.trainers.evaluation import run_episode

    env = make_env(ENVS[env_name].env_id)
    if env_name.startswith("pendulum"):
        policy = pd_action
    else:
        best = frozen_lake_optimal_policy(env)
        policy = lambda obs: one_hot_action(best[int(np.argmax(obs))], 4)  # noqa: E731
    return float(np.mean([run_episode(env, policy, 10**6 + k)["return"] for k in range(episodes)]))


def best_return(curves: dict) -> float:
    return max(curves.values())


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(results["envs"])
    fig, axes = plt.subplots(1, len(envs), figsize=(4.2 * len(envs), 3.8), squeeze=False)
    for ax, env_name in zip(axes[0], envs, strict=True):
        per_method = results["envs"][env_name]["methods"]
        targets = ENVS[env_name].targets
        top = max(targets)
        ax.plot([0, top], [0, top], color="0.7", ls="--", lw=1, label="achieved = conditioned")
        for method, runs in per_method.items():
            if method.startswith("tabular") or not runs:
                continue
            keys = [f"{t:g}" for t in targets]
            if all(k in runs[0] for k in keys):
                values = np.array([[run[k] for k in keys] for run in runs])
                ax.errorbar(targets, values.mean(0), yerr=values.std(0), marker="o", ms=3, capsize=2, label=method)
            elif "none" in runs[0]:
                mean = np.mean([run["none"] for run in runs])
                ax.axhline(mean, lw=1, ls=":", color="k", label=f"{method} (unconditioned)")
        ax.axhline(results["envs"][env_name]["optimal_return"], color="g", lw=0.8, alpha=0.5, label="reference policy")
        ax.set_title(env_name)
        ax.set_xlabel("conditioned return")
        ax.set_ylabel("achieved return")
        ax.set_xlim(-0.05 * top, 1.05 * top)
        ax.set_ylim(-0.05 * top, 1.05 * top)
    axes[0][0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"DoC consistency: mean +- std over {results['seeds']} seeds, {results['steps']} offline steps "
                 f"per run", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def run_env(env_name: str, args: argparse.Namespace, work: Path) -> dict:
    """Datasets, training and consistency curves of every method and seed on one env."""
    case = ENVS[env_name]
    episodes = args.eval_episodes or case.eval_episodes
    result = {"env_id": case.env_id, "optimal_return": optimal_return(env_name), "eval_episodes": episodes,
              "dataset_return": [], "methods": {m: [] for m in args.methods}}
    for seed in range(args.seeds):
        data_dir = work / f"{env_name}-{seed}"
        data = make_dataset(env_name, case.episodes, seed, data_dir)
        result["dataset_return"].append(float(np.mean([ep.total_return for ep in data])))
        for algo in args.methods:
            t0 = time.perf_counter()
            agent, env = train_neural(algo, env_name, data_dir, seed, args, work / "runs")
            curve = consistency(agent, env, case.targets, episodes, seed)
            result["methods"][algo].append(curve)
            print(f"{env_name} seed {seed} {algo}: {json.dumps(curve)} ({time.perf_counter() - t0:.0f}s)",
                  file=sys.stderr, flush=True)
        if env_name == "bandit":
            for name, curve in tabular_bandit(seed, args.tabular_steps, case.episodes).items():
                result["methods"].setdefault(name, []).append(curve)
                print(f"{env_name} seed {seed} {name}: {json.dumps(curve)} (0s)", file=sys.stderr, flush=True)
    result["best_return"] = best_returns(result["methods"])
    return result


def best_returns(methods: dict) -> dict:
    """Per method: the mean over seeds of the best achieved return over the conditioned targets."""
    return {m: float(np.mean([best_return(c) for c in runs])) for m, runs in methods.items() if runs}


LOG_LINE = re.compile(r"^(\S+) seed (\d+) (\S+): (\{.*\}) \((\d+)s\)$")


def from_logs(paths: list[Path], steps: int) -> dict:
    """Rebuild results from the per-run lines a run prints to stderr (for runs stopped early:
    only seeds whose every method finished are kept, and ``seeds`` says how many)."""
    runs: dict = {}
    for path in paths:
        for line in path.read_text().splitlines():
            match = LOG_LINE.match(line.strip())
            if match:
                env_name, seed, method, curve, _ = match.groups()
                runs.setdefault(env_name, {}).setdefault(int(seed), {})[method] = json.loads(curve)
    results: dict = {"steps": steps, "settings": {"from_logs": [str(p) for p in paths]}, "envs": {}}
    seeds_done = []
    for env_name, per_seed in runs.items():
        wanted = set().union(*per_seed.values())  # every method any seed has (logs of several runs merge)
        complete = [seed for seed, methods in sorted(per_seed.items()) if wanted <= set(methods)]
        seeds_done.append(len(complete))
        methods = {m: [per_seed[seed][m] for seed in complete] for m in sorted(wanted)}
        results["envs"][env_name] = {"env_id": ENVS[env_name].env_id, "optimal_return": optimal_return(env_name),
                                     "seeds_done": len(complete), "methods": methods,
                                     "best_return": best_returns(methods)}
    results["seeds"] = min(seeds_done, default=0)
    return results


def headline(results: dict) -> dict:
    """The benchmark's last-line JSON: DoC's best achieved return against the baselines'."""
    name = "frozenlake" if "frozenlake" in results["envs"] else next(iter(results["envs"]))
    best = results["envs"][name]["best_return"]
    peers = {m: round(v, 3) for m, v in best.items() if m != "doc"}
    doc = round(best.get("doc", float("nan")), 3)
    return {"benchmark": "doc_consistency", "unit": "return", "higher_is_better": True, "robokit": doc,
            "peers": peers, "ratio": round(doc / max(max(peers.values(), default=0.0), 1e-9), 3),
            "bound": round(results["envs"][name]["optimal_return"], 3),
            "notes": f"best achieved return of DoC vs baseline methods (not libraries) on {name}, mean of "
                     f"{results['seeds']} seeds, {results['steps']} offline steps, {results.get('seconds')}s"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="bandit only, 1 seed, 150 steps (< 2 min)")
    parser.add_argument("--envs", nargs="+", default=[e for e in ENVS if e != "frozenlake-deterministic"],
                        choices=list(ENVS))
    parser.add_argument("--methods", nargs="*", default=list(NEURAL), choices=list(NEURAL),
                        help="neural methods (none: the bandit's tabular methods only)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=400, help="offline gradient steps per neural run")
    parser.add_argument("--tabular-steps", type=int, default=3000)
    parser.add_argument("--eval-episodes", type=int, default=None, help="per target (default: per env)")
    parser.add_argument("--context", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--latent", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", type=Path, default=None, help="write the results JSON here")
    parser.add_argument("--plot", type=Path, default=None)
    parser.add_argument("--merge", nargs="+", type=Path, default=None,
                        help="combine result JSONs of earlier runs (one per env) into --out/--plot; no training")
    parser.add_argument("--from-logs", nargs="+", type=Path, default=None,
                        help="rebuild results from the stderr logs of runs (complete seeds only); no training")
    args = parser.parse_args(argv)
    if args.quick:
        args.envs, args.seeds, args.steps, args.tabular_steps, args.eval_episodes = ["bandit"], 1, 100, 1000, 200

    if args.from_logs:
        results = from_logs(args.from_logs, args.steps)
    elif args.merge:
        results = merge([json.loads(path.read_text()) for path in args.merge])
    else:
        results = run(args)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1))
    if args.plot is not None:
        plot(results, args.plot)
    print(json.dumps(headline(results)))
    return 0


def run(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    results: dict = {"seeds": args.seeds, "steps": args.steps,
                     "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                     "envs": {}}
    work = Path(tempfile.mkdtemp(prefix="doc_consistency_"))
    try:
        for env_name in args.envs:
            results["envs"][env_name] = run_env(env_name, args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["seconds"] = round(time.perf_counter() - started, 1)
    return results


def merge(parts: list[dict]) -> dict:
    """One result dict from several runs with the same seeds and steps (their envs side by side)."""
    merged = {"seeds": parts[0]["seeds"], "steps": parts[0]["steps"], "settings": parts[0]["settings"], "envs": {},
              "seconds": sum(part.get("seconds", 0.0) for part in parts)}
    for part in parts:
        if (part["seeds"], part["steps"]) != (merged["seeds"], merged["steps"]):
            raise SystemExit("merge: the runs differ in seeds or steps")
        merged["envs"].update(part["envs"])
    return merged


if __name__ == "__main__":
    raise SystemExit(main())
