"""Issue 10's learning proofs on CPU, reduced: SAC from pixels, SAC from point clouds, multi-task BC.

Three experiments (``--only`` picks some), each a short CPU run:

- ``pixels``: SAC (robokit's, DrQ-style shared CNN trained by the critic, random shift) on
  ``robokit/InvertedPendulumPixels-v0`` (32x32 RGB, 3 stacked frames, 200-step episodes), one
  run per seed; eval return (5 episodes) against env steps. The CNN is cut to 2 layers of 16
  filters so a run fits a shared 2-core CPU.
- ``pointcloud``: SAC with the PointNet encoder on ``robokit/ArmReachCloud-v0`` (points on the
  arm's and the goal disc's surfaces, plus joint proprio; dense reward minus distance).
- ``multitask``: BC conditioned on the task one-hot of ``robokit/ArmReachMultiTask-v0`` from
  noisy scripted demonstrations of both tasks (sampled balanced across tasks with
  :class:`robokit.data.samplers.TaskSampler`); success per task, against the same BC with the
  task vector zeroed (it cannot tell the goals apart).

Budgets are far below the papers' (see ``BUDGETS``; docs/multimodal_envs.md has the figures).
Outputs under ``--out``: each run's trainer folder (metrics.csv), ``results.json``, one PNG per
experiment; the last stdout line is the benchmark JSON object.
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

PIXEL_ENV = "robokit/InvertedPendulumPixels-v0"
CLOUD_ENV = "robokit/ArmReachCloud-v0"
TASK_ENV = "robokit/ArmReachMultiTask-v0"


@dataclasses.dataclass(frozen=True)
class Budget:
    pixel_steps: int
    pixel_seeds: tuple[int, ...]
    cloud_steps: int
    cloud_seeds: tuple[int, ...]
    sac_batch: int
    eval_every: int
    eval_episodes: int
    demos_per_task: int
    bc_steps: int
    bc_eval_episodes: int


BUDGETS = {
    "full": Budget(pixel_steps=600, pixel_seeds=(0, 1, 2), cloud_steps=1500, cloud_seeds=(0,), sac_batch=32,
                   eval_every=150, eval_episodes=5, demos_per_task=40, bc_steps=1500, bc_eval_episodes=20),
    "quick": Budget(pixel_steps=60, pixel_seeds=(0,), cloud_steps=60, cloud_seeds=(0,), sac_batch=16,
                    eval_every=30, eval_episodes=2, demos_per_task=4, bc_steps=50, bc_eval_episodes=3),
}


def sac_run(env_id: str, seed: int, budget: Budget, out: Path, agent_options: dict) -> dict:
    """One robokit SAC run through the trainer; returns its eval curve (env steps, returns)."""
    from robokit.algos import SACConfig
    from robokit.nets.encoders import EncoderConfig
    from robokit.trainers.plotting import read_eval_curve
    from robokit.trainers.trainer import config_class_for, train

    encoder = EncoderConfig(**agent_options.pop("encoder", {}))
    steps = budget.pixel_steps if env_id == PIXEL_ENV else budget.cloud_steps
    agent = SACConfig(batch_size=budget.sac_batch, warmup_steps=min(200, steps // 4), encoder=encoder,
                      **agent_options)
    config = config_class_for("sac")(env=env_id, online_steps=steps, seed=seed, out=out, logger=("csv",),
                                     eval_every=budget.eval_every, eval_episodes=budget.eval_episodes,
                                     log_every=budget.eval_every, checkpoint_every=10**9, progress=False,
                                     overwrite=True, agent=agent)
    started = time.perf_counter()
    summary = train("sac", config)
    curve = read_eval_curve(out / "metrics.csv")
    return {"seed": seed, "env_steps": curve["env_steps"], "eval_return": curve["mean"],
            "final_return": summary.get("final_return"), "seconds": round(time.perf_counter() - started, 1)}


#: DrQ's SAC settings (denisyarats/drq config.yaml: lr 1e-3, init_temperature 0.1, critic_tau 0.01);
#: robokit's SAC defaults (3e-4, 1.0, 0.005) are the state-based SAC paper's
DRQ_SAC = {"actor_lr": 1e-3, "critic_lr": 1e-3, "temperature_lr": 1e-3, "init_temperature": 0.1, "tau": 0.01}


def pixels(budget: Budget, out: Path) -> dict:
    """SAC from 32x32 pixels (3 frames) on InvertedPendulum, one run per seed."""
    options = {"hidden_dims": (256, 256), "encoder": {"cnn_layers": 2, "cnn_filters": 16}, **DRQ_SAC}
    runs = [sac_run(PIXEL_ENV, seed, budget, out / f"pixels_seed{seed}", dict(options)) for seed in budget.pixel_seeds]
    return {"env": PIXEL_ENV, "encoder": "cnn 2 layers x 16 filters, feature 50, random shift 4", "runs": runs}


def pointcloud(budget: Budget, out: Path) -> dict:
    """SAC with PointNet on the ArmReach point-cloud task."""
    options = {"hidden_dims": (256, 256), "encoder": {"pointnet_widths": (32, 64)}, **DRQ_SAC}
    runs = [sac_run(CLOUD_ENV, seed, budget, out / f"pointcloud_seed{seed}", dict(options))
            for seed in budget.cloud_seeds]
    return {"env": CLOUD_ENV, "encoder": "pointnet (32, 64) + max pool, feature 50", "runs": runs}


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


def multitask(budget: Budget, out: Path, seed: int = 0) -> dict:
    """BC on both tasks' demos, with the task one-hot and with it zeroed."""
    from robokit.algos import BCConfig, make_agent
    from robokit.data import Episode
    from robokit.data.formats import episodes_to_buffer
    from robokit.data.samplers import TaskSampler
    from robokit.envs.multitask import TASKS
    from robokit.nets.obs_spec import spec_from_episodes

    started = time.perf_counter()
    demos = scripted_demos(budget.demos_per_task, seed)
    result: dict = {"env": TASK_ENV, "demos": {t: sum(e.task == t for e in demos) for t in TASKS},
                    "demo_success": float(np.mean([e.infos["success"].any() for e in demos])),
                    "scripted": success_rates(lambda _obs, env: env.unwrapped.scripted_action(), tuple(TASKS),
                                              budget.bc_eval_episodes)}
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


def plot(results: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    for name in ("pixels", "pointcloud"):
        if name not in results:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.2))
        for run in results[name]["runs"]:
            ax.plot(run["env_steps"], run["eval_return"], marker="o", label=f"seed {run['seed']}")
        ax.set_xlabel("env steps")
        ax.set_ylabel("eval return (mean of episodes)")
        ax.set_title(f"SAC on {results[name]['env']}", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / f"{name}_sac.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(str(path))
    if "multitask" in results:
        mt = results["multitask"]
        fig, ax = plt.subplots(figsize=(5, 3.2))
        tasks = list(mt["conditioned"])
        x = np.arange(len(tasks))
        ax.bar(x - 0.2, [mt["conditioned"][t] for t in tasks], 0.4, label="BC + task one-hot")
        ax.bar(x + 0.2, [mt["blind"][t] for t in tasks], 0.4, label="BC, task zeroed")
        ax.set_xticks(x, tasks)
        ax.set_ylabel("success rate")
        ax.set_ylim(0, 1.05)
        ax.legend(fontsize=8)
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
    parser.add_argument("--pixel-steps", type=int, help="override the budget's env steps per pixel run")
    parser.add_argument("--pixel-seeds", type=int, nargs="+", help="override the budget's pixel seeds")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    budget = BUDGETS["quick" if args.quick else "full"]
    if args.pixel_steps:
        budget = dataclasses.replace(budget, pixel_steps=args.pixel_steps)
    if args.pixel_seeds:
        budget = dataclasses.replace(budget, pixel_seeds=tuple(args.pixel_seeds))
    args.out.mkdir(parents=True, exist_ok=True)
    results_path = args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    experiments = {"multitask": multitask, "pointcloud": pointcloud, "pixels": pixels}
    for name in args.only:
        results[name] = experiments[name](budget, args.out)
        results_path.write_text(json.dumps(results, indent=2))
        print(f"{name}: {json.dumps(results[name])[:400]}", flush=True)
    results["pngs"] = plot(results, args.out)
    results_path.write_text(json.dumps(results, indent=2))
    summary = {"benchmark": "multimodal_proofs", "unit": "eval return / success rate", "higher_is_better": True,
               "robokit": {k: _headline(results[k]) for k in ("pixels", "pointcloud", "multitask") if k in results},
               "peers": {}, "ratio": None, "bound": None,
               "notes": f"budget {'quick' if args.quick else 'full'}: {dataclasses.asdict(budget)}; "
                        "no peer run (a learning proof, not a timing)"}
    print(json.dumps(summary))
    return 0


def _headline(result: dict) -> dict:
    if "runs" in result:
        return {f"seed{r['seed']}": [round(r["eval_return"][0], 2), round(r["eval_return"][-1], 2)]
                for r in result["runs"]}
    return {"conditioned": result["conditioned"], "blind": result["blind"]}


if __name__ == "__main__":
    sys.exit(main())
