"""Reduced reproduction of Uni-O4 (Lei et al., ICLR 2024) on CPU: offline, and offline-to-online.

For each env (Hopper-v5, Walker2d-v5) the datasets come from the recipe of
``benchmarks/offline_to_online.py`` (``robokit train --algo sac --save-datasets``): SAC online for
``dataset_steps`` env steps, its whole replay is ``medium-replay`` and ``dataset_episodes`` rollouts of
its final stochastic policy are ``medium`` (seed 0, shared by all seeds). Then per seed:

(a) offline, on both datasets, at equal gradient budgets (``offline_steps`` = Uni-O4's
    critic + BC + improvement steps, for every method): ``unio4`` (its chosen start policy), the best
    single member of its BC ensemble (evaluated from its checkpoint), ``bc`` and ``iql``;
(b) offline-to-online on ``medium-replay``: ``unio4`` (online PPO), ``iql`` fine-tuned online
    (50 % offline data retained, its default) and ``wsrl`` (Cal-QL pretraining at the same offline
    budget, then WSRL fine-tuning: policy warm-up, no offline data retained, UTD ``wsrl_utd``).

Outputs in ``--out``: ``results.md`` (tables), ``results.json``, ``curves.png``; the last stdout
line is the benchmark JSON object. Finished runs are skipped and killed ones resumed on a re-run.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from offline_to_online import run  # noqa: E402  (the shared run-or-resume helper)

ENVS = ("Hopper-v5", "Walker2d-v5")
DATASETS = ("medium", "medium-replay")
OFFLINE_METHODS = ("unio4", "unio4_best_bc_member", "bc", "iql")
ONLINE_METHODS = ("unio4", "iql", "wsrl")
METHODS = ("unio4", "bc", "iql", "wsrl")  # the runs per cell (wsrl: medium-replay only)


@dataclasses.dataclass(frozen=True)
class Budget:
    dataset_steps: int
    dataset_episodes: int
    critic_steps: int
    bc_steps: int
    improve_steps: int
    ope_every: int
    ope_horizon: int
    ope_states: int
    dynamics_max_epochs: int
    online_steps: int
    n_steps: int
    epochs: int
    hidden_dims: tuple[int, ...]
    eval_every: int
    eval_episodes: dict
    seeds: tuple[int, ...]
    envs: tuple[str, ...] = ENVS
    wsrl_utd: int = 1  # WSRL fine-tuning UTD (paper and code: 4); 1 = IQL->online's here, for the CPU

    @property
    def offline_steps(self) -> int:
        return self.critic_steps + self.bc_steps + self.improve_steps


BUDGETS = {
    "quick": Budget(dataset_steps=600, dataset_episodes=3, critic_steps=40, bc_steps=40, improve_steps=40, ope_every=20,
                    ope_horizon=10, ope_states=32, dynamics_max_epochs=2, online_steps=256, n_steps=128, epochs=2,
                    hidden_dims=(32, 32), eval_every=128, eval_episodes={e: 1 for e in ENVS}, seeds=(0,),
                    envs=("Hopper-v5",)),
    "full": Budget(dataset_steps=5000, dataset_episodes=15, critic_steps=600, bc_steps=600, improve_steps=600,
                   ope_every=100, ope_horizon=100, ope_states=256, dynamics_max_epochs=15, online_steps=2048,
                   n_steps=512, epochs=10, hidden_dims=(64, 64), eval_every=512,
                   eval_episodes={e: 2 for e in ENVS}, seeds=(0, 1, 2)),
}


def unio4_config(budget: Budget):
    from robokit.algos import UniO4Config

    h = budget.hidden_dims
    return UniO4Config(critic_steps=budget.critic_steps, bc_steps=budget.bc_steps, improve_steps=budget.improve_steps,
                       ope_every=budget.ope_every, ope_horizon=budget.ope_horizon, ope_states=budget.ope_states,
                       hidden_dims=h, value_hidden_dims=h, q_hidden_dims=h, dynamics_hidden_dims=(h[0],) * 4,
                       dynamics_max_epochs=budget.dynamics_max_epochs, offline_batch_size=256, n_steps=budget.n_steps,
                       epochs=budget.epochs, start_eval_episodes=budget.eval_episodes[budget.envs[0]])


def make_datasets(root: Path, env: str, budget: Budget) -> Path:
    from robokit.algos import SACConfig

    folder = root / env
    if not (folder / "medium-replay").exists():
        run("sac", folder / "runs" / "sac", env, 0, budget,
            SACConfig(hidden_dims=budget.hidden_dims, batch_size=64, warmup_steps=min(1000, budget.dataset_steps // 4)),
            force=True, online_steps=budget.dataset_steps, save_datasets=folder,
            dataset_episodes=budget.dataset_episodes)
    return folder


def run_cell(out: Path, env: str, dataset: str, data_dir: Path, seed: int, budget: Budget,
             methods: tuple[str, ...] = METHODS) -> None:
    from robokit.algos import BCConfig, IQLConfig, WSRLConfig

    cell = out / env / dataset / f"seed{seed}"
    online = dataset == "medium-replay"
    steps = {"offline_steps": budget.offline_steps, "dataset": data_dir / dataset}
    online_steps = budget.online_steps if online else 0
    h = budget.hidden_dims
    runs = budget if online else dataclasses.replace(budget, eval_every=0)  # offline-only: one final evaluation
    if "unio4" in methods:
        run("unio4", cell / "unio4", env, seed, runs, unio4_config(budget), online_steps=online_steps, **steps)
    if "bc" in methods:
        run("bc", cell / "bc", env, seed, runs, BCConfig(hidden_dims=h), online_steps=0, **steps)
    if "iql" in methods:
        run("iql", cell / "iql", env, seed, runs, IQLConfig(hidden_dims=h), online_steps=online_steps, **steps)
    if online and "wsrl" in methods:
        pretrain = run("wsrl", cell / "wsrl_pretrain", env, seed, budget, WSRLConfig(hidden_dims=h, cql_n_actions=4),
                       online_steps=0, **steps)
        run("wsrl", cell / "wsrl", env, seed, budget,
            WSRLConfig(hidden_dims=h, cql_n_actions=4, warmup_steps=min(500, budget.online_steps // 8),
                       utd_ratio=budget.wsrl_utd),
            dataset=data_dir / dataset, init_from=pretrain / "final.pt", online_steps=budget.online_steps)


def best_bc_member(run_dir: Path, env: str, episodes: int, seed: int) -> float:
    """Mean eval return of the best single member of a finished unio4 run's BC ensemble."""
    cache = run_dir / "bc_members.json"
    if cache.exists():
        return max(json.loads(cache.read_text()))
    from robokit.algos import load_agent
    from robokit.algos.unio4 import MemberPolicy
    from robokit.envs import make_env
    from robokit.trainers.evaluation import evaluate

    agent = load_agent(run_dir / "final.pt")
    env_ = make_env(env)
    scores = [evaluate(MemberPolicy(agent, agent.bc, k), env_, episodes, seed=seed)["eval/return_mean"]
              for k in range(agent.config.num_policies)]
    cache.write_text(json.dumps(scores))
    return max(scores)


# ------------------------------------------------------------------------ report
def ope_summary(run_dir: Path) -> dict:
    """First (BC) and last OPE scores (mean over members), their largest magnitude, behaviour replacements,
    the dataset's mean Monte-Carlo return for scale (from the run's final checkpoint)."""
    from robokit.core.checkpoint import load_checkpoint

    modules = load_checkpoint(run_dir / "final.pt")["agent"]["modules"]
    history = modules["ope_history"].numpy()
    done = history[~np.isnan(history).all(1)]
    if not len(done):
        return {}
    return {"first": float(done[0].mean()), "last": float(done[-1].mean()), "max_abs": float(np.abs(done).max()),
            "replacements": float(modules["replacements"].sum()), "finite": bool(np.isfinite(done).all()),
            "evaluations": len(done)}


def collect(out: Path, budget: Budget) -> dict:
    from robokit.trainers.plotting import read_eval_curve

    results: dict = {"offline": {}, "online": {}, "ope": {}}
    for env in budget.envs:
        for dataset in DATASETS:
            for seed in budget.seeds:
                cell = out / env / dataset / f"seed{seed}"
                for method in ("unio4", "bc", "iql", "wsrl"):
                    run_dir = cell / method
                    if not (run_dir / "final.pt").exists():
                        continue
                    curve = read_eval_curve(run_dir / "metrics.csv")
                    steps, means = np.array(curve["env_steps"]), np.array(curve["mean"])
                    if method != "wsrl":  # the last offline evaluation: env step 0
                        offline_score = float(means[steps == 0][-1])
                        results["offline"].setdefault(f"{env}|{dataset}|{method}", []).append(offline_score)
                    if method == "unio4":
                        results["ope"][f"{env}|{dataset}|seed{seed}"] = ope_summary(run_dir)
                        member = best_bc_member(run_dir, env, budget.eval_episodes[env], seed)
                        results["offline"].setdefault(f"{env}|{dataset}|unio4_best_bc_member", []).append(member)
                    if dataset == "medium-replay" and method in ONLINE_METHODS and steps.max() > 0:
                        points = {int(s): float(m) for s, m in zip(steps, means, strict=True)}
                        if method == "wsrl":
                            pre = read_eval_curve(cell / "wsrl_pretrain" / "metrics.csv")
                            points[0] = float(pre["mean"][-1])
                        results["online"].setdefault(f"{env}|{method}", []).append(points)
    return results


def fmt(values: list[float]) -> str:
    return f"{np.mean(values):.1f} +- {np.std(values):.1f} (n={len(values)})" if values else "-"


def tables(results: dict, budget: Budget) -> str:
    lines = [f"### (a) offline return at equal gradient budgets ({budget.offline_steps} offline steps)", "",
             "| env | dataset | " + " | ".join(OFFLINE_METHODS) + " |", "|---|---|" + "---|" * len(OFFLINE_METHODS)]
    for env in budget.envs:
        for dataset in DATASETS:
            cells = [fmt(results["offline"].get(f"{env}|{dataset}|{m}", [])) for m in OFFLINE_METHODS]
            lines.append(f"| {env} | {dataset} | " + " | ".join(cells) + " |")
    marks = sorted({budget.eval_every, budget.online_steps // 2, budget.online_steps})
    horizon = budget.online_steps // 2
    lines += ["", "### (b) offline-to-online on medium-replay", "",
              f"| env | method | last offline (step 0) | dip: min(evals in (0, {horizon}]) - last offline | "
              + " | ".join(f"{m} steps" for m in marks) + " |", "|---|---|---|---|" + "---|" * len(marks)]
    for env in budget.envs:
        for method in ONLINE_METHODS:
            curves = results["online"].get(f"{env}|{method}", [])
            if not curves:
                continue
            start = [c[0] for c in curves if 0 in c]
            dips = [min(v for s, v in c.items() if 0 < s <= horizon) - c[0] for c in curves
                    if 0 in c and any(0 < s <= horizon for s in c)]
            cells = [fmt([c[m] for c in curves if m in c]) for m in marks]
            lines.append(f"| {env} | {method} | {fmt(start)} | {fmt(dips)} | " + " | ".join(cells) + " |")
    lines += ["", "### OPE in the learned dynamics (mean over members of the mean Q along model rollouts)", "",
              "| run | OPE evaluations | first (BC) | last | max abs | behaviour replacements | finite |",
              "|---|---|---|---|---|---|---|"]
    for key, summary in sorted(results["ope"].items()):
        if summary:
            lines.append(f"| {key} | {summary['evaluations']} | {summary['first']:.2f} | {summary['last']:.2f} | {summary['max_abs']:.2f} | "
                         f"{summary['replacements']:.0f} | {summary['finite']} |")
    return "\n".join(lines)


def plot(results: dict, budget: Budget, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(budget.envs), figsize=(6 * len(budget.envs), 4), squeeze=False)
    for ax, env in zip(axes[0], budget.envs, strict=True):
        for method in ONLINE_METHODS:
            curves = results["online"].get(f"{env}|{method}", [])
            if not curves:
                continue
            steps = sorted(set.intersection(*[set(c) for c in curves]))
            values = np.array([[c[s] for s in steps] for c in curves])
            ax.plot(steps, values.mean(0), marker="o", label=f"{method} (n={len(curves)})")
            ax.fill_between(steps, values.mean(0) - values.std(0), values.mean(0) + values.std(0), alpha=0.15)
        for method, style in (("bc", ":"), ("unio4_best_bc_member", "--")):
            offline = results["offline"].get(f"{env}|medium-replay|{method}")
            if offline:
                ax.axhline(np.mean(offline), linestyle=style, color="grey", label=f"{method} offline")
        ax.set_title(f"{env} medium-replay (reduced budget)")
        ax.set_xlabel("online env steps (0 = end of offline training)")
        ax.set_ylabel("eval return")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny budgets, Hopper only, 1 seed (a smoke run)")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/unio4[_quick])")
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="override the budget's seeds")
    parser.add_argument("--envs", nargs="*", default=None, help="override the budget's envs (e.g. one per process)")
    parser.add_argument("--datasets", nargs="*", default=list(DATASETS), help="which datasets to run (both by default)")
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS,
                        help="which runs to train (all by default; the report reads every finished run)")
    parser.add_argument("--report-only", action="store_true", help="only aggregate finished runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    name = "quick" if args.quick else "full"
    budget = BUDGETS[name]
    if args.seeds is not None:
        budget = dataclasses.replace(budget, seeds=tuple(args.seeds))
    if args.envs is not None:
        budget = dataclasses.replace(budget, envs=tuple(args.envs))
    out = (args.out or Path("runs") / ("unio4" + ("_quick" if args.quick else ""))).resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if not args.report_only:
        for env in budget.envs:
            data_dir = make_datasets(out / "datasets", env, budget)
            for seed in budget.seeds:
                for dataset in args.datasets:
                    run_cell(out, env, dataset, data_dir, seed, budget, tuple(args.methods))
    results = collect(out, budget)
    table = tables(results, budget)
    plot(results, budget, out / "curves.png")
    (out / "results.md").write_text(f"Budget '{name}': {budget}\n\n{table}\n")
    (out / "results.json").write_text(json.dumps({"budget": dataclasses.asdict(budget), **results}, indent=1,
                                                 default=str))
    print(table)
    env = budget.envs[0]
    final = {m: float(np.mean([c[budget.online_steps] for c in results["online"].get(f"{env}|{m}", [])
                               if budget.online_steps in c] or [np.nan])) for m in ONLINE_METHODS}
    peers = {m: v for m, v in final.items() if m != "unio4" and np.isfinite(v)}
    ratio = final["unio4"] / max(peers.values()) if peers and np.isfinite(final["unio4"]) and max(peers.values()) > 0 \
        else None
    print(json.dumps({"benchmark": "unio4_offline_to_online", "unit": f"eval return after {budget.online_steps} "
                      f"online steps ({env} medium-replay)", "higher_is_better": True,
                      "robokit": final["unio4"] if np.isfinite(final["unio4"]) else None, "peers": peers,
                      "ratio": None if ratio is None else round(ratio, 3), "bound": None,
                      "notes": f"robokit = Uni-O4; peers = IQL->online and WSRL (Cal-QL pretraining, then "
                               f"WSRL fine-tuning at UTD {budget.wsrl_utd}) implemented in robokit; budget '{name}', "
                               f"{budget.offline_steps} offline steps, seeds "
                               f"{list(budget.seeds)}; offline table in results.md; {time.perf_counter() - start:.0f}s"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
