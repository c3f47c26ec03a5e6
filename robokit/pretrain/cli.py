"""``robokit pretrain`` and ``robokit finetune-bc``.

``robokit pretrain --objective {inverse_dynamics,bc,contrastive,forward,reconstruction} --data PATH --out RUN``
fits an encoder on a multi-context demo corpus; ``robokit pretrain make-demos ...`` writes such
a corpus from the hidden-context envs' scripted experts. ``robokit finetune-bc --encoder
RUN/final.pt --data PATH --out RUN`` fits a BC head on a few demos of a held-out context
(``--mode scratch``: pixels from random weights; ``--mode state``: the privileged state) and
rolls it out with ``--eval-env``. Bad input: one line, exit 2 (``--debug`` for the traceback).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

from robokit.core.cli_errors import run_command

PROG = "robokit pretrain"
FINETUNE_PROG = "robokit finetune-bc"
MAKE_DEMOS = "robokit.pretrain.demos:make_demos_main"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``robokit pretrain`` (``make-demos`` forwards to the demo writer)."""
    args = list(argv or [])
    if args and args[0] == "make-demos":
        module, _, function = MAKE_DEMOS.partition(":")
        try:
            entry = getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError):
            return run_command(f"{PROG} make-demos", args[1:], _no_demo_writer)
        return int(entry(args[1:]) or 0)
    return run_command(PROG, args, _pretrain)


def _no_demo_writer(args: list[str]) -> int:
    raise ImportError(f"the demo writer {MAKE_DEMOS} is not available in this installation")


def _pretrain(args: list[str]) -> int:
    from robokit.core.config import parse
    from robokit.pretrain.training import PretrainConfig, pretrain

    cfg = parse(PretrainConfig, args, prog=PROG, description="Pretrain a pixel encoder on multi-context demos.")
    result = pretrain(cfg)
    losses = "  ".join(f"{key} {value:.4f}" for key, value in result["metrics"].items() if key.startswith("losses/"))
    print(f"{cfg.objective}: {cfg.steps} steps in {result['seconds']:.1f} s  {losses}")
    print(f"encoder: {result['checkpoint']}")
    return 0


def finetune_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``robokit finetune-bc``."""
    return run_command(FINETUNE_PROG, argv, _finetune)


def _finetune(args: list[str]) -> int:
    from robokit.core.config import parse
    from robokit.pretrain.finetune import FinetuneConfig, finetune

    cfg = parse(FinetuneConfig, args, prog=FINETUNE_PROG,
                description="BC on a few demos: frozen pretrained encoder, pixels from scratch, or state.")
    result = finetune(cfg)
    scores = result["eval"]
    tail = (f"  success {scores['success_rate']:.2f}  return {scores['return']:.2f}" if scores else "")
    print(f"{cfg.mode}: bc loss {result['bc_loss']:.4f} in {result['seconds']:.1f} s{tail}")
    print(f"policy: {result['checkpoint']}")
    return 0
