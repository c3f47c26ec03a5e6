"""``robokit robofume pretrain|reward|finetune|make-data``.

- ``make-data``: prior / target / failure datasets for a task pair (:func:`robokit.robofume.data.make_data_main`);
- ``reward``: train and save a success model, print its confusion table (:func:`robokit.robofume.reward_cli.reward_main`);
- ``pretrain``: Cal-QL + BC on prior + target data (``--algo robofume``; ``calql`` and ``bc`` for baselines);
- ``finetune``: the reset-free loop from a pretrained ``final.pt`` with a saved success model or the oracle.

Every subcommand follows the one CLI error convention (:mod:`robokit.core.cli_errors`): bad input
ends with one line naming the file/key and exit code 2, ``--debug`` shows the traceback; run
folders refuse to be overwritten without ``--resume`` or ``--overwrite``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from robokit.core.cli_errors import run_command
from robokit.core.config import ConfigError

PROG = "robokit robofume"
#: subcommand -> ("module:function", one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "make-data": ("robokit.robofume.data:make_data_main", "write prior, target and failure data for a task pair"),
    "reward": ("robokit.robofume.reward_cli:reward_main", "train a success model (vlm, cnn) and print its confusion table"),
    "pretrain": ("robokit.robofume.cli:pretrain_main", "Cal-QL + BC pretraining on prior + target data"),
    "finetune": ("robokit.robofume.cli:finetune_main", "reset-free fine-tuning with a success-model reward"),
}


def usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [f"usage: {PROG} <command> [options]   ({PROG} <command> --help for details)", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``robokit robofume``: dispatch to the subcommand's own entry point."""
    return run_command(PROG, argv, _main)


def _main(args: list[str]) -> int:
    if not args or args[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    command, rest = args[0], args[1:]
    if command not in COMMANDS:
        raise ConfigError(f"unknown command '{command}' (one of {', '.join(COMMANDS)})")
    module_name, _, function = COMMANDS[command][0].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ImportError(f"'{PROG} {command}' needs {module_name}, which this install lacks ({err})") from err
    return int(getattr(module, function)(rest) or 0)


def pretrain_main(argv: Sequence[str]) -> int:
    """``robokit robofume pretrain [--algo robofume|calql|bc] --datasets DIR [DIR ...] [--agent.<option> ...]``."""
    return run_command(f"{PROG} pretrain", argv, _pretrain_main)


def _pretrain_main(args: list[str]) -> int:
    from robokit.core.config import parse
    from robokit.robofume.pretrain import pretrain, pretrain_config_class
    from robokit.trainers.cli import expand_encoder_flags, split_algo

    algo, rest = split_algo(expand_encoder_flags(args))
    algo = algo or "robofume"
    config = parse(pretrain_config_class(algo), rest, prog=f"{PROG} pretrain --algo {algo}",
                   description="RoboFuME pretraining: Cal-QL + BC (or --algo calql / bc) on prior + target data.")
    _print(f"pretrain ({algo})", pretrain(algo, config))
    return 0


def finetune_main(argv: Sequence[str]) -> int:
    """``robokit robofume finetune --env ID --pretrained final.pt --reward-model PATH|oracle [...]``."""
    return run_command(f"{PROG} finetune", argv, _finetune_main)


def _finetune_main(args: list[str]) -> int:
    from robokit.core.config import parse
    from robokit.robofume.loop import FinetuneConfig, finetune

    config = parse(FinetuneConfig, args, prog=f"{PROG} finetune",
                   description="RoboFuME reset-free fine-tuning: forward/backward instructions switched by a "
                               "success model whose output is the reward.")
    _print(f"finetune ({config.fine_tune})", finetune(config))
    return 0


def _print(title: str, summary: dict) -> None:
    rows = [(key.replace("_", " "), f"{value:.3f}" if isinstance(value, float) else str(value))
            for key, value in summary.items() if value is not None]
    width = max(len(key) for key, _ in rows)
    print(f"\nrobofume {title}")
    print("\n".join(f"  {key:<{width}}  {value}" for key, value in rows))
