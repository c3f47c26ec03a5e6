"""Issue 10's learning proofs on CPU, reduced: SAC from pixels, SAC from point clouds, multi-task BC.

Three experiments (``--only`` picks some), each a short CPU run, every seed reported:

- ``pixels``: SAC (robokit's, DrQ-style shared CNN trained by the critic, random shift) on
  ``robokit/InvertedPendulumPixels-v1`` (32x32 RGB from a camera tracking the cart, 3 stacked
  frames, action repeat 2, 200-step episodes = 100 actions), one run per seed; eval return
  against env steps (the trainer's steps: actions, 2 simulator steps each). The CNN is cut to 2 layers of 16 filters so a
  run fits a shared 2-core CPU.
- ``pointcloud``: SAC with the PointNet encoder on ``robokit/ArmReachCloud-v1`` (points on the
  arm's and the goal disc's surfaces, plus joint proprio; dense reward minus distance;
  fingertip-velocity actions), and the same SAC on the privileged state of the same task
  (``robokit/ArmReachDense-v1``, the 12-d vector with goal and fingertip) as the reference of
  what the budget allows.
- ``multitask``: BC conditioned on the task one-hot of ``robokit/ArmReachMultiTask-v0`` from
  noisy scripted demonstrations of both tasks (sampled balanced across tasks with
  :class:`robokit.data.samplers.TaskSampler`); success per task, against the same BC with the
  task vector zeroed (it cannot tell the goals apart), one run per seed.

Each SAC experiment also evaluates a uniformly random policy on the same evaluation resets (mean
return with a 95% Student-t interval over episodes); across seeds the final evaluations get a 95%
interval too. Budgets are far below the papers' (see ``BUDGETS``; docs/multimodal_envs.md has
the figures). Outputs under ``--out``: each run's trainer folder (metrics.csv), ``results.json``,
one PNG per experiment; the last stdout line is the benchmark JSON object.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

PIXEL_ENV = "robokit/InvertedPendulumPixels-v1"
CLOUD_ENV = "robokit/ArmReachCloud-v1"
#: the same task observed through its privileged state (goal and fingertip positions)
CLOUD_STATE_ENV = "robokit/ArmReachDense-v1"
#: PointNet reads x, y, z in arm reaches (0.21 m), so the workspace spans [-1, 1]
ARM_REACH_M = 0.21
TASK_ENV = "robokit/ArmReachMultiTask-v0"
PIXEL_STEPS, CLOUD_STEPS = 2500, 2500
#: random-shift padding for 32x32 frames: DrQ's 4 px is for 84x84 (5% of a side); 2 px is 6% of 32
PIXEL_PAD = 2


@dataclasses.dataclass(frozen=True)
class SacBudget:
    """One SAC experiment's budget: env steps and seeds, batch, UTD, warm-up, eval schedule."""

    steps: int
    seeds: tuple[int, ...]
    batch: int
    eval_every: int
    eval_episodes: int
    warmup: int
    utd: int = 1


@dataclasses.dataclass(frozen=True)
class Budget:
    pixels: SacBudget
    cloud: SacBudget
    demos_per_task: int
    bc_steps: int
    bc_seeds: tuple[int, ...]
    bc_eval_episodes: int
    baseline_episodes: int
    """uniformly random policy episodes per experiment (the reference line)"""


BUDGETS = {
    "full": Budget(pixels=SacBudget(steps=PIXEL_STEPS, seeds=(0, 1, 2), batch=32, eval_every=500, eval_episodes=5,
                                    warmup=500),
                   cloud=SacBudget(steps=CLOUD_STEPS, seeds=(0, 1, 2), batch=64, eval_every=500, eval_episodes=5,
                                   warmup=500),
                   demos_per_task=40, bc_steps=1500, bc_seeds=(0, 1, 2), bc_eval_episodes=20, baseline_episodes=30),
    "quick": Budget(pixels=SacBudget(steps=60, seeds=(0,), batch=16, eval_every=30, eval_episodes=2, warmup=20),
                    cloud=SacBudget(steps=60, seeds=(0,), batch=16, eval_every=30, eval_episodes=2, warmup=20),
                    demos_per_task=4, bc_steps=50, bc_seeds=(0,), bc_eval_episodes=3, baseline_episodes=3),
}


def sac_run(env_id: str, seed: int, budget: SacBudget, out: Path, agent_options: dict) -> dict:
    """One robokit SAC run through the trainer; returns its eval curve (env steps, returns, success)."""
    from robokit.algos import SACConfig
    from robokit.nets.encoders import EncoderConfig
    from robokit.trainers.plotting import read_eval_curve
    from robokit.trainers.trainer import config_class_for, train

    encoder = EncoderConfig(**agent_options.pop("encoder", {}))
    agent = SACConfig(batch_size=budget.batch, utd_ratio=budget.utd, warmup_steps=budget.warmup, encoder=encoder,
                      **agent_options)
    config = config_class_for("sac")(env=env_id, online_steps=budget.steps, seed=seed, out=out, logger=("csv",),
                                     eval_every=budget.eval_every, eval_episodes=budget.eval_episodes,
                                     log_every=budget.eval_every, checkpoint_every=10**9, progress=False,
                                     overwrite=True, agent=agent)
    started = time.perf_counter()
    train("sac", config)
    curve = read_eval_curve(out / "metrics.csv")
    seconds = time.perf_counter() - started
    updates = max(0, budget.steps - budget.warmup) * budget.utd
    return {"seed": seed, "env_steps": curve["env_steps"], "eval_return": curve["mean"],
            "eval_success": curve["success"], "final_return": curve["mean"][-1], "updates": updates,
            "seconds": round(seconds, 1), "updates_per_s": round(updates / seconds, 2)}


class RandomPolicy:
    """Uniform actions in [-1, 1]^A from a seeded generator (``act`` as an agent's)."""

    def __init__(self, action_dim: int, seed: int) -> None:
        self.rng, self.action_dim = np.random.default_rng(seed), action_dim

    def act(self, _obs, deterministic: bool = True) -> np.ndarray:
        return self.rng.uniform(-1, 1, self.action_dim).astype(np.float32)


def random_baseline(env_id: str, episodes: int, seed: int = 0, policy=None) -> dict:
    """The uniformly random policy (or ``policy``, an agent) on the eval episodes' reset seeds:
    per-episode returns, mean with a 95% interval (Student t over episodes), success rate where
    the env has one."""
    from robokit.envs import make_env
    from robokit.intact.protocol import mean_ci95
    from robokit.trainers.evaluation import eval_seeds, evaluate_episode

    env = make_env(env_id)
    policy = policy or RandomPolicy(int(env.action_space.shape[0]), seed)
    records = [evaluate_episode(policy, env, reset_seed) for reset_seed in eval_seeds(seed, episodes)]
    env.close()
    returns = [r["return"] for r in records]
    out = {"episodes": episodes, "return": mean_ci95(returns), "returns": [round(x, 3) for x in returns]}
    if all(r["has_success"] for r in records):
        out["success_rate"] = float(np.mean([r["success"] for r in records]))
    return out


def over_seeds(runs: list[dict], last: int = 1) -> dict:
    """Mean and 95% interval over seeds of each run's mean eval return over its ``last`` evaluations."""
    from robokit.intact.protocol import mean_ci95

    return {"last_evals": last, **mean_ci95([float(np.mean(r["eval_return"][-last:])) for r in runs])}


#: DrQ's SAC settings (denisyarats/drq config.yaml: lr 1e-3, init_temperature 0.1, critic_tau 0.01);
#: robokit's SAC defaults (3e-4, 1.0, 0.005) are the state-based SAC paper's
DRQ_SAC = {"actor_lr": 1e-3, "critic_lr": 1e-3, "temperature_lr": 1e-3, "init_temperature": 0.1, "tau": 0.01}


def sac_experiment(env_id: str, name: str, budget: SacBudget, baseline_episodes: int, out: Path,
                   options: dict, encoder_note: str) -> dict:
    """Every seed's run, the random baseline, and the across-seed interval of the final evals."""
    runs = [sac_run(env_id, seed, budget, out / f"{name}_seed{seed}", {**options, "encoder": dict(options["encoder"])})
            for seed in budget.seeds]
    result = {"env": env_id, "encoder": encoder_note, "budget": dataclasses.asdict(budget),
              "agent": {k: v for k, v in options.items() if k != "encoder"}, "runs": runs,
              "final": over_seeds(runs, 1), "last2": over_seeds(runs, 2),
              "random": random_baseline(env_id, baseline_episodes)}
    final_policies(result, out, name)
    return result


def pixels(budget: Budget, out: Path) -> dict:
    """SAC from 32x32 pixels (3 frames) on InvertedPendulum, one run per seed."""
    options = {"hidden_dims": (256, 256), "encoder": {"cnn_layers": 2, "cnn_filters": 16, "shift_pad": PIXEL_PAD},
               **DRQ_SAC}
    return sac_experiment(PIXEL_ENV, "pixels", budget.pixels, budget.baseline_episodes, out, options,
                          f"cnn 2 layers x 16 filters, feature 50, random shift {PIXEL_PAD}")


def pointcloud(budget: Budget, out: Path) -> dict:
    """SAC with PointNet on the ArmReach point-cloud task, and the same SAC on its state."""
    options = {"hidden_dims": (256, 256), "encoder": {"pointnet_widths": (32, 64), "point_scale": ARM_REACH_M},
               **DRQ_SAC}
    result = sac_experiment(CLOUD_ENV, "pointcloud", budget.cloud, budget.baseline_episodes, out, options,
                            f"pointnet (32, 64) + max pool, xyz / {ARM_REACH_M} m, feature 50")
    state = {**DRQ_SAC, "hidden_dims": (256, 256), "encoder": {}}
    result["state"] = {"env": CLOUD_STATE_ENV,
                       "runs": [sac_run(CLOUD_STATE_ENV, seed, budget.cloud, out / f"pointcloud_state_seed{seed}",
                                        dict(state)) for seed in budget.cloud.seeds]}
    result["state"]["final"] = over_seeds(result["state"]["runs"], 1)
    final_policies(result, out, "pointcloud")
    return result


def scripted_demos(per_task: int, seed: int) -> list:
    """Noisy scripted demos (PD towards the IK solution + N(0, 0.3) actions) of each task."""
    from robokit.data.collect import trace_to_episode
    from robokit.envs.multitask import TASKS
    from robokit.envs.vector import env_maker, make_vector_env, run_episodes

    episodes = []
    for index, task in enumerate(TASKS):
        venv = make_vector_env(env_maker(TASK_ENV, task=task), 1)  # every reset of this env is `task`
        env = venv.envs[0].unwrapped  # type: ignore[attr-defined]

        def make_policy(k: int, env=env, index: int = index) -> object:
            rng = np.random.default_rng([seed, index, k])
            return lambda _obs: np.clip(env.scripted_action() + rng.normal(0, 0.3, 2), -1, 1).astype(np.float32)
        seeds = [seed * 100_000 + index * 10_000 + k for k in range(per_task)]
        traces = run_episodes(venv, seeds, make_policy)
        episodes += [trace_to_episode(t, f"demo {task}", venv.single_observation_space) for t in traces]
        venv.close()
    return episodes


def success_rates(policy, tasks: tuple[str, ...], episodes: int, blind: bool = False) -> dict[str, float]:
    """Success rate of ``policy(obs, env)`` on each task (reset options pick the task; the same
    reset seeds for every policy)."""
    from robokit.envs import make_env

    env = make_env(TASK_ENV)
    rates = {}
    for t, task in enumerate(tasks):
        wins = 0
        for k in range(episodes):
            obs, _ = env.reset(seed=20_000_000 + 1000 * t + k, options={"task": task})
            while True:
                obs = {**obs, "task": np.zeros_like(obs["task"])} if blind else obs
                obs, _, terminated, truncated, info = env.step(policy(obs, env))
                if terminated or truncated:
                    break
            wins += bool(info["success"])
        rates[task] = wins / episodes
    return rates


def bc_seed(budget: Budget, seed: int) -> dict:
    """One seed: fresh noisy demos, then BC with the task one-hot and with it zeroed."""
    from robokit.algos import BCConfig, make_agent
    from robokit.data import Episode
    from robokit.data.formats import episodes_to_buffer
    from robokit.data.samplers import TaskSampler
    from robokit.envs.multitask import TASKS
    from robokit.nets.obs_spec import spec_from_episodes

    started = time.perf_counter()
    demos = scripted_demos(budget.demos_per_task, seed)
    result: dict = {"seed": seed, "demos": {t: sum(e.task == t for e in demos) for t in TASKS},
                    "demo_success": float(np.mean([e.infos["success"].any() for e in demos]))}
    for blind in (False, True):
        episodes = [Episode({**e.observations, "task": e.observations["task"] * (0.0 if blind else 1.0)},
                            e.actions, e.rewards, e.terminated, e.truncated, e.infos, task=e.task) for e in demos]
        buffer = episodes_to_buffer(episodes, seed=seed, sampler=TaskSampler())
        agent = make_agent("bc", spec_from_episodes(episodes), 2, BCConfig(batch_size=256), seed=seed)
        for _ in range(budget.bc_steps):
            agent.update(agent.torch_batch(buffer.sample(256)))
        result["blind" if blind else "conditioned"] = success_rates(
            lambda obs, _env, agent=agent: agent.act(obs, deterministic=True), tuple(TASKS),
            budget.bc_eval_episodes, blind)
    result["seconds"] = round(time.perf_counter() - started, 1)
    return result


def multitask(budget: Budget, out: Path) -> dict:
    """BC on both tasks' demos, with the task one-hot and with it zeroed, one run per seed; the
    scripted controller (no noise) and the random policy on the same evaluation resets."""
    from robokit.envs.multitask import TASKS
    from robokit.intact.protocol import mean_ci95

    runs = [bc_seed(budget, seed) for seed in budget.bc_seeds]
    tasks = tuple(TASKS)
    rng = np.random.default_rng(0)
    summary = {variant: {task: mean_ci95([r[variant][task] for r in runs]) for task in tasks}
               for variant in ("conditioned", "blind")}
    for variant in ("conditioned", "blind"):
        summary[variant]["both"] = mean_ci95([np.mean([r[variant][t] for t in tasks]) for r in runs])
    return {"env": TASK_ENV, "runs": runs, "summary": summary,
            "scripted": success_rates(lambda _obs, env: env.unwrapped.scripted_action(), tasks,
                                      budget.bc_eval_episodes),
            "random": success_rates(lambda _obs, _env: rng.uniform(-1, 1, 2).astype(np.float32), tasks,
                                    budget.bc_eval_episodes)}


def plot(results: dict, out: Path) -> list[str]:
    """One PNG per experiment: eval return per seed with the random policy's 95% band; success
    per task (mean over seeds, 95% interval) for multi-task BC."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name in ("pixels", "pointcloud"):
        if name not in results:
            continue
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        for run in results[name]["runs"]:
            ax.plot(run["env_steps"], run["eval_return"], marker="o", ms=3,
                    label=run.get("label", f"SAC seed {run['seed']}"))
        for run in results[name].get("state", {}).get("runs", []):
            ax.plot(run["env_steps"], run["eval_return"], ls="--", color="gray", lw=1,
                    label=f"SAC from the state, seed {run['seed']}")
        rand = results[name]["random"]["return"]
        ax.axhspan(rand["low"], rand["high"], color="gray", alpha=0.3,
                   label=f"random policy (95% CI, {results[name]['random']['episodes']} episodes)")
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return (mean of episodes)")
        ax.set_title(f"SAC on {results[name]['env']}", fontsize=9)
        ax.legend(fontsize=7)
        fig.tight_layout()
        path = out / f"{name}_sac.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(str(path))
    if "multitask" in results:
        mt = results["multitask"]
        fig, ax = plt.subplots(figsize=(5.5, 3.4))
        tasks = list(mt["scripted"])
        x = np.arange(len(tasks))
        for offset, variant, label in ((-0.2, "conditioned", "BC + task one-hot"), (0.2, "blind", "BC, task zeroed")):
            stats = [mt["summary"][variant][t] for t in tasks]
            ax.bar(x + offset, [s["mean"] for s in stats], 0.4, yerr=[s["ci95"] for s in stats], capsize=4,
                   label=f"{label} ({len(mt['runs'])} seeds, 95% CI)")
        ax.scatter(x, [mt["scripted"][t] for t in tasks], marker="_", s=900, color="k", label="scripted expert")
        ax.scatter(x, [mt["random"][t] for t in tasks], marker="x", color="gray", label="random policy")
        ax.set_xticks(x, tasks)
        ax.set_ylabel("success rate")
        ax.set_ylim(0, 1.1)
        ax.legend(fontsize=7)
        ax.set_title(f"multi-task BC on {mt['env']}", fontsize=9)
        fig.tight_layout()
        path = out / "multitask_bc.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(str(path))
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budgets (a smoke run, no learning expected)")
    parser.add_argument("--only", nargs="+", choices=("multitask", "pointcloud", "pixels"),
                        default=["multitask", "pointcloud", "pixels"])
    parser.add_argument("--out", type=Path, default=Path("runs/multimodal_proofs"))
    for name in ("pixel", "cloud"):
        parser.add_argument(f"--{name}-steps", type=int, help=f"override the {name} runs' env steps")
        parser.add_argument(f"--{name}-seeds", type=int, nargs="+", help=f"override the {name} runs' seeds")
    parser.add_argument("--bc-seeds", type=int, nargs="+", help="override the multi-task BC seeds")
    parser.add_argument("--merge", type=Path, nargs="+", metavar="RESULTS_JSON",
                        help="merge the SAC runs of results files of one-seed processes into --out, then plot")
    args = parser.parse_args(argv)
    if args.merge:
        return merge(args.merge, args.out)
    torch.set_num_threads(1)
    budget = budget_from(args)
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    experiments = {"multitask": multitask, "pointcloud": pointcloud, "pixels": pixels}
    for name in args.only:
        results[name] = experiments[name](budget, args.out)
        results_path.write_text(json.dumps(results, indent=2))
        print(f"{name}: {json.dumps(_headline(results[name]))}", flush=True)
    results["pngs"] = plot(results, args.out)
    results_path.write_text(json.dumps(results, indent=2))
    summary = {"benchmark": "multimodal_proofs", "unit": "eval return / success rate", "higher_is_better": True,
               "robokit": {k: _headline(results[k]) for k in ("pixels", "pointcloud", "multitask") if k in results},
               "peers": {}, "ratio": None, "bound": None,
               "notes": f"budget {'quick' if args.quick else 'full'}: {dataclasses.asdict(budget)}; "
                        "no peer run (a learning proof, not a timing)"}
    print(json.dumps(summary))
    return 0


def final_policy(run: dict, folder: Path, env_id: str, episodes: int) -> None:
    """Add ``final_policy`` to ``run``: its trained policy (``folder/final.pt``, deterministic) on
    the random baseline's reset seeds, so the two are compared episode for episode."""
    from robokit.algos import load_agent

    if "final_policy" not in run and (folder / "final.pt").exists():
        run["final_policy"] = random_baseline(env_id, episodes, policy=load_agent(folder / "final.pt"))


def final_policies(result: dict, folder: Path | None, name: str) -> None:
    """``final_policy`` of every run (and state run) of ``result`` whose run folder
    ``folder/<name>[_state]_seed<S>`` holds a final.pt (none with ``folder=None``), then their
    mean and 95% interval over the seeds that have one (return and success rate)."""
    from robokit.intact.protocol import mean_ci95

    episodes = result["random"]["episodes"]
    groups = [(result, result["env"], name)] + ([(result["state"], result["state"]["env"], f"{name}_state")]
                                                 if "state" in result else [])
    for group, env_id, prefix in groups:
        for run in group["runs"] if folder is not None else ():
            final_policy(run, folder / f"{prefix}_seed{run['seed']}", env_id, episodes)
        finals = [r["final_policy"] for r in group["runs"] if "final_policy" in r]
        if finals:
            group["final_policy"] = {"episodes": episodes, "seeds": len(finals),
                                     "return": mean_ci95([f["return"]["mean"] for f in finals]),
                                     "success_rate": mean_ci95([f.get("success_rate", np.nan) for f in finals])}


def merge_sac(parts: list[dict]) -> dict:
    """One SAC experiment from parts run apart (each its seeds): runs (and state runs) in seed
    order, the across-seed intervals recomputed; the random baseline is the first part's (every
    part evaluates it on the same resets)."""
    merged = {**parts[0], "runs": sorted((r for p in parts for r in p["runs"]), key=lambda r: r["seed"])}
    merged["final"], merged["last2"] = over_seeds(merged["runs"], 1), over_seeds(merged["runs"], 2)
    if all("state" in p for p in parts):
        runs = sorted((r for p in parts for r in p["state"]["runs"]), key=lambda r: r["seed"])
        merged["state"] = {**parts[0]["state"], "runs": runs, "final": over_seeds(runs, 1)}
    return merged


def merge(paths: list[Path], out: Path) -> int:
    """``--merge``: SAC experiments merged across results files, the rest from the first file that has it."""
    loaded = [json.loads(Path(p).read_text()) for p in paths]
    results: dict = {}
    for name in ("pixels", "pointcloud"):
        parts = []
        for path, result in zip(paths, loaded, strict=True):
            if name in result:
                final_policies(result[name], Path(path).parent, name)
                parts.append(result[name])
        if parts:
            results[name] = merge_sac(parts)
            final_policies(results[name], None, name)
    multitask = next((r["multitask"] for r in loaded if "multitask" in r), None)
    if multitask is not None:
        results["multitask"] = multitask
    out.mkdir(parents=True, exist_ok=True)
    results["merged_from"] = [str(p) for p in paths]
    results["pngs"] = plot(results, out)
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(json.dumps({"benchmark": "multimodal_proofs", "unit": "eval return / success rate", "higher_is_better": True,
                      "robokit": {k: _headline(results[k]) for k in ("pixels", "pointcloud", "multitask")
                                  if k in results},
                      "peers": {}, "ratio": None, "bound": None,
                      "notes": f"merged from {len(paths)} results files; no peer run (a learning proof)"}))
    return 0


def budget_from(args: argparse.Namespace) -> Budget:
    """The --quick or full budget with the command line's step and seed overrides."""
    budget = BUDGETS["quick" if args.quick else "full"]
    for name, field in (("pixel", "pixels"), ("cloud", "cloud")):
        sac = getattr(budget, field)
        if getattr(args, f"{name}_steps"):
            sac = dataclasses.replace(sac, steps=getattr(args, f"{name}_steps"))
        if getattr(args, f"{name}_seeds"):
            sac = dataclasses.replace(sac, seeds=tuple(getattr(args, f"{name}_seeds")))
        budget = dataclasses.replace(budget, **{field: sac})
    if args.bc_seeds:
        budget = dataclasses.replace(budget, bc_seeds=tuple(args.bc_seeds))
    return budget


def _headline(result: dict) -> dict:
    if "runs" in result and "final" in result:
        headline = {"first_last": {f"seed{r['seed']}": [round(r["eval_return"][0], 2),
                                                        round(r["eval_return"][-1], 2)] for r in result["runs"]},
                    "final_mean_ci95": [round(result["final"]["mean"], 2), round(result["final"]["ci95"], 2)],
                    "random_mean_ci95": [round(result["random"]["return"]["mean"], 2),
                                         round(result["random"]["return"]["ci95"], 2)]}
        if "state" in result:
            headline["state_final_mean_ci95"] = [round(result["state"]["final"]["mean"], 2),
                                                 round(result["state"]["final"]["ci95"], 2)]
        for key, group in (("final_policy", result), ("state_final_policy", result.get("state", {}))):
            if "final_policy" in group:
                final = group["final_policy"]
                headline[key] = {"return": [round(final["return"]["mean"], 2), round(final["return"]["ci95"], 2)],
                                 "success": [round(final["success_rate"]["mean"], 3),
                                             round(final["success_rate"]["ci95"], 3)]}
        return headline
    return {variant: {t: [round(v["mean"], 3), round(v["ci95"], 3)] for t, v in result["summary"][variant].items()}
            for variant in ("conditioned", "blind")} | {"scripted": result["scripted"], "random": result["random"]}


if __name__ == "__main__":
    sys.exit(main())
