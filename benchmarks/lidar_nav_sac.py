"""SAC on robokit/LidarNav-v0's LiDAR clouds: update cost before/after the scan budget, and the
returns of trained policies against a random policy, clean and under LiDAR corruptions.

Speed (default): SAC gradient updates per CPU-second (process time, one thread), batch 64,
interleaved rounds, median; each contender updates on its own replay of random-policy steps:
- ``full_scan``: every return of the scan (~600-750 points, ragged) through PointNet 64-128-256
  (the encoder default; what issue 16's first attempt ran);
- ``voxel64``: ``robokit/LidarNavVoxel64-v0`` (one return per occupied 0.5 m voxel, then 64 of
  them) through PointNet 32-64-128 (``--agent.encoder.pointnet-widths 32 64 128``);
- ``range90``: ``robokit/LidarNavRange-v0`` (the cloud as a 90-bin range scan, a 180-vector,
  plus the proprio; the dict encoder's identity parts and DrQ's trunk), reported beside them.
One update = one critic step, one actor and temperature step, a Polyak update (SACConfig
defaults otherwise: 2 critics, 256-256 heads, feature dim 50). The JSON line's ``robokit`` is
voxel64's rate, ``peers`` the full scan's, ``ratio`` their quotient.

Returns (``--eval RUN [RUN ...]``: run folders of ``robokit train``, each with ``final.pt``):
each run's deterministic policy (and, clean, a uniform random policy, which never reads the scan)
on the same ``--episodes`` reset seeds of the run's env, clean and under each ``--corruptions`` at ``--severities`` (applied to
the full scan before the sampling, :func:`robokit.envs.lidar_nav.corrupt_scan`). Per condition:
return and success rate, the mean over runs (seeds) with a 95% Student-t interval over the
per-run means. Writes ``--out`` (JSON) and ends with one JSON line.

    python benchmarks/lidar_nav_sac.py [--quick]
    python benchmarks/lidar_nav_sac.py --eval runs/sac_s0 runs/sac_s1 runs/sac_s2 --out lidar_nav_eval.json
    python benchmarks/lidar_nav_sac.py --merge eval_s0.json eval_s1.json eval_s2.json   # runs evaluated apart
    python benchmarks/lidar_nav_sac.py --curves runs/sac_s0 runs/sac_s1 runs/state_s0 --png lidar_nav_sac.png
    python benchmarks/lidar_nav_sac.py --compare eval_std.json eval_intact.json --labels standard intact --png cmp.png

INTACT on the policy's input (``--intact RUN [RUN ...]``: range-scan runs, ``robokit/LidarNavRange-v0``
or ``-RangeGoal-v0``): each policy clean and with INTACT's ``drop`` and ``noise`` on the cloud behind
its scan at ``--strengths``, targeted by the policy's own perturbation saliency against untargeted at
the same budget (:func:`intact_policy`); return, success and the action change per condition.

    python benchmarks/lidar_nav_sac.py --intact runs/range_s0 runs/range_s1 runs/range_s2 --episodes 10 --out intact.json

``--scan-policy`` adds :func:`scan_policy` (a hand-written policy reading only the observation)
to ``--eval``.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

CONTENDERS = {"full_scan": ("robokit/LidarNav-v0", (64, 128, 256)),
              "voxel64": ("robokit/LidarNavVoxel64-v0", (32, 64, 128)),
              "range90": ("robokit/LidarNavRange-v0", None)}
BATCH = 64


def filled_replay(env_id: str, steps: int, seed: int = 0):
    """(spec, replay, mean points per cloud) of ``steps`` uniform-random steps of ``env_id``."""
    from robokit.data.replay import ReplayBuffer
    from robokit.envs import make_env
    from robokit.nets.obs_spec import spec_from_space

    env = make_env(env_id)
    spec = spec_from_space(env.observation_space)
    shape, dtype = spec.layout()
    replay = ReplayBuffer(steps, shape, 2, seed=seed, obs_dtype=dtype)
    obs, _ = env.reset(seed=seed)
    env.action_space.seed(seed)
    counts = []
    for _ in range(steps):
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        replay.add(obs, action, reward, next_obs, terminated, truncated)
        counts.append(len(obs["points"]) if "points" in obs else 0)
        obs = env.reset()[0] if terminated or truncated else next_obs
    return spec, replay, float(np.mean(counts))


def sac_agent(spec, widths: tuple[int, ...] | None):
    """SAC with the PointNet encoder of ``widths`` (None: no cloud, the default encoder), batch 64,
    other settings the defaults."""
    import dataclasses

    from robokit.algos import make_agent
    from robokit.algos.sac import SACConfig

    config = SACConfig(batch_size=BATCH)
    if widths is not None:
        config = dataclasses.replace(config, encoder=dataclasses.replace(config.encoder, pointnet_widths=widths))
    return make_agent("sac", spec, 2, config)


def speed(args: argparse.Namespace) -> dict:
    """Median updates per CPU-second of each contender over interleaved rounds."""
    from sac_update import load_average  # benchmarks/ is the script dir

    steps, seconds, rounds = (300, 2.0, 3) if args.quick else (1000, 6.0, 5)
    setups = {}
    for name, (env_id, widths) in CONTENDERS.items():
        spec, replay, mean_points = filled_replay(env_id, steps)
        setups[name] = (sac_agent(spec, widths), replay)
        print(f"{name:<10} {env_id:<28} widths {widths}  points per cloud: {mean_points:.0f}", flush=True)
    rates: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(rounds):
        for name, (agent, replay) in setups.items():
            agent.update(agent.torch_batch(replay.sample(BATCH)))  # warm
            count, start = 0, time.process_time()
            while time.process_time() - start < seconds:
                agent.update(agent.torch_batch(replay.sample(BATCH)))
                count += 1
            rates[name].append(count / (time.process_time() - start))
    median = {name: float(np.median(v)) for name, v in rates.items()}
    for name, value in median.items():
        print(f"{name:<10} {value:8.2f} updates per CPU-s ({1000 / value:7.1f} ms per update)")
    return {"benchmark": "lidar_nav_sac_update", "unit": "updates/cpu-s", "higher_is_better": True,
            "robokit": round(median["voxel64"], 3), "peers": {"full_scan": round(median["full_scan"], 3)},
            "ratio": round(median["voxel64"] / median["full_scan"], 2), "range90": round(median["range90"], 3),
            "notes": f"batch {BATCH}, 1 thread, median of {rounds} interleaved rounds of {seconds:.0f} CPU-s; "
                     f"load average {load_average()}" + ("; QUICK" if args.quick else "")}


def episodes_of(policy, env_id: str, episodes: int, corruption: str | None, severity: int) -> dict:
    """Return and success of ``policy(env) -> (obs -> action)`` over reset seeds 0..episodes-1."""
    from robokit.envs import make_env
    from robokit.trainers.evaluation import run_episode

    env = make_env(env_id, **({} if corruption is None else {"corruption": corruption, "severity": severity}))
    act = policy(env)
    runs = [run_episode(env, act, seed) for seed in range(episodes)]
    env.close()
    return {"return": float(np.mean([r["return"] for r in runs])),
            "success": float(np.mean([r["success"] for r in runs]))}


def random_policy(env):
    env.action_space.seed(0)
    return lambda _obs: env.action_space.sample()


#: returns brighter than this are the goal post's (reflectivity 1.0 against 0.3 for the rest)
GOAL_INTENSITY = 0.5


def scan_policy(_env):
    """A hand-written policy that reads only what SAC's policy reads (the cloud and the proprio):
    turn towards the mean of the bright returns (the goal post) and drive when it is within 30
    degrees; with no bright return in view, repeat the previous action (proprio[3:5]) if it was
    driving, else turn in place. Whether the goal is findable from the observation alone.
    Without the repeat (turning whenever the post drops out of the scan, which a 16 cm post
    between 4-degree azimuth steps often does) it reached 0 of 6 goals."""
    def act(obs: dict) -> np.ndarray:
        bright = obs["points"][obs["points"][:, 3] > GOAL_INTENSITY]
        if not len(bright):
            previous = obs["proprio"][3:5]
            return (previous if previous[0] > 0.5 else np.array([0.0, 1.0])).astype(np.float32)
        x, y = bright[:, :2].mean(axis=0)
        heading = float(np.arctan2(y, x))
        return np.array([float(abs(heading) < np.pi / 6), np.clip(2.0 * heading, -1, 1)], np.float32)
    return act


#: INTACT's targeted operations run on the policy's input (robokit.intact.attacks) and strengths
INTACT_OPS = ("drop", "noise")
INTACT_STRENGTHS = (0.33, 0.67, 1.0)


def intact_policy(agent, op: str, strength: float, targeted: bool, seed: int = 0, changes: list | None = None):
    """``policy(env) -> (obs -> action)`` for :func:`episodes_of`: at every step the scan's raw cloud
    (``env.unwrapped.last_points``) goes through INTACT's ``op`` at ``strength``, targeted by the
    policy's own per-bin saliency or untargeted at the same budget
    (:func:`robokit.intact.scan.corrupt_observation`: default budgets, drop up to 75% of the points,
    noise sigma up to 0.06 x 2 x saliency of the max range); the policy then acts on the range scan
    of the corrupted cloud. ``changes`` (optional) hears each step's ``0.5 ||a(corrupted) - a(clean)||^2``,
    the action change the corruption causes."""
    from robokit.intact.scan import corrupt_observation

    def make(env):
        base, rng = env.unwrapped, np.random.default_rng(seed)

        def act(obs: dict) -> np.ndarray:
            policy = (lambda batch: agent.act(batch)) if targeted else None
            seen = corrupt_observation(policy, obs, base.last_points, base.bins, base.max_range, op, strength, rng)
            action = agent.act(seen)
            if changes is not None and seen is not obs:
                changes.append(0.5 * float(((action - agent.act(obs)) ** 2).sum()))
            return action
        return act
    return make


def intact(args: argparse.Namespace) -> dict:
    """``--intact RUN ...``: each run's policy clean and under INTACT's targeted and untargeted
    ``drop``/``noise`` at ``--strengths`` on its own input; per condition the mean over runs."""
    from robokit.algos import load_agent
    from robokit.core.checkpoint import load_checkpoint

    torch.manual_seed(0)
    if args.quick:  # one op at full strength on 3 episodes: a smoke run of the protocol
        args.ops, args.strengths, args.episodes = ["drop"], [1.0], min(args.episodes, 3)
    runs = [Path(r) for r in args.intact]
    env_id = load_checkpoint(runs[0] / "final.pt")["env_id"]
    agents = {str(r): load_agent(r / "final.pt") for r in runs}
    conditions = [("clean", None)] + [(f"{op}/{strength:g}/{kind}", (op, strength, kind == "targeted"))
                                      for op in args.ops for strength in args.strengths
                                      for kind in ("targeted", "random")]
    table = {}
    for key, condition in conditions:
        per_run = {}
        for run, agent in agents.items():
            changes: list[float] = []
            policy = (lambda _env, a=agent: (lambda obs: a.act(obs))) if condition is None \
                else intact_policy(agent, *condition, changes=changes)
            per_run[run] = {**episodes_of(policy, env_id, args.episodes, None, 0),
                            "action_change": float(np.mean(changes)) if changes else 0.0}
        table[key] = {"runs": per_run, "action_change": float(np.mean([v["action_change"] for v in per_run.values()]))}
        print(f"{key:<18} mean action change 0.5|a' - a|^2 per step: {table[key]['action_change']:.4f}", flush=True)
        if condition is None:
            table[key]["random"] = episodes_of(random_policy, env_id, args.episodes, None, 0)
    result = {"env": env_id, "episodes": args.episodes, "runs": [str(r) for r in runs], "table": summarise(table),
              "protocol": "robokit.intact.attacks.corrupt_cloud on the scan's cloud / max range; saliency: "
                          "occlusion of each range bin (Greydanus et al. 2018), rank percentiles"}
    return report(result, args.out)


def summarise(table: dict) -> dict:
    """Add each condition's mean and 95% interval over runs (per-run means) to ``table``; print it."""
    from robokit.intact.protocol import mean_ci95

    for key, row in table.items():
        per_run, rand = row["runs"], table["clean"]["random"]
        row["return"] = mean_ci95([v["return"] for v in per_run.values()])
        row["success"] = mean_ci95([v["success"] for v in per_run.values()])
        scan = f"   scan policy {row['scan_policy']['return']:7.2f} ({100 * row['scan_policy']['success']:.0f} %)" \
            if "scan_policy" in row else ""
        print(f"{key:<18} SAC return {row['return']['mean']:7.2f} ± {row['return']['ci95']:5.2f}  success "
              f"{100 * row['success']['mean']:5.1f} ± {100 * row['success']['ci95']:4.1f} %   random "
              f"{rand['return']:7.2f} ({100 * rand['success']:.0f} %){scan}   per run "
              + " ".join(f"{v['return']:.2f}" for v in per_run.values()), flush=True)
    return table


def report(result: dict, out: Path | None) -> dict:
    """Write ``result`` to ``out`` (when given) and return the JSON line."""
    if out is not None:
        out.write_text(json.dumps(result, indent=1))
    clean = result["table"]["clean"]
    return {"benchmark": "lidar_nav_sac_return", "unit": "return", "higher_is_better": True,
            "robokit": round(clean["return"]["mean"], 3), "peers": {"random": round(clean["random"]["return"], 3)},
            "ratio": None, "notes": f"{len(result['runs'])} runs x {result['episodes']} episodes (reset seeds 0..), "
                                    f"{result['env']}"}


def merge(paths: list[Path], out: Path | None) -> dict:
    """One table from ``--eval`` results of the same env, episodes and conditions written apart."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    first = parts[0]
    if any((p["env"], p["episodes"], sorted(p["table"])) != (first["env"], first["episodes"], sorted(first["table"]))
           for p in parts):
        raise SystemExit("--merge: the files evaluate other envs, episode counts or conditions")
    table = {key: {"runs": {run: v for p in parts for run, v in p["table"][key]["runs"].items()},
                   **{ref: first["table"][key][ref] for ref in ("random", "scan_policy") if ref in first["table"][key]}}
             for key in first["table"]}
    for row in table.values():  # --intact files: the mean action change over every run
        changes = [v["action_change"] for v in row["runs"].values() if "action_change" in v]
        if changes:
            row["action_change"] = float(np.mean(changes))
    return report({**first, "runs": [r for p in parts for r in p["runs"]], "table": summarise(table)}, out)


def returns(args: argparse.Namespace) -> dict:
    """Per condition: each run's and the random policy's return and success, summarised over runs."""
    from robokit.algos import load_agent
    from robokit.core.checkpoint import load_checkpoint

    torch.manual_seed(0)
    runs = [Path(r) for r in args.eval]
    env_id = load_checkpoint(runs[0] / "final.pt")["env_id"]
    agents = {str(r): load_agent(r / "final.pt") for r in runs}
    conditions = [(None, 0)] + [(c, s) for c in args.corruptions for s in args.severities]
    table = {}
    for corruption, severity in conditions:
        key = "clean" if corruption is None else f"{corruption}/{severity}"
        per_run = {run: episodes_of(lambda _env, a=agent: (lambda obs: a.act(obs)), env_id, args.episodes,
                                    corruption, severity) for run, agent in agents.items()}
        if corruption is None:  # a random policy never reads the scan: its returns are the same under corruption
            rand = episodes_of(random_policy, env_id, args.episodes, None, 0)
        scan = episodes_of(scan_policy, env_id, args.episodes, corruption, severity) if args.scan_policy else None
        table[key] = {"runs": per_run, **({"random": rand} if corruption is None else {}),
                      **({"scan_policy": scan} if scan else {})}
    result = {"env": env_id, "episodes": args.episodes, "runs": [str(r) for r in runs], "table": summarise(table)}
    return report(result, args.out)


def compare(paths: list[Path], labels: list[str], png: Path | None) -> dict:
    """``--compare A.json B.json --labels std intact``: ``--eval`` (or ``--intact``) results of the
    same conditions side by side: one markdown row per condition and arm (mean return +- 95%
    interval, mean success, every run's return / success), and a bar chart of mean success per
    condition with each run as a dot (``--png``). Returns the JSON line (clean and mean over the
    corrupted conditions per arm)."""
    parts = [json.loads(Path(p).read_text()) for p in paths]
    if len(labels) != len(parts) or any(sorted(p["table"]) != sorted(parts[0]["table"]) for p in parts):
        raise SystemExit("--compare: one --labels entry per file, and the files must hold the same conditions")
    keys = list(parts[0]["table"])
    print("| condition | policy | return (mean +- 95%) | success | per seed return / success |\n|---|---|---|---|---|")
    for key in keys:
        for label, part in zip(labels, parts, strict=True):
            row = part["table"][key]
            seeds = " ; ".join(f"{v['return']:.2f} / {v['success']:.1f}" for v in row["runs"].values())
            print(f"| {key} | {label} | {row['return']['mean']:.2f} +- {row['return']['ci95']:.2f} | "
                  f"{row['success']['mean']:.2f} | {seeds} |")
    if png is not None:
        _compare_png(parts, labels, keys, png)
    corrupted = {label: float(np.mean([p["table"][k]["success"]["mean"] for k in keys if k != "clean"]))
                 for label, p in zip(labels, parts, strict=True)}
    return {"benchmark": "lidar_nav_sac_compare", "unit": "success", "higher_is_better": True,
            "clean": {label: p["table"]["clean"]["success"]["mean"] for label, p in zip(labels, parts, strict=True)},
            "mean_corrupted": corrupted, "conditions": len(keys) - 1, "png": None if png is None else str(png)}


def _compare_png(parts: list[dict], labels: list[str], keys: list[str], png: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(keys) * len(parts)), 3.6))
    width = 0.8 / len(parts)
    for i, (label, part) in enumerate(zip(labels, parts, strict=True)):
        x = np.arange(len(keys)) + (i - (len(parts) - 1) / 2) * width
        ax.bar(x, [part["table"][k]["success"]["mean"] for k in keys], width, label=label, color=f"C{i}", alpha=0.6)
        for xi, key in zip(x, keys, strict=True):
            runs = [v["success"] for v in part["table"][key]["runs"].values()]
            ax.plot(np.full(len(runs), xi), runs, "k.", ms=3)
    ax.set_xticks(np.arange(len(keys)), keys, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("eval success (dots: seeds)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=120)


#: training episodes averaged in the curves' third panel
TRAIN_WINDOW = 10


def training_success(metrics: Path) -> tuple[np.ndarray, np.ndarray]:
    """(env steps at each training episode's end, share of the last ``TRAIN_WINDOW`` episodes
    that reached the goal) from a trainer's ``metrics.csv``."""
    from robokit.trainers.plotting import metric_rows

    rows = metric_rows(metrics, "train/success")
    steps = np.array([float(r["train/env_steps"]) for r in rows])
    hits = np.array([float(r["train/success"]) > 0 for r in rows], np.float64)
    window = np.convolve(hits, np.ones(TRAIN_WINDOW), "full")[: len(hits)]
    return steps, window / np.minimum(np.arange(1, len(hits) + 1), TRAIN_WINDOW)


def _run_kind(text: str, config: dict) -> str:
    """Legend suffix of a trainer run: `` WSRL from data`` (the config class in the file's header
    comment, ``# robokit.trainers.trainer.TrainWSRLConfig``) for offline-to-online runs, else empty."""
    if not (config.get("dataset") and config.get("offline_steps")):
        return ""
    match = re.search(r"Train(\w+)Config", text.splitlines()[0])
    return f" {match.group(1) if match else 'offline-to-online'} from data"


def _online_part(curve: dict[str, list[float]]) -> dict[str, list[float]]:
    """The eval rows from the last offline one on (the pretrained policy at env step 0) to the end."""
    first = max((i for i, env_steps in enumerate(curve["env_steps"]) if env_steps == 0), default=0)
    return {key: values[first:] for key, values in curve.items()}


def curves(args: argparse.Namespace) -> dict:
    """``--curves RUN ...``: eval return and success against env steps of trainer run folders
    (state-observation runs dashed), with the random policy's return on ``--episodes`` resets
    as a band; written to ``--png``. Returns the JSON line (last eval of each run)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import yaml

    from robokit.trainers.plotting import read_eval_curve

    runs = {}
    for run in map(Path, args.curves):
        text = (run / "config.yaml").read_text()
        config = yaml.safe_load(text)
        runs[str(run)] = {"env": config["env"], "seed": config["seed"], "kind": _run_kind(text, config),
                          **_online_part(read_eval_curve(run / "metrics.csv"))}
    cloud_env = next(r["env"] for r in runs.values() if "State" not in r["env"])
    rand = episodes_of(random_policy, cloud_env, args.episodes, None, 0)
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(13, 3.6))
    keys = {path: (run["env"], run["kind"]) for path, run in runs.items()}
    colours = {key: f"C{i}" for i, key in enumerate(dict.fromkeys(keys.values()))}
    for path, run in runs.items():
        style = {"ls": "--", "lw": 1} if "State" in run["env"] else {"marker": "o", "ms": 3}
        label = f"{run['env'].split('/')[-1]}{run['kind']} seed {run['seed']}"
        colour = colours[keys[path]]
        ax.plot(run["env_steps"], run["mean"], label=label, color=colour, **style)
        bx.plot(run["env_steps"], run["success"], color=colour, **style)
        steps, success = training_success(Path(path) / "metrics.csv")
        cx.plot(steps, success, color=colour, lw=1, ls=style.get("ls", "-"))
    ax.axhline(rand["return"], color="gray", lw=3, alpha=0.5, label=f"random policy ({args.episodes} episodes)")
    bx.axhline(rand["success"], color="gray", lw=3, alpha=0.5)
    cx.axhline(rand["success"], color="gray", lw=3, alpha=0.5)
    for axis, name in ((ax, "eval return"), (bx, "eval success rate"),
                       (cx, f"training success (last {TRAIN_WINDOW} episodes)")):
        axis.set_xlabel("env steps")
        axis.set_ylabel(name)
    ax.legend(fontsize=6)
    title = ("offline-to-online from a LiDAR dataset against SAC from scratch (online env steps; x = 0: the pretrained policy)"
             if any(run["kind"] for run in runs.values()) else "from the LiDAR (solid) and the privileged state (dashed)")
    fig.suptitle(f"LidarNav: {title}", fontsize=9)
    fig.tight_layout()
    fig.savefig(args.png, dpi=120)
    last = {name: {"return": r["mean"][-1], "success": r["success"][-1], "env_steps": r["env_steps"][-1]}
            for name, r in runs.items()}
    cloud = {k: v["return"] for k, v in last.items() if "State" not in runs[k]["env"]}
    from_data = [v for k, v in cloud.items() if runs[k]["kind"]]
    peers = {"random": round(rand["return"], 3)}
    if from_data:  # offline-to-online runs are robokit's figure, the online-from-scratch ones the peer
        peers["online_from_scratch"] = round(float(np.mean([v for k, v in cloud.items() if not runs[k]["kind"]])), 3)
    return {"benchmark": "lidar_nav_sac_curves", "unit": "return", "higher_is_better": True,
            "robokit": round(float(np.mean(from_data or list(cloud.values()))), 3), "peers": peers,
            "ratio": None, "runs": last, "random": rand, "png": str(args.png)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="speed: short rounds on small replays; --intact: drop at strength 1, 3 episodes")
    parser.add_argument("--eval", nargs="+", default=None, help="run folders to evaluate instead of timing")
    parser.add_argument("--merge", nargs="+", type=Path, default=None, help="--eval result files to merge")
    parser.add_argument("--episodes", type=int, default=10)
    parser.add_argument("--corruptions", nargs="*", default=["drop_points", "gaussian_noise", "beam_missing",
                                                              "crosstalk", "fog"])
    parser.add_argument("--severities", type=int, nargs="*", default=[1, 3, 5])
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--scan-policy", action="store_true",
                        help="--eval: also the hand-written policy that reads only the scan (scan_policy)")
    parser.add_argument("--intact", nargs="+", default=None,
                        help="range-scan run folders: returns under INTACT's targeted vs random corruptions")
    parser.add_argument("--ops", nargs="+", default=list(INTACT_OPS), choices=INTACT_OPS)
    parser.add_argument("--strengths", type=float, nargs="+", default=list(INTACT_STRENGTHS))
    parser.add_argument("--compare", nargs="+", type=Path, default=None,
                        help="--eval / --intact result files to tabulate side by side (--labels, --png)")
    parser.add_argument("--labels", nargs="+", default=None, help="--compare: one name per file")
    parser.add_argument("--curves", nargs="+", default=None, help="run folders whose learning curves to plot")
    parser.add_argument("--png", type=Path, default=None,
                        help="--curves (default lidar_nav_sac.png) and --compare (none by default): the figure")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    if args.curves is not None:
        args.png = args.png or Path("lidar_nav_sac.png")
        print(json.dumps(curves(args)))
    elif args.compare is not None:
        labels = args.labels or [p.stem for p in args.compare]
        print(json.dumps(compare(args.compare, labels, args.png)))
    elif args.intact is not None:
        print(json.dumps(intact(args)))
    elif args.merge is not None:
        print(json.dumps(merge(args.merge, args.out)))
    else:
        print(json.dumps(speed(args) if args.eval is None else returns(args)))


if __name__ == "__main__":
    main()
