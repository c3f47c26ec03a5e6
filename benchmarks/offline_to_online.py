"""Reduced reproduction of WSRL's offline-to-online comparison (Zhou et al. 2024) on CPU.

For each env (gymnasium Hopper-v5, dense; robokit/ArmReach-v0, sparse) and seed:

1. datasets: SAC online for ``dataset_steps`` env steps; its whole replay is "medium-replay"
   (``robokit train --algo sac --save-datasets``), seed 0 only, shared by all seeds;
2. pretraining: WSRL's offline phase (CQL on Hopper, Cal-QL on ArmReach; 10-member LayerNorm
   ensemble) for ``offline_steps`` gradient steps on medium-replay;
3. fine-tuning for ``online_steps`` env steps, every method from the same pretrained networks
   where it has one:
   - wsrl:            warm-up (policy, no updates), SAC fine-tuning, no offline data retained;
   - wsrl_no_warmup:  the same with warm-up 0;
   - cql_retain:      CQL / Cal-QL fine-tuning (penalty kept) with 50/50 offline data retained;
   - rlpd:            no pretraining, E=10 LayerNorm SAC, 50/50 offline/online mix;
   - sac:             SAC from scratch (2 critics), random warm-up.

Every method runs at the budget's UTD ratio (``utd_ratio`` critic minibatches of ``batch_size``
per env step), so the comparison is at equal update-to-data ratio; mixed batches hold the exact
offline share in every minibatch.

Budgets are reduced from the paper (see ``BUDGETS`` and docs/rl.md). Each run lives in its own
folder and is skipped when already finished (and resumed when killed), so the script can be
re-run to extend or finish a sweep. Outputs: ``results.json``, ``results.md`` (returns at fixed
online budgets, start-of-fine-tuning dip) and ``curves.png``; the last stdout line is the
benchmark JSON object.
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

METHODS = ("wsrl", "wsrl_no_warmup", "cql_retain", "rlpd", "sac")
ENVS = {"Hopper-v5": {"calql": False, "failure": None},
        "robokit/ArmReach-v0": {"calql": True, "failure": 0.0}}


@dataclasses.dataclass(frozen=True)
class Budget:
    dataset_steps: dict
    offline_steps: int
    online_steps: int
    warmup_steps: int
    utd_ratio: int
    batch_size: int
    hidden_dims: tuple[int, ...]
    cql_n_actions: int
    eval_every: int
    eval_episodes: dict
    seeds: tuple[int, ...]
    envs: tuple[str, ...] = tuple(ENVS)


BUDGETS = {
    "quick": Budget(dataset_steps={"Hopper-v5": 800, "robokit/ArmReach-v0": 800}, offline_steps=50,
                    online_steps=300, warmup_steps=100, utd_ratio=2, batch_size=32, hidden_dims=(32, 32),
                    cql_n_actions=4, eval_every=150, eval_episodes={"Hopper-v5": 2, "robokit/ArmReach-v0": 5},
                    seeds=(0,)),
    "full": Budget(dataset_steps={"Hopper-v5": 15_000, "robokit/ArmReach-v0": 10_000}, offline_steps=400,
                   online_steps=800, warmup_steps=150, utd_ratio=2, batch_size=64, hidden_dims=(64, 64),
                   cql_n_actions=4, eval_every=100, eval_episodes={"Hopper-v5": 3, "robokit/ArmReach-v0": 10},
                   seeds=(0, 1, 2)),
    # longer offline and online phases, run after "full" when the shared CPU leaves time
    "extended": Budget(dataset_steps={"Hopper-v5": 15_000, "robokit/ArmReach-v0": 10_000}, offline_steps=1000,
                       online_steps=2000, warmup_steps=300, utd_ratio=2, batch_size=64, hidden_dims=(64, 64),
                       cql_n_actions=4, eval_every=200, eval_episodes={"Hopper-v5": 3, "robokit/ArmReach-v0": 10},
                       seeds=(0, 1, 2)),
}


def run(algo: str, run_dir: Path, env: str, seed: int, budget: Budget, agent_cfg, force: bool = False,
        **overrides) -> Path:
    """Train one run (skipped when finished unless ``force``, resumed when interrupted); returns its folder."""
    from robokit.trainers.trainer import config_class_for, train

    if not force and (run_dir / "final.pt").exists() and (run_dir / "metrics.csv").exists():
        return run_dir
    cfg = config_class_for(algo)(env=env, seed=seed, out=run_dir, agent=agent_cfg, logger=("csv",),
                                 eval_every=budget.eval_every, eval_episodes=budget.eval_episodes[env],
                                 log_every=250, checkpoint_every=max(budget.online_steps // 2, 500),
                                 resume=True, progress=False, **overrides)
    start = time.perf_counter()
    summary = train(algo, cfg)
    print(f"  {run_dir.relative_to(run_dir.parents[2])}: final return {summary.get('final_return'):.3f} "
          f"({time.perf_counter() - start:.0f}s)", flush=True)
    return run_dir


def make_dataset(datasets: Path, env: str, budget: Budget) -> Path:
    from robokit.algos import SACConfig

    folder = datasets / env.replace("/", "_")
    if not (folder / "medium-replay").exists():
        run("sac", folder / "sac_run", env, 0, budget,
            SACConfig(hidden_dims=budget.hidden_dims, batch_size=budget.batch_size, warmup_steps=budget.warmup_steps),
            force=True, online_steps=budget.dataset_steps[env], save_datasets=folder, dataset_episodes=10)
    return folder / "medium-replay"


def shared_agent_fields(budget: Budget, env: str) -> dict:
    return {"hidden_dims": budget.hidden_dims, "batch_size": budget.batch_size,
            "cql_n_actions": budget.cql_n_actions, "calql": ENVS[env]["calql"]}


PRETRAINED = ("wsrl", "wsrl_no_warmup", "cql_retain")


def run_seed(out: Path, env: str, seed: int, dataset: Path, budget: Budget,
             methods: tuple[str, ...] = METHODS) -> None:
    """Pretrain (when a chosen method needs it), then fine-tune each of ``methods`` for one seed."""
    from robokit.algos import CalQLConfig, RLPDConfig, SACConfig, WSRLConfig

    env_dir = out / env.replace("/", "_") / f"seed{seed}"
    failure = ENVS[env]["failure"]
    common = {"dataset": dataset, "sparse_reward_failure_value": failure}
    shared = shared_agent_fields(budget, env)
    if any(m in PRETRAINED for m in methods):
        pretrain = run("wsrl", env_dir / "pretrain", env, seed, budget, WSRLConfig(**shared),
                       offline_steps=budget.offline_steps, online_steps=0, **common)
        init = {"init_from": pretrain / "final.pt", "online_steps": budget.online_steps, **common}
    wsrl_cfg = WSRLConfig(**shared, utd_ratio=budget.utd_ratio, warmup_steps=budget.warmup_steps)
    # the same networks as the WSRL pretraining (10 LayerNorm critics, LayerNorm policy), CQL's min actor
    retain_cfg = CalQLConfig(**shared, ensemble_size=10, layer_norm=True, policy_layer_norm=True,
                             actor_q_reduction="min", online_cql=True, offline_fraction=0.5,
                             utd_ratio=budget.utd_ratio, warmup_steps=0)
    rlpd_cfg = RLPDConfig(hidden_dims=budget.hidden_dims, batch_size=budget.batch_size, utd_ratio=budget.utd_ratio,
                          warmup_steps=budget.warmup_steps)
    sac_cfg = SACConfig(hidden_dims=budget.hidden_dims, batch_size=budget.batch_size, warmup_steps=budget.warmup_steps,
                        utd_ratio=budget.utd_ratio)
    recipes = {
        "wsrl": lambda: run("wsrl", env_dir / "wsrl", env, seed, budget, wsrl_cfg, **init),
        "wsrl_no_warmup": lambda: run("wsrl", env_dir / "wsrl_no_warmup", env, seed, budget,
                                      dataclasses.replace(wsrl_cfg, warmup_steps=0), **init),
        "cql_retain": lambda: run("calql", env_dir / "cql_retain", env, seed, budget, retain_cfg, **init),
        "rlpd": lambda: run("rlpd", env_dir / "rlpd", env, seed, budget, rlpd_cfg, **common,
                            online_steps=budget.online_steps),
        "sac": lambda: run("sac", env_dir / "sac", env, seed, budget, sac_cfg, online_steps=budget.online_steps),
    }
    for method in methods:
        recipes[method]()


# ------------------------------------------------------------------------ report
def collect(out: Path, budget: Budget) -> dict:
    """Per env and method: eval curves over seeds (online env steps -> return)."""
    from robokit.trainers.plotting import read_eval_curve

    results: dict = {}
    for env in budget.envs:
        env_dir = out / env.replace("/", "_")
        for method in METHODS:
            curves = []
            for seed in budget.seeds:
                csv_path = env_dir / f"seed{seed}" / method / "metrics.csv"
                if not (env_dir / f"seed{seed}" / method / "final.pt").exists():
                    continue
                curve = read_eval_curve(csv_path)
                steps = np.array(curve["env_steps"])
                online = steps > 0
                # env step 0 of a fine-tuning run is the pretrained policy
                points = {0: curve["mean"][int(np.flatnonzero(~online)[-1])] if (~online).any() else None}
                points.update({int(s): m for s, m in zip(steps[online], np.array(curve["mean"])[online], strict=True)})
                success = {int(s): v for s, v in zip(steps, curve["success"], strict=True)}
                curves.append({"seed": seed, "returns": points, "success": success})
            if curves:
                results.setdefault(env, {})[method] = curves
    return results


def dip(curve: dict, horizon: int) -> float | None:
    """min(eval return over online steps (0, horizon]) - return at step 0; negative = a dip."""
    start = curve["returns"].get(0)
    early = [v for s, v in curve["returns"].items() if 0 < s <= horizon and v is not None]
    return None if start is None or not early else min(early) - start


def budget_table(results: dict, budget: Budget) -> tuple[str, dict]:
    """Markdown table of mean +- std eval return over seeds at fixed online budgets, and the dip."""
    def on_eval_grid(steps: int) -> int:  # budgets where an evaluation happened
        return steps // budget.eval_every * budget.eval_every

    marks = sorted({0, on_eval_grid(budget.online_steps // 4), on_eval_grid(budget.online_steps // 2),
                    budget.online_steps})
    horizon = budget.online_steps // 2
    lines = ["| env | method | seeds | " + " | ".join(f"{m} steps" for m in marks)
             + f" | dip: min(0, {horizon}] - start |",
             "|---|---|---|" + "---|" * len(marks) + "---|"]
    headline: dict = {}
    for env, methods in results.items():
        for method, curves in methods.items():
            cells, finals = [], []
            for mark in marks:
                values = [c["returns"].get(mark) for c in curves if c["returns"].get(mark) is not None]
                cells.append(f"{np.mean(values):.2f} +- {np.std(values):.2f}" if values else "-")
                if mark == budget.online_steps:
                    finals = values
            dips = [d for d in (dip(c, horizon) for c in curves) if d is not None]
            dip_cell = f"{np.mean(dips):.2f} +- {np.std(dips):.2f}" if dips else "-"
            lines.append(f"| {env} | {method} | {len(curves)} | " + " | ".join(cells) + f" | {dip_cell} |")
            headline.setdefault(env, {})[method] = float(np.mean(finals)) if finals else None
    return "\n".join(lines), headline


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(6 * len(results), 4), squeeze=False)
    for ax, (env, methods) in zip(axes[0], results.items(), strict=True):
        for method, curves in methods.items():
            steps = sorted(set.intersection(*[set(k for k, v in c["returns"].items() if v is not None)
                                               for c in curves]))
            values = np.array([[c["returns"][s] for s in steps] for c in curves])
            mean, std = values.mean(0), values.std(0)
            ax.plot(steps, mean, label=f"{method} (n={len(curves)})")
            ax.fill_between(steps, mean - std, mean + std, alpha=0.15)
        ax.set_title(env)
        ax.set_xlabel("online env steps (0 = after offline pretraining)")
        ax.set_ylabel("eval return" + (" (= success rate)" if "Arm" in env else ""))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="tiny budgets, 1 seed (a smoke run, < 2 min)")
    parser.add_argument("--budget", choices=sorted(BUDGETS), default=None, help="full (default), extended, quick")
    parser.add_argument("--datasets", type=Path, default=None,
                        help="folder of (or for) the SAC datasets; default OUT/datasets")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default runs/offline_to_online[_quick])")
    parser.add_argument("--seeds", type=int, nargs="*", default=None, help="override the budget's seeds")
    parser.add_argument("--methods", nargs="*", choices=METHODS, default=None,
                        help="only these methods (e.g. to spread one seed over processes)")
    parser.add_argument("--envs", nargs="*", choices=sorted(ENVS), default=None,
                        help="only these envs (e.g. one process per env; --report-only with all envs afterwards)")
    parser.add_argument("--report-only", action="store_true", help="only aggregate finished runs")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    budget_name = "quick" if args.quick else (args.budget or "full")
    budget = BUDGETS[budget_name]
    if args.seeds is not None:
        budget = dataclasses.replace(budget, seeds=tuple(args.seeds))
    if args.envs:
        budget = dataclasses.replace(budget, envs=tuple(args.envs))
    default_out = "offline_to_online" + ("" if budget_name == "full" else f"_{budget_name}")
    out = (args.out or Path("runs") / default_out).resolve()
    datasets_dir = (args.datasets or out / "datasets").resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    if not args.report_only:
        datasets = {env: make_dataset(datasets_dir, env, budget) for env in budget.envs}
        for seed in budget.seeds:
            for env in budget.envs:
                run_seed(out, env, seed, datasets[env], budget, tuple(args.methods or METHODS))
    results = collect(out, budget)
    table, headline = budget_table(results, budget)
    if results:
        plot(results, out / "curves.png")
    (out / "results.md").write_text(f"Budget: {budget}\n\n{table}\n")
    (out / "results.json").write_text(json.dumps({"budget": dataclasses.asdict(budget), "results": results,
                                                  "final": headline}, indent=1, default=str))
    print(table)
    hopper = headline.get("Hopper-v5", {})
    peers = {m: v for m, v in hopper.items() if m != "wsrl" and v is not None}
    wsrl = hopper.get("wsrl")
    best = max(peers.values()) if peers else None
    ratio = (wsrl / best) if (wsrl is not None and best) else None
    print(json.dumps({"benchmark": "offline_to_online_hopper", "unit": "eval return after online budget",
                      "higher_is_better": True, "robokit": wsrl, "peers": peers,
                      "ratio": None if ratio is None else round(ratio, 3), "bound": None,
                      "notes": f"robokit = WSRL; peers = baseline recipes, all implemented in robokit "
                               f"(no external offline-to-online library installed); "
                               f"budget '{budget_name}': "
                               f"{budget.online_steps} online steps, {budget.offline_steps} offline steps, "
                               f"seeds {list(budget.seeds)}; ArmReach in results.md; "
                               f"{time.perf_counter() - start:.0f}s"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
