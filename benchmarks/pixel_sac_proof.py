"""SAC from pixels learns in a short CPU run: robokit's SAC on robokit/PointMassReachPixels-v0, every seed.

Issue 10's first learning proof, reduced to what a shared 2-core CPU allows. robokit's SAC
(``robokit train --algo sac`` through the same trainer) on 32x32 RGB frames of
``robokit/PointMassReachPixels-v0`` (3 stacked frames; a damped point mass must reach a goal
disc that the camera sees; reward minus the distance, no termination, 50-step episodes), with
the image encoder the observation spec selects: DrQ's CNN cut to 2 conv layers of 16 filters,
random shift, shared by actor and critic and trained by the critic only, the critic step's
features reused by the actor step (DrQ-v2). One run per seed; the eval return (deterministic
policy, the same 5 reset seeds at every evaluation) against env steps.

References on the same task and the same evaluation episodes:

- SAC from the **state** (``robokit/PointMassReach-v0``: mass xy, velocity, goal xy), the same
  SAC settings and seeds;
- fixed policies: uniformly random actions, zero actions (the mass stays where it starts) and a
  P controller on the state (``clip(20 (goal - mass))``), each on the union of the seeds'
  evaluation resets (the pixel and the state env draw the same initial state for a seed).

Outputs under ``--out``: each run's trainer folder (metrics.csv), ``results.json`` and
``pixel_sac.png``; the last stdout line is the benchmark JSON object. ``--quick`` is a smoke
run (no learning expected). docs/multimodal_envs.md has the measured figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from multimodal_proofs import DRQ_SAC, SacBudget, sac_run  # benchmarks/ is the script dir

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

PIXEL_ENV = "robokit/PointMassReachPixels-v0"
STATE_ENV = "robokit/PointMassReach-v0"
ENVS = {"pixels": PIXEL_ENV, "state": STATE_ENV}
#: DrQ's encoder cut for a CPU: 2 conv layers x 16 filters (DrQ: 4 x 32), feature dim 50 (DrQ's);
#: random-shift pad 2 px for 32x32 frames (DrQ's 4 px is 5% of an 84 px side, 2 px is 6% of 32)
ENCODER = {"cnn_layers": 2, "cnn_filters": 16, "shift_pad": 2}
#: robokit's SAC with DrQ's settings (multimodal_proofs.DRQ_SAC: lr 1e-3, init temperature 0.1,
#: critic tau 0.01) and (256, 256) MLPs (DrQ: 1024 x 2)
AGENT = {"hidden_dims": (256, 256), "discount": 0.99, **DRQ_SAC}

BUDGETS = {
    "full": SacBudget(steps=3000, seeds=(0, 1, 2), batch=32, eval_every=250, eval_episodes=5, warmup=500),
    "quick": SacBudget(steps=60, seeds=(0,), batch=8, eval_every=30, eval_episodes=2, warmup=20),
}

Policy = Callable[[np.ndarray], np.ndarray]


def fixed_policies(seed: int = 0) -> dict[str, Policy]:
    """The reference policies on the state ``(6,)``: random, zero actions, a P controller."""
    rng = np.random.default_rng(seed)
    return {"random": lambda _s: rng.uniform(-1, 1, 2).astype(np.float32),
            "zero_action": lambda _s: np.zeros(2, np.float32),
            "p_controller": lambda s: np.clip(20 * (s[4:6] - s[:2]), -1, 1).astype(np.float32)}


def reference_returns(env_id: str, reset_seeds: list[int]) -> dict[str, dict]:
    """Each fixed policy's returns on ``reset_seeds`` in ``env_id`` (acting at that env's rate:
    every simulator step in the state env, every 4th in the pixel env), mean with a 95% interval.
    The policies read the simulator state (``env.unwrapped.state()``), whatever the env observes."""
    from robokit.envs import make_env
    from robokit.intact.protocol import mean_ci95
    from robokit.trainers.evaluation import run_episode

    env = make_env(env_id)
    out = {}
    for name, policy in fixed_policies().items():
        returns = [run_episode(env, lambda _obs, p=policy: p(env.unwrapped.state()), s)["return"] for s in reset_seeds]
        out[name] = {"episodes": len(returns), "return": mean_ci95(returns), "returns": [round(r, 3) for r in returns]}
    env.close()
    return out


def proof(budget: SacBudget, out: Path, agent: dict, kinds: tuple[str, ...] = ("pixels", "state")) -> dict:
    """Every seed's pixel run and state reference run (``kinds``), the fixed policies, the across-seed intervals."""
    from robokit.intact.protocol import mean_ci95
    from robokit.trainers.evaluation import eval_seeds

    result: dict = {"env": PIXEL_ENV, "state_env": STATE_ENV, "budget": dataclasses.asdict(budget),
                    "agent": agent, "encoder": ENCODER, "torch_threads": torch.get_num_threads()}
    if "pixels" in kinds:
        result["pixels"] = [sac_run(PIXEL_ENV, seed, budget, out / f"pixels_seed{seed}",
                                    {**agent, "encoder": ENCODER}) for seed in budget.seeds]
    if "state" in kinds:
        result["state"] = [sac_run(STATE_ENV, seed, budget, out / f"state_seed{seed}", dict(agent))
                           for seed in budget.seeds]
    resets = [s for seed in budget.seeds for s in eval_seeds(seed, budget.eval_episodes)]
    result["references"] = {kind: reference_returns(env_id, resets) for kind, env_id in ENVS.items()}
    for kind in ("pixels", "state"):
        if kind in result:
            result[f"{kind}_final"] = mean_ci95([r["final_return"] for r in result[kind]])
            result[f"{kind}_first"] = mean_ci95([r["eval_return"][0] for r in result[kind]])
    return result


def plot(result: dict, path: Path) -> None:
    """Eval return vs env steps: each pixel seed, their mean, the state runs, the fixed policies."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.0, 4.8))
    for kind, style, colour in (("pixels", "-", "tab:blue"), ("state", "--", "tab:orange")):
        runs = result.get(kind, [])
        for run in runs:
            ax.plot(run["env_steps"], run["eval_return"], style, color=colour, alpha=0.35, lw=1)
        if runs:
            steps = runs[0]["env_steps"]
            mean = np.mean([r["eval_return"][:len(steps)] for r in runs], axis=0)
            ax.plot(steps, mean, style, color=colour, lw=2.2, marker="o", ms=3,
                    label=f"SAC from {'32x32 pixels' if kind == 'pixels' else 'the state'}: mean of "
                          f"{len(runs)} seeds (thin: each seed)")
    for name, colour in (("random", "gray"), ("zero_action", "k"), ("p_controller", "tab:green")):
        ref = result["references"]["pixels"][name]
        ax.axhline(ref["return"]["mean"], color=colour, ls=":", lw=1.3,
                   label=f"{name.replace('_', ' ')}, 4-step actions ({ref['episodes']} eval episodes)")
    ax.set_xlabel("env steps = actions (500 random, then 1 update each)")
    ax.set_ylabel("eval return (5 episodes of 2.5 s)")
    ax.set_title(f"robokit SAC on {result['env']} (a pixel action is 4 simulator steps)", fontsize=9)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny budget (a smoke run, no learning expected)")
    parser.add_argument("--out", type=Path, default=Path("runs/pixel_sac_proof"))
    parser.add_argument("--steps", type=int, help="override the env steps per run")
    parser.add_argument("--seeds", type=int, nargs="+", help="override the seeds")
    parser.add_argument("--discount", type=float, default=AGENT["discount"], help="SAC's discount gamma")
    parser.add_argument("--kinds", nargs="*", choices=("pixels", "state"), default=["pixels", "state"],
                        help="which SAC runs: from pixels, and/or the state-based reference (none: only --merge)")
    parser.add_argument("--merge", type=Path, nargs="+", default=[],
                        help="results.json files of runs done in parallel (other seeds): their runs are merged "
                             "into this one's before the intervals and the figure")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    budget = BUDGETS["quick" if args.quick else "full"]
    if args.steps:
        budget = dataclasses.replace(budget, steps=args.steps)
    if args.seeds:
        budget = dataclasses.replace(budget, seeds=tuple(args.seeds))
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    result = proof(budget, args.out, {**AGENT, "discount": args.discount}, tuple(args.kinds))
    if args.merge:
        result = merge([result] + [json.loads(p.read_text()) for p in args.merge], args.out)
    result["seconds"] = round(time.perf_counter() - started, 1)
    (args.out / "results.json").write_text(json.dumps(result, indent=2))
    plot(result, args.out / "pixel_sac.png")
    print(json.dumps(summary(result, args.quick)))
    return 0


def merge(results: list[dict], out: Path) -> dict:
    """One result from runs done as separate processes (same budget, other seeds), seeds sorted;
    the fixed policies are re-run on the union of the merged seeds' evaluation resets."""
    from robokit.intact.protocol import mean_ci95
    from robokit.trainers.evaluation import eval_seeds

    merged = dict(results[0])
    for kind in ("pixels", "state"):
        runs = {r["seed"]: r for res in results for r in res.get(kind, [])}
        if runs:
            merged[kind] = [runs[s] for s in sorted(runs)]
            merged[f"{kind}_final"] = mean_ci95([r["final_return"] for r in merged[kind]])
            merged[f"{kind}_first"] = mean_ci95([r["eval_return"][0] for r in merged[kind]])
    seeds = sorted({r["seed"] for kind in ("pixels", "state") for r in merged.get(kind, [])})
    merged["budget"] = {**merged["budget"], "seeds": seeds}
    episodes = merged["budget"]["eval_episodes"]
    resets = [s for seed in seeds for s in eval_seeds(seed, episodes)]
    merged["references"] = {kind: reference_returns(env_id, resets) for kind, env_id in ENVS.items()}
    return merged


def summary(result: dict, quick: bool) -> dict:
    """The benchmark JSON line: final eval returns (mean, 95% interval over seeds) and references."""
    def pair(stats: dict) -> list[float]:
        return [round(stats["mean"], 2), round(stats["ci95"], 2)]

    robokit: dict = {}
    for kind in ("pixels", "state"):
        if kind in result:
            robokit[f"{kind}_first_final_mean_ci95"] = [pair(result[f"{kind}_first"]), pair(result[f"{kind}_final"])]
            robokit[f"{kind}_per_seed_first_final"] = {f"seed{r['seed']}": [round(r["eval_return"][0], 2),
                                                                            round(r["final_return"], 2)]
                                                       for r in result[kind]}
    return {"benchmark": "pixel_sac_proof", "unit": "eval return", "higher_is_better": True, "robokit": robokit,
            "peers": {f"{kind}_env_{name}": pair(ref["return"]) for kind, refs in result["references"].items()
                      for name, ref in refs.items()},
            "ratio": None, "bound": None,
            "notes": f"budget {'quick' if quick else 'full'}: {result['budget']}; peers are fixed policies on "
                     "the same evaluation resets (a learning proof, not a timing)"}


if __name__ == "__main__":
    sys.exit(main())
