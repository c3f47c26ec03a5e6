"""``robokit train`` and ``robokit eval``.

``robokit train --algo {sac,cql,calql,iql,rlpd,wsrl,bc} --env ENV [--dataset PATH] [--offline-steps N]
[--online-steps M] [--seed S] [--out DIR] [--logger csv wandb ...] [--agent.<option> ...]``;
``robokit train --algo wsrl --help`` lists the algorithm's options; ``--encoder NAME`` is short for the
observation encoder options (``--encoder sparse`` = ``--agent.encoder.pointcloud sparse``, see docs/multimodal.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from robokit.core.cli_errors import run_command
from robokit.core.config import ConfigError, check_ranges
from robokit.distributed.options import DistributedField, DistributedOptions, check_fan_out
from robokit.envs.options import EnvOptions

ALGO_FLAG = "--algo"
ENCODER_FLAG = "--encoder"
#: ``--encoder NAME`` shorthands -> the agent option they set
ENCODER_CHOICES = {"identity": "vector", "mlp": "vector", "cnn": "image", "pointnet": "pointcloud",
                   "sparse": "pointcloud"}


@dataclasses.dataclass(frozen=True)
class EvalConfig(EnvOptions):
    """Evaluate a robokit RL checkpoint with the deterministic policy (in --num-envs parallel envs)."""

    checkpoint: Path
    """trainer checkpoint (final.pt or checkpoints/step_*.pt) or a save_agent file"""
    episodes: int = 10
    """evaluation episodes (env reset seeds seed, seed+1, ...)"""
    env: str | None = None
    """env id; defaults to the one stored in the checkpoint"""
    seed: int = 0
    """seed of the first evaluation episode"""
    render_video: Path | None = None
    """write the first episode as a video (.mp4 or .gif); needs MUJOCO_GL=egl headless"""
    stochastic: bool = False
    """sample actions from the policy instead of taking its mean action (episode k's sampling
    stream is seeded with its reset seed, so the numbers do not depend on which worker ran it)"""
    scale: DistributedField = DistributedOptions()

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges(self, positive=("episodes",))
        if self.render_video is not None and self.scale.enabled:
            raise ConfigError("--render-video records in this process; drop --distributed ray to record")
        if self.render_video is not None and self.num_envs > 1:
            raise ConfigError("--render-video records one env; use it with --num-envs 1")
        check_fan_out(self.scale, self.num_envs)


def split_algo(argv: Sequence[str]) -> tuple[str | None, list[str]]:
    """Pull ``--algo NAME`` / ``--algo=NAME`` out of ``argv``."""
    rest, algo = [], None
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == ALGO_FLAG:
            if i + 1 >= len(args):
                raise ConfigError("--algo needs a value")
            algo, i = args[i + 1], i + 2
            continue
        if arg.startswith(ALGO_FLAG + "="):
            algo = arg.split("=", 1)[1]
        else:
            rest.append(arg)
        i += 1
    return algo, rest


def expand_encoder_flags(argv: Sequence[str]) -> list[str]:
    """``--encoder sparse`` -> ``--agent.encoder.pointcloud sparse`` (likewise identity/mlp for vectors,
    cnn for images, pointnet/sparse for point clouds); ``--encoder a,b`` sets several."""
    out, args, i = [], list(argv), 0
    while i < len(args):
        arg = args[i]
        if arg == ENCODER_FLAG or arg.startswith(ENCODER_FLAG + "="):
            if arg == ENCODER_FLAG and i + 1 >= len(args):
                raise ConfigError(f"--encoder needs a value (one of {', '.join(ENCODER_CHOICES)})")
            value = arg.split("=", 1)[1] if "=" in arg else args[i + 1]
            for name in value.split(","):
                if name not in ENCODER_CHOICES:
                    raise ConfigError(f"unknown --encoder '{name}' (one of {', '.join(ENCODER_CHOICES)})")
                out += [f"--agent.encoder.{ENCODER_CHOICES[name]}", name]
            i += 1 if "=" in arg else 2
            continue
        out.append(arg)
        i += 1
    return out


def train_main(argv: Sequence[str]) -> int:
    """Entry point of ``robokit train``."""
    return run_command("robokit train", argv, _train_main)


def _train_main(argv: list[str]) -> int:
    from robokit.algos import ALGOS
    from robokit.core.config import parse
    from robokit.trainers.trainer import config_class_for, train

    algo, rest = split_algo(expand_encoder_flags(argv))
    names = ", ".join(ALGOS.names())
    if algo is None:
        if any(a in ("-h", "--help") for a in rest):
            print(f"usage: robokit train --algo {{{names}}} [options]\n\n"
                  f"Train an RL agent through offline -> warm-up -> online phases.\n"
                  f"`robokit train --algo NAME --help` lists that algorithm's options.")
            return 0
        raise ConfigError(f"--algo is required (one of {names})")
    if algo not in ALGOS:
        raise ConfigError(f"unknown --algo '{algo}' (one of {names})")
    config = parse(config_class_for(algo), rest, prog=f"robokit train --algo {algo}",
                   description=f"Train {algo}: offline -> warm-up -> online, with eval, checkpoints, resume.")
    summary = train(algo, config)
    print_summary(algo, config, summary)
    return 0


def print_summary(algo: str, config, summary: dict) -> None:
    rows = [("algorithm", algo), ("env", config.env), ("seed", config.seed),
            ("offline steps", config.offline_steps), ("online steps", config.online_steps)]
    rows += [(key.replace("_", " "), _fmt(value)) for key, value in summary.items() if value is not None]
    width = max(len(str(k)) for k, _ in rows)
    print("\nrun summary")
    print("\n".join(f"  {str(k):<{width}}  {v}" for k, v in rows))


def _fmt(value) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def eval_main(argv: Sequence[str]) -> int:
    """Entry point of ``robokit eval``."""
    return run_command("robokit eval", argv, _eval_main)


def _eval_main(argv: list[str]) -> int:
    from robokit.core.config import parse

    cfg = parse(EvalConfig, list(argv), prog="robokit eval")
    result = evaluate_checkpoint(cfg.checkpoint, cfg.episodes, cfg.env, cfg.seed, cfg.render_video,
                                 not cfg.stochastic, env_options=cfg, options=cfg.scale)
    width = max(len(k) for k in result)
    print("\n".join(f"  {k:<{width}}  {_fmt(v)}" for k, v in result.items()))
    return 0


def evaluate_checkpoint(checkpoint: Path, episodes: int, env_id: str | None = None, seed: int = 0,
                        video: Path | None = None, deterministic: bool = True,
                        env_options: EnvOptions | None = None, options: DistributedOptions | None = None) -> dict:
    """Load a checkpoint's agent and evaluate it; returns the eval metrics plus the env id.

    ``env_options`` (``--num-envs``, ``--pixels`` ...) say how to build the env(s); with more
    than one env the episodes (same seeds) run in a gymnasium vector env. With one env the
    episodes are independent tasks (episode k: reset seed ``eval_seeds(seed, episodes)[k]`` and,
    when stochastic, the sampling stream seeded with it), fanned out over Ray workers with
    ``options`` and gathered in episode order, so the metrics are the same in one process and on Ray.
    """
    import os

    from robokit.algos import load_agent
    from robokit.core.checkpoint import load_checkpoint
    from robokit.distributed.fanout import fan_out
    from robokit.trainers.evaluation import eval_seeds, evaluate, summarise

    env_options = env_options or EnvOptions()
    check_fan_out(options, env_options.num_envs)
    if video is not None:
        os.environ.setdefault("MUJOCO_GL", "egl")
    agent = load_agent(checkpoint)  # here too on Ray: a bad checkpoint is refused before workers start
    env_id = env_id or load_checkpoint(checkpoint).get("env_id")
    if env_id is None:
        raise ValueError(f"{checkpoint}: no env id stored; pass --env")
    if env_options.num_envs > 1:
        _, env = _eval_state(agent, checkpoint, env_id, env_options, False)
        try:
            metrics = evaluate(agent, env, episodes, seed=seed, deterministic=deterministic)
        finally:
            env.close()  # release the GL context before interpreter shutdown
    else:
        items = [(reset_seed, deterministic, video if k == 0 else None)
                 for k, reset_seed in enumerate(eval_seeds(seed, episodes))]
        on_ray = options is not None and options.enabled
        setup, args = (_eval_setup, (checkpoint, env_id, env_options, False)) if on_ray else \
            (_eval_state, (agent, checkpoint, env_id, env_options, video is not None))
        metrics = summarise(fan_out(setup, args, _eval_episode, items, options, teardown=_eval_teardown))
    return {"env": env_id, "episodes": episodes, **metrics, **({"video": str(video)} if video else {})}


def _eval_setup(checkpoint: Path, env_id: str, env_options: EnvOptions, render: bool) -> tuple:
    """(agent, env) of one evaluation worker."""
    from robokit.algos import load_agent

    return _eval_state(load_agent(checkpoint), checkpoint, env_id, env_options, render)


def _eval_state(agent, checkpoint: Path, env_id: str, env_options: EnvOptions, render: bool) -> tuple:
    """(agent, env): the env (a vector env with ``--num-envs > 1``) made for ``env_id`` and checked
    against the agent's observations."""
    from robokit.envs import make_env
    from robokit.envs.vector import env_maker, make_vector_env
    from robokit.nets.obs_spec import spec_from_space

    pixels = env_options.pixel_options()
    if env_options.num_envs > 1:
        env = make_vector_env(env_maker(env_id, pixels=pixels), env_options.num_envs, env_options.vector)
        space = env.single_observation_space
    else:
        env = make_env(env_id, render_mode="rgb_array" if render else None, pixels=pixels)
        space = env.observation_space
    env_spec = spec_from_space(space, key=f"env '{env_id}' observations")
    if env_spec != agent.obs_spec:
        env.close()
        raise ValueError(f"{checkpoint}: agent expects observations {agent.obs_spec}, env '{env_id}' gives {env_spec}")
    return agent, env


def _eval_episode(state: tuple, item: tuple) -> dict[str, float]:
    """One evaluation episode; ``item`` is (reset seed, deterministic, video path or None)."""
    from robokit.trainers.evaluation import evaluate_episode, write_video

    (agent, env), (reset_seed, deterministic, video) = state, item
    if not deterministic:
        agent.generator.manual_seed(reset_seed)
    frames: list | None = [] if video is not None else None
    result = evaluate_episode(agent, env, reset_seed, deterministic, frames)
    if frames:
        write_video(video, frames, fps=int(env.metadata.get("render_fps", 30)))
    return result


def _eval_teardown(state: tuple) -> None:
    state[1].close()  # release the GL context before interpreter shutdown
