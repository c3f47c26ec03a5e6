"""``robokit demo``: the embedded end-to-end demo, one stage per capability.

Each stage is a ``run_demo(run_dir) -> dict`` function in the package that owns
it. Stages run in order under ``runs/demo-<timestamp>/<stage>/``; a summary of
every stage's headline numbers is printed at the end and saved as JSON.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import time
import traceback
from pathlib import Path
from typing import Literal

from robokit.core.atomic import atomic_write_text
from robokit.core.cli_errors import run_command
from robokit.core.config import ConfigError

#: stage name -> (entry point, what it shows)
STAGES: dict[str, tuple[str, str]] = {
    "data": ("robokit.data.demo:run_demo",
             "collect a MuJoCo dataset and load it into the replay layer"),
    "rl": ("robokit.trainers.demo:run_demo",
           "WSRL: offline pretraining -> warm-up -> online fine-tuning, with its curve"),
    "intact": ("robokit.intact.demo:run_demo",
               "INTACT robust training and a corruption sweep on procedural point clouds"),
}


@dataclasses.dataclass(frozen=True)
class DemoConfig:
    """Run robokit's end-to-end demo."""

    out: Path = Path("runs")
    """Folder under which a ``demo-<timestamp>`` run folder is created."""
    stages: tuple[Literal["data", "rl", "intact"], ...] = tuple(STAGES)
    """Which stages to run, in order."""


def run(config: DemoConfig) -> dict[str, dict]:
    """Run the selected stages; a failing stage is reported and the others still run."""
    unknown = [name for name in config.stages if name not in STAGES]
    if unknown:
        raise ConfigError(f"--stages: unknown demo stage '{unknown[0]}'; choose from {', '.join(STAGES)}")
    run_dir = config.out / time.strftime("demo-%Y%m%d-%H%M%S")
    run_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, dict] = {}
    for name in config.stages:
        entry, what = STAGES[name]
        print(f"\n=== demo stage '{name}': {what}", flush=True)
        start = time.perf_counter()
        try:
            results[name] = _call(entry, run_dir / name)
            results[name]["seconds"] = round(time.perf_counter() - start, 1)
        except Exception as err:  # keep going: one broken stage must not hide the others
            traceback.print_exc()
            results[name] = {"error": f"{type(err).__name__}: {err}"}
    atomic_write_text(run_dir / "summary.json", json.dumps(results, indent=2, default=str))
    _print_summary(results, run_dir)
    return results


def _call(entry: str, stage_dir: Path) -> dict:
    module_name, _, function_name = entry.partition(":")
    stage_dir.mkdir(parents=True, exist_ok=True)
    result = getattr(importlib.import_module(module_name), function_name)(stage_dir)
    return dict(result or {})


def _print_summary(results: dict[str, dict], run_dir: Path) -> None:
    print(f"\n=== demo summary (outputs in {run_dir})")
    for name, values in results.items():
        shown = ", ".join(f"{k}={_short(v)}" for k, v in values.items())
        print(f"  {name:<7} {shown}")


def _short(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def main(argv: list[str]) -> int:
    """Entry point of ``robokit demo``; exit 1 when any stage failed, 2 on bad input."""
    return run_command("robokit demo", argv, _main)


def _main(argv: list[str]) -> int:
    from robokit.core.config import parse

    results = run(parse(DemoConfig, argv, prog="robokit demo"))
    return 1 if any("error" in values for values in results.values()) else 0
