"""``robokit ros``: bag-to-dataset, bag-to-clouds, dataset-to-bag, run (live policy node).

Bad input (a missing bag, topic or key, a type mismatch, a non-empty --out) is one line on
stderr naming it, exit code 2, nothing written; ``--debug`` shows the traceback instead."""

from __future__ import annotations

import logging
import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import tyro

from robokit.core.cli_errors import run_command
from robokit.core.config import check_ranges

PROG = "robokit ros"


@dataclass(frozen=True)
class BagToDataset:
    """Read a ROS 1 or ROS 2 bag into episodes and write a dataset (Minari, D4RL HDF5 or .npz)."""

    bag: tyro.conf.Positional[Path]
    """ROS 1 .bag file or ROS 2 bag folder (sqlite3 or mcap)."""
    out: Path
    """Output dataset: a folder (Minari), NAME.hdf5 (D4RL layout) or NAME.npz (robokit replay
    format, the one that stores point-cloud observations)."""
    config: Path | None = None
    """Topic/sync YAML; default: robokit_bag_config.yaml inside the bag (written by dataset-to-bag)."""


@dataclass(frozen=True)
class BagToClouds:
    """Write each scan of a LiDAR topic (PointCloud2 or LaserScan) to its own point-cloud file
    (x, y, z, intensity float32), readable by robokit.pointcloud.io.read_point_cloud."""

    bag: tyro.conf.Positional[Path]
    """ROS 1 .bag file or ROS 2 bag folder (sqlite3 or mcap)."""
    topic: str
    """The LiDAR topic, e.g. /velodyne_points."""
    out: Path
    """Output folder: 000000.EXT, 000001.EXT, ... and stamps.csv."""
    format: Literal["kitti", "pcd", "npz"] = "kitti"
    """kitti: .bin (KITTI velodyne layout); pcd: binary PCD v0.7; npz: points (N, 4) + stamp_ns."""
    intensity_scale: float = 1.0
    """Multiply intensities by this (1/255 maps 8-bit intensities to KITTI's [0, 1] reflectance)."""
    overwrite: bool = False
    """Replace a non-empty --out folder (only once the new one is complete)."""
    progress: bool = True
    """Show a progress bar."""


@dataclass(frozen=True)
class DatasetToBag:
    """Write a robokit dataset (any format robokit.data.load_episodes reads) to a ROS 2 bag."""

    dataset: tyro.conf.Positional[Path]
    """Dataset folder or file."""
    out: Path
    """New bag folder (must not exist)."""
    storage: Literal["mcap", "sqlite3"] = "mcap"
    """ROS 2 bag storage plugin."""
    rate_hz: float = 10.0
    """Step rate used for the message stamps."""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("rate_hz",))


@dataclass(frozen=True)
class Run:
    """Run a policy live: subscribe to observations, publish safety-filtered commands."""

    config: Path
    """Runner YAML (topics, rate, safety limits); see docs/ros.md."""
    checkpoint: Path | None = None
    """robokit RL checkpoint (robokit.algos.load_agent)."""
    policy: str | None = None
    """Alternative to --checkpoint: 'module:callable' returning an object with act(obs)."""
    transport: Literal["ros1", "rosbridge", "ros2"] = "ros1"
    """How to reach ROS: rospy (ros1), rclpy (ros2), or a rosbridge websocket (--host, --port)."""
    duration_s: float | None = None
    """Stop after this many seconds (default: until shutdown / Ctrl-C)."""
    host: str = "127.0.0.1"
    """rosbridge host."""
    port: int = 9090
    """rosbridge port."""
    ros_version: Annotated[int, tyro.conf.arg(help="ROS version behind rosbridge (1 or 2).")] = 1
    node_name: str = "robokit_policy"
    """ROS node name (ros1 and ros2 transports)."""
    log_dir: Path | None = None
    """Where to write interventions.jsonl and summary.json."""
    torch_threads: int = 1
    """torch intra-op threads; 1 keeps a small policy's latency steady beside the ROS threads."""

    def __post_init__(self) -> None:
        check_ranges(self, positive=("duration_s", "port", "torch_threads"))


def _bag_to_dataset(cfg: BagToDataset) -> int:
    from robokit.ros.bags import load_bag_config, read_bag

    config = load_bag_config(cfg.config) if cfg.config else None
    episodes, report = read_bag(cfg.bag, config)
    for line in report.lines():
        print(line)
    if not episodes:
        raise ValueError(f"{cfg.bag}: no complete episode")
    if any(e.is_ragged for e in episodes) and cfg.out.suffix != ".npz":
        raise ValueError(f"{cfg.bag}: point-cloud episodes need the robokit replay format: --out "
                         f"{cfg.out.with_suffix('.npz')} (Minari and D4RL store fixed-shape arrays)")
    from robokit.data.formats import save_episodes

    path = save_episodes(episodes, cfg.out)
    print(f"wrote {len(episodes)} episode(s), {sum(len(e) for e in episodes)} steps -> {path}")
    return 0


def _bag_to_clouds(cfg: BagToClouds) -> int:
    from robokit.ros.bag_clouds import bag_to_clouds

    result = bag_to_clouds(cfg.bag, cfg.topic, cfg.out, cfg.format, cfg.intensity_scale,
                           cfg.overwrite, cfg.progress)
    rate = result.written / result.seconds if result.seconds > 0 else float("inf")
    print(f"wrote {result.written} scan(s), {result.points} points -> {result.out} ({cfg.format}, "
          f"{result.seconds:.2f} s, {rate:.1f} scans/s)"
          + (f"; skipped {result.empty} scan(s) without a valid point" if result.empty else ""))
    return 0


def _dataset_to_bag(cfg: DatasetToBag) -> int:
    from robokit.data import load_episodes
    from robokit.ros.bags import write_bag

    episodes = load_episodes(cfg.dataset)
    path = write_bag(episodes, cfg.out, storage=cfg.storage, rate_hz=cfg.rate_hz)
    print(f"wrote {len(episodes)} episode(s), {sum(len(e) for e in episodes)} steps -> {path} "
          f"({cfg.storage})")
    return 0


def _run(cfg: Run) -> int:
    from robokit.ros.config import load_runner_config
    from robokit.ros.policies import load_policy
    from robokit.ros.runner import PolicyRunner, write_summary
    from robokit.ros.transport import make_transport

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    config = load_runner_config(cfg.config)
    import torch

    torch.set_num_threads(cfg.torch_threads)
    policy = load_policy(str(cfg.checkpoint) if cfg.checkpoint else None, cfg.policy)
    options: dict = {"ros1": {"node_name": cfg.node_name},
                     "rosbridge": {"host": cfg.host, "port": cfg.port, "ros_version": cfg.ros_version},
                     "ros2": {"node_name": cfg.node_name}}[cfg.transport]
    transport = make_transport(cfg.transport, **options)
    log_path = None
    if cfg.log_dir is not None:
        cfg.log_dir.mkdir(parents=True, exist_ok=True)
        log_path = cfg.log_dir / "interventions.jsonl"
    runner = PolicyRunner(policy, transport, config, log_path)
    print(f"running policy at {config.rate_hz:g} Hz ({config.trigger}) on {cfg.transport}; "
          f"commands -> {config.command.topic}", flush=True)
    _stop_on_signals(runner)
    try:
        summary = runner.run(cfg.duration_s)
    except KeyboardInterrupt:
        summary = runner.summary()
    finally:
        runner.close()
        transport.close()
    _print_summary(summary)
    if cfg.log_dir is not None:
        write_summary(summary, cfg.log_dir / "summary.json")
    return 0


def _stop_on_signals(runner: Any) -> None:
    """Stop the runner cleanly on SIGINT (Ctrl-C, roslaunch) and SIGTERM (supervisors).

    Installed explicitly because a process started with SIGINT ignored (a background job
    of a non-interactive shell, some supervisors) never gets Python's KeyboardInterrupt:
    without this, such a node could not be stopped gracefully, and its final stop
    command and summary would not be written.
    """
    def request_stop(signum: int, frame: Any) -> None:
        runner.stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, request_stop)


def _print_summary(summary: dict) -> None:
    print(f"commands sent {summary['commands_sent']}, policy steps {summary['policy_steps']}, "
          f"e-stop {'LATCHED' if summary['estop'] else 'off'}")
    counts = summary["counts"]
    if counts:
        width = max(len(k) for k in counts)
        print("safety interventions:")
        for key in sorted(counts):
            print(f"  {key:<{width}}  {counts[key]:>7}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``robokit ros``."""
    return run_command(PROG, argv, _main)


def _main(args: list[str]) -> int:
    commands = {"bag-to-dataset": BagToDataset, "bag-to-clouds": BagToClouds,
                "dataset-to-bag": DatasetToBag, "run": Run}
    cfg = tyro.extras.subcommand_cli_from_dict(
        commands, args=args, prog=PROG,
        description="ROS bridge: bags <-> datasets, bags -> point-cloud files, live policy node with a safety layer.")
    handlers = {BagToDataset: _bag_to_dataset, BagToClouds: _bag_to_clouds,
                DatasetToBag: _dataset_to_bag, Run: _run}
    return handlers[type(cfg)](cfg)
