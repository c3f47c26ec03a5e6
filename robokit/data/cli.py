"""``robokit collect`` and ``robokit dataset {info,convert}``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import tyro

from robokit.core.cli_errors import run_command
from robokit.core.config import check_ranges
from robokit.distributed.options import DistributedField, DistributedOptions, check_fan_out
from robokit.envs.options import EnvOptions

FormatName = Literal["minari", "d4rl", "robomimic", "replay"]


@dataclass(frozen=True)
class CollectConfig(EnvOptions):
    """Roll out a policy in gymnasium envs and write the episodes as a Minari dataset (a directory),
    or in robokit's replay format (a .npz path; needed for point-cloud observations)."""

    env: str = "Hopper-v5"
    """gymnasium env id (robokit/* ids are registered automatically)."""
    out: Path = Path("runs/collect/dataset-v0")
    """dataset directory to create (name it like 'name-v0' to load it with minari.load_dataset),
    or a .npz file (robokit replay format, which also stores point clouds)."""
    policy: Literal["random", "checkpoint"] = "random"
    """'random' (uniform actions) or 'checkpoint' (a robokit RL checkpoint, see --checkpoint)."""
    checkpoint: Path | None = None
    """checkpoint file for --policy checkpoint."""
    episodes: int = 10
    """number of episodes."""
    seed: int = 0
    """env reset seeds are seed, seed+1, ...; the action space is seeded with seed."""
    max_steps: int | None = None
    """cap on episode length (marked truncated); default: the env's own time limit."""
    stochastic: bool = False
    """sample checkpoint actions instead of taking the deterministic (mean) action."""
    overwrite: bool = False
    """replace --out if it exists (only after the new dataset is complete)."""
    scale: DistributedField = DistributedOptions()

    def __post_init__(self) -> None:
        super().__post_init__()
        check_ranges(self, positive=("episodes", "max_steps"))
        check_fan_out(self.scale, self.num_envs)


@dataclass(frozen=True)
class InfoConfig:
    """Print a summary of a dataset (Minari dir, D4RL/robomimic HDF5 or robokit replay .npz)."""

    path: Annotated[Path, tyro.conf.Positional]
    """dataset to inspect."""
    format: FormatName | None = None
    """force a format instead of detecting it."""
    json: Path | None = None
    """also write the summary as JSON to this file."""


@dataclass(frozen=True)
class ConvertConfig:
    """Convert a dataset between Minari, D4RL-style HDF5, robomimic HDF5 and robokit replay (.npz)."""

    src: Annotated[Path, tyro.conf.Positional]
    """source dataset."""
    dst: Annotated[Path, tyro.conf.Positional]
    """destination: a directory (Minari), .hdf5 (D4RL unless --to robomimic) or .npz (replay)."""
    to: FormatName | None = None
    """destination format (default: from dst's suffix)."""
    from_format: FormatName | None = None
    """source format (default: detected)."""
    env_id: str | None = None
    """env id to record in the destination (Minari stores its spec)."""
    overwrite: bool = False
    """replace dst if it exists."""


def collect_main(argv: Sequence[str]) -> int:
    """Entry point of ``robokit collect``."""
    return run_command("robokit collect", argv, _collect)


def _collect(argv: list[str]) -> int:
    from robokit.core.config import parse
    from robokit.data.collect import collect_episodes, has_point_clouds

    cfg = parse(CollectConfig, argv, prog="robokit collect")
    if cfg.out.exists() and not cfg.overwrite:
        raise FileExistsError(f"--out {cfg.out} already exists; pass --overwrite to replace it")
    if cfg.out.suffix not in ("", ".npz"):
        raise ValueError(f"--out {cfg.out}: give a directory (Minari) or a .npz file (robokit replay)")
    if cfg.out.suffix != ".npz" and has_point_clouds(cfg.env, cfg.pixel_options()):
        raise ValueError(f"--out {cfg.out}: env '{cfg.env}' observes point clouds of varying size, which Minari "
                         f"cannot store; give --out a .npz path (robokit replay format)")
    episodes = collect_episodes(cfg.env, cfg.episodes, cfg.seed, cfg.policy,
                                str(cfg.checkpoint) if cfg.checkpoint else None, cfg.max_steps,
                                deterministic=not cfg.stochastic, num_envs=cfg.num_envs, vector=cfg.vector,
                                pixels=cfg.pixel_options(), options=cfg.scale)
    _write_collected(cfg, episodes)
    return 0


def _write_collected(cfg: CollectConfig, episodes: list) -> None:
    """Write ``episodes`` to ``cfg.out`` (Minari directory or replay .npz) with config.yaml beside it."""
    from robokit.core.config import save_config
    from robokit.data.formats import episodes_to_buffer
    from robokit.data.formats.minari_format import save_minari
    from robokit.data.summary import format_table, summarize_episodes

    if cfg.out.suffix == ".npz":
        out = episodes_to_buffer(episodes).save(cfg.out)
        save_config(cfg, out.parent, name=f"{out.stem}.config.yaml")
        kind = "robokit replay file"
    else:
        # pixels rendered on request are not the registered env's observations: spaces come from the data
        out = save_minari(episodes, cfg.out, env_id=None if cfg.pixels else cfg.env,
                          algorithm_name=f"robokit-collect-{cfg.policy}", overwrite=cfg.overwrite)
        save_config(cfg, out)  # config.yaml beside the data: the resolved options of this run
        kind = "Minari dataset"
    print(format_table(summarize_episodes(episodes), f"wrote {kind} {out}"))


def dataset_main(argv: Sequence[str]) -> int:
    """Entry point of ``robokit dataset {info,convert}``."""
    return run_command("robokit dataset", argv, _dataset)


def _dataset(argv: list[str]) -> int:
    cfg = tyro.extras.subcommand_cli_from_dict({"info": InfoConfig, "convert": ConvertConfig},
                                               prog="robokit dataset", args=argv,
                                               description="inspect or convert datasets")
    return _info(cfg) if isinstance(cfg, InfoConfig) else _convert(cfg)


def _info(cfg: InfoConfig) -> int:
    from robokit.data.formats import detect_format, load_episodes
    from robokit.data.summary import format_table, summarize_episodes

    fmt = cfg.format or detect_format(cfg.path)
    episodes = load_episodes(cfg.path, fmt)
    rows = {"format": fmt, **summarize_episodes(episodes)}
    if fmt == "minari":
        rows.update(_minari_metadata(cfg.path))
    print(format_table(rows, str(cfg.path)))
    if cfg.json is not None:
        import json

        from robokit.core.atomic import atomic_write_text

        atomic_write_text(cfg.json, json.dumps({"path": str(cfg.path), **rows}, indent=2))
    return 0


def _minari_metadata(path: Path) -> dict[str, str]:
    import json

    from robokit.data.formats.minari_format import minari_data_dir

    data_dir = minari_data_dir(path)
    meta = json.loads((data_dir / "metadata.json").read_text()) if data_dir else {}
    env_spec = json.loads(meta["env_spec"]).get("id") if isinstance(meta.get("env_spec"), str) else None
    return {"dataset_id": meta.get("dataset_id", "?"), "env": env_spec or "-",
            "minari_version": meta.get("minari_version", "?")}


def _convert(cfg: ConvertConfig) -> int:
    from robokit.data.formats import convert, detect_format, format_for_output

    src_fmt = cfg.from_format or detect_format(cfg.src)
    dst_fmt = format_for_output(cfg.dst, cfg.to)
    out, n_episodes, n_steps = convert(cfg.src, cfg.dst, src_fmt, dst_fmt, env_id=cfg.env_id,
                                       overwrite=cfg.overwrite)
    print(f"converted {cfg.src} ({src_fmt}) -> {out} ({dst_fmt}): {n_episodes} episodes, {n_steps} transitions")
    return 0
