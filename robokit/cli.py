"""The ``robokit`` command.

Each subcommand lives in the package that owns it and is imported only when
used, so ``robokit --help`` is fast and works without optional stacks. A
subcommand entry point takes the remaining ``argv`` and returns an exit code.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Sequence

#: subcommand -> ("module:function", one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "demo": ("robokit.demo:main", "run the embedded end-to-end demo (writes under runs/)"),
    "collect": ("robokit.data.cli:collect_main", "roll out a policy in an env and write a Minari dataset"),
    "dataset": ("robokit.data.cli:dataset_main", "inspect or convert datasets (info, convert)"),
    "train": ("robokit.trainers.cli:train_main", "train an RL agent (sac, cql, calql, robofume, iql, rlpd, wsrl, bc, ppo)"),
    "eval": ("robokit.trainers.cli:eval_main", "evaluate an RL checkpoint, optionally recording video"),
    "sweep": ("robokit.distributed.sweep:main", "seeds x grid of `robokit train` runs on Ray Tune, resumable"),
    "robofume": ("robokit.robofume.cli:main", "RoboFuME: make-data, reward, pretrain, reset-free finetune"),
    "robustness": ("robokit.intact.cli:main", "point-cloud robustness: train, eval, saliency"),
    "kitti": ("robokit.tracking.cli:main", "KITTI detection and tracking: train, track, evaluate"),
    "sim-lidar": ("robokit.simlidar.cli:main", "simulated LiDAR in MuJoCo: object and scene datasets, scans"),
    "ros": ("robokit.ros.cli:main", "ROS bridge: bags <-> datasets, live policy node"),
    "pretrain": ("robokit.pretrain.cli:main", "pretrain a pixel encoder on multi-context demos (inverse dynamics, ...)"),
    "finetune-bc": ("robokit.pretrain.cli:finetune_main", "BC on a few demos with a frozen pretrained encoder"),
}


def _usage() -> str:
    width = max(len(name) for name in SUBCOMMANDS)
    lines = ["usage: robokit <command> [options]   (robokit <command> --help for details)", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
    lines += ["", "Bad input ends a command with exit code 2 and one line naming the file/key/line;",
              "add --debug (or set ROBOKIT_DEBUG=1) to see the full traceback instead."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Dispatch ``robokit <command> ...`` to the owning module."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        from robokit import __version__

        print(f"robokit {__version__}")
        return 0
    command, rest = args[0], args[1:]
    if command not in SUBCOMMANDS:
        print(f"robokit: unknown command '{command}'\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, _, function_name = SUBCOMMANDS[command][0].partition(":")
    entry = getattr(importlib.import_module(module_name), function_name)
    code = entry(rest)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
