"""``robokit sweep CONFIG.yaml``: seeds x a grid of ``robokit train`` runs on Ray Tune.

CONFIG.yaml (read with ``yaml.safe_load``)::

    algo: sac                     # any `robokit train --algo`
    out: runs/sweep-sac           # sweep folder (refused when it holds files, unless --resume/--overwrite)
    seeds: [0, 1, 2]
    metric: final_return          # run-summary key tabulated and plotted (default final_return)
    base:                         # `robokit train` options, as in a run's config.yaml
      env: Pendulum-v1
      online_steps: 5000
      agent: {hidden_dims: [64, 64]}
    grid:                         # dotted keys -> values; every combination x every seed is a trial
      agent.batch_size: [64, 256]

Every trial is a normal robokit run folder, ``OUT/trials/<name>`` (config.yaml, metrics.csv,
checkpoints/, final.pt, learning_curve.png), plus ``summary.json`` written last, atomically: a
trial with that file is complete. Ray Tune schedules the trials (one CPU each, ``--workers`` at
a time). ``--resume`` after the driver was killed runs a fresh Tune experiment over the same
trials: a complete trial returns its stored summary without training again, an unfinished one
continues from its newest checkpoint (``robokit train --resume``), so robokit's run folders,
not Tune's experiment state, say what is done. Then ``OUT/summary.csv``, ``summary.json`` and
``summary.png`` compare the trials (mean and std over seeds per grid point).

A trial runs the same code as ``robokit train`` with its seed, in its own process with one
torch thread: its numbers equal those of ``robokit train`` run alone with that config.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import tyro

from robokit.core.atomic import atomic_write_text
from robokit.core.cli_errors import run_command
from robokit.core.config import ConfigError
from robokit.distributed.options import DistributedOptions

PROG = "robokit sweep"
TRIALS_DIR = "trials"
TRIAL_SUMMARY = "summary.json"


@dataclasses.dataclass(frozen=True)
class SweepArgs:
    """Run seeds x a grid of `robokit train` configurations on Ray Tune (see the module docs for CONFIG.yaml)."""

    config: Annotated[Path, tyro.conf.Positional]
    """sweep description (YAML: algo, out, seeds, base, grid, metric)"""
    out: Path | None = None
    """sweep folder (default: the YAML's 'out')"""
    resume: bool = False
    """continue a sweep whose driver was stopped: complete trials are kept, unfinished ones resume"""
    overwrite: bool = False
    """delete the sweep folder first"""
    address: str | None = None
    """Ray cluster to join ('auto' or HOST:PORT); default: a private local Ray with --workers CPUs"""
    workers: int = 2
    """trials running at once (one CPU each)"""


@dataclasses.dataclass(frozen=True)
class Trial:
    """One run of the sweep: its name, grid point, seed and ``robokit train`` config as plain data."""

    name: str
    point: dict[str, Any]
    seed: int
    algo: str
    config: dict[str, Any]


def read_sweep(path: Path) -> dict[str, Any]:
    """The checked sweep description of YAML file ``path``.

    Raises:
        ConfigError: naming the file and key of a missing or malformed entry.
    """
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(err).split())})") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping with keys algo, seeds, base, grid")
    unknown = set(data) - {"algo", "out", "seeds", "base", "grid", "metric"}
    if unknown:
        raise ConfigError(f"{path}: unknown keys {sorted(unknown)} (algo, out, seeds, base, grid, metric)")
    if "algo" not in data:
        raise ConfigError(f"{path}: key 'algo' is required")
    seeds = data.get("seeds", [0])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
        raise ConfigError(f"{path}: key 'seeds' must be a non-empty list of integers, got {seeds!r}")
    for key in ("base", "grid"):
        if not isinstance(data.get(key) or {}, dict):
            raise ConfigError(f"{path}: key '{key}' must be a mapping")
    for key, values in (data.get("grid") or {}).items():
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{path}: grid key '{key}' must map to a non-empty list of values")
    return {"algo": str(data["algo"]), "out": data.get("out"), "seeds": seeds, "base": data.get("base") or {},
            "grid": data.get("grid") or {}, "metric": str(data.get("metric", "final_return"))}


def expand_trials(sweep: dict[str, Any], out: Path, source: Path) -> list[Trial]:
    """Every grid point x seed as a :class:`Trial` whose config is checked against ``robokit train``'s.

    Raises:
        ConfigError: naming ``source`` and the key when a config is not a valid training config.
    """
    from robokit.algos import ALGOS

    if sweep["algo"] not in ALGOS:
        raise ConfigError(f"{source}: key 'algo': unknown algorithm '{sweep['algo']}' (one of "
                          f"{', '.join(ALGOS.names())})")
    keys = list(sweep["grid"])
    trials = []
    for values in itertools.product(*(sweep["grid"][key] for key in keys)):
        point = dict(zip(keys, values, strict=True))
        for seed in sweep["seeds"]:
            name = ",".join([f"{key}={_short(value)}" for key, value in point.items()] + [f"seed={seed}"])
            config = _nested({**_flatten(sweep["base"]), **point, "seed": seed,
                              "out": str((out / TRIALS_DIR / name).resolve()), "progress": False})
            config.setdefault("logger", ["csv"])
            _check_train_config(sweep["algo"], config, source)
            trials.append(Trial(name, point, seed, sweep["algo"], config))
    return trials


def _short(value: Any) -> str:
    text = "x".join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    return text.replace("/", "_").replace(" ", "")


def _flatten(mapping: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in mapping.items():
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _nested(flat: dict[str, Any]) -> dict[str, Any]:
    nested: dict[str, Any] = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = nested
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = value
    return nested


def _check_train_config(algo: str, config: dict[str, Any], source: Path) -> Any:
    from robokit.core.config import from_dict
    from robokit.trainers.trainer import config_class_for

    try:
        return from_dict(config_class_for(algo), config)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{source}: {err}") from err


def run_trial(trial: Trial) -> dict[str, Any]:
    """Train ``trial`` (or continue it, or read it back when complete); returns its summary.

    Writes ``summary.json`` last, atomically, so a trial with that file is complete.
    """
    from robokit.core.config import from_dict
    from robokit.trainers.trainer import config_class_for, train

    run_dir = Path(trial.config["out"])
    done = run_dir / TRIAL_SUMMARY
    if done.is_file():
        return {**json.loads(done.read_text()), "reused": True}
    resume = run_dir.is_dir() and any(run_dir.iterdir())
    config = from_dict(config_class_for(trial.algo), {**trial.config, "resume": resume})
    summary = {key: value for key, value in train(trial.algo, config).items() if _plain(value)}
    payload = {"trial": trial.name, "seed": trial.seed, "point": trial.point, **summary, "resumed": resume}
    atomic_write_text(done, json.dumps(payload, indent=2))
    return {**payload, "reused": False}


def _plain(value: Any) -> bool:
    return isinstance(value, int | float | str | bool)


def _tune_trainable(params: dict[str, Any]) -> None:
    """The Ray Tune function trainable: one :class:`Trial` (in ``params['trial']``)."""
    from ray import tune

    tune.report({key: value for key, value in run_trial(Trial(**params["trial"])).items()
                 if isinstance(value, int | float | bool)})


def run_sweep(trials: list[Trial], out: Path, options: DistributedOptions) -> list[dict[str, Any]]:
    """All ``trials`` on Ray Tune (``options.workers`` at a time); their summaries in trial order."""
    from robokit.distributed.options import ray_session

    with ray_session(options) as ray:
        from ray import tune

        os.environ.setdefault("RAY_CHDIR_TO_TRIAL_DIR", "0")  # trials write absolute paths only
        tuner = tune.Tuner(
            tune.with_resources(_tune_trainable, {"cpu": 1}),
            param_space={"trial": tune.grid_search([dataclasses.asdict(t) for t in trials])},
            tune_config=tune.TuneConfig(max_concurrent_trials=options.workers),
            run_config=tune.RunConfig(name="tune", storage_path=str((out / "tune").resolve()), verbose=0),
        )
        grid = tuner.fit()
        errors = [result.error for result in grid if result.error is not None]
        if errors:
            raise RuntimeError(f"{len(errors)} sweep trial(s) failed; first: {errors[0]}")
        del ray
    return [json.loads((Path(t.config["out"]) / TRIAL_SUMMARY).read_text()) for t in trials]


def summarize(trials: list[Trial], summaries: list[dict[str, Any]], metric: str, out: Path) -> str:
    """Write ``summary.csv``, ``summary.json`` and ``summary.png`` into ``out``; return the table text."""
    import csv
    import io

    keys = list(trials[0].point)
    rows = [{"trial": t.name, **{k: t.point[k] for k in keys}, "seed": t.seed, metric: s.get(metric),
             "seconds": s.get("seconds")} for t, s in zip(trials, summaries, strict=True)]
    groups = _groups(trials, summaries, metric)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(out / "summary.csv", buffer.getvalue())
    atomic_write_text(out / "summary.json", json.dumps({"metric": metric, "trials": rows, "groups": groups},
                                                        indent=2))
    _plot(groups, metric, out / "summary.png")
    width = max(len(g["point"]) for g in groups)
    lines = [f"{'grid point':<{width}}  seeds  {metric} mean +- std"]
    lines += [f"{g['point']:<{width}}  {g['seeds']:>5}  {g['mean']:.3f} +- {g['std']:.3f}" for g in groups]
    return "\n".join(lines)


def _groups(trials: list[Trial], summaries: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    """Mean and std (over seeds) of ``metric`` per grid point, in grid order."""
    by_point: dict[str, list[float]] = {}
    for trial, summary in zip(trials, summaries, strict=True):
        label = ",".join(f"{k}={_short(v)}" for k, v in trial.point.items()) or "(base)"
        value = summary.get(metric)
        by_point.setdefault(label, []).append(float("nan") if value is None else float(value))
    return [{"point": label, "seeds": len(values), "values": values, "mean": float(np.mean(values)),
             "std": float(np.std(values))} for label, values in by_point.items()]


def _plot(groups: list[dict[str, Any]], metric: str, path: Path) -> None:
    from robokit.intact.evaluate import new_figure, save_png

    fig = new_figure(figsize=(max(4.0, 1.2 * len(groups) + 2), 3.5))
    ax = fig.add_subplot()
    positions = np.arange(len(groups))
    ax.bar(positions, [g["mean"] for g in groups], yerr=[g["std"] for g in groups], color="#9ecae1", capsize=4)
    for x, group in zip(positions, groups, strict=True):
        ax.scatter(np.full(len(group["values"]), x), group["values"], color="#08519c", s=12, zorder=3)
    ax.set_xticks(positions, [g["point"] for g in groups], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    ax.set_title(f"{metric}: mean +- std over seeds (dots: seeds)", fontsize=9)
    save_png(fig, path)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``robokit sweep``."""
    return run_command(PROG, argv, _main)


def _main(argv: list[str]) -> int:
    from robokit.core.config import parse
    from robokit.core.rundir import check_run_dir, clear_run_dir

    args = parse(SweepArgs, argv, prog=PROG)
    options = DistributedOptions("ray", args.address, args.workers)  # without ray: names the extra, exit 2
    sweep = read_sweep(args.config)
    out_value = args.out or sweep["out"]
    if out_value is None:
        raise ConfigError(f"{args.config}: no 'out' key; pass --out DIR")
    out = check_run_dir(Path(out_value), resume=args.resume, overwrite=args.overwrite)
    trials = expand_trials(sweep, out, args.config)
    if args.overwrite:
        clear_run_dir(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "sweep.yaml", args.config.read_text())
    summaries = run_sweep(trials, out, options)
    print(summarize(trials, summaries, sweep["metric"], out))
    print(f"{len(trials)} trials in {out / TRIALS_DIR}; table {out / 'summary.csv'}, plot {out / 'summary.png'}")
    return 0
