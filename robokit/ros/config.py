"""Typed configs of the live runner and the bag reader, parsed from YAML with clear errors.

Every error is a :class:`ConfigError` naming the file (or ``source``) and the key, e.g.
``runner.yaml: observations[0]: unknown key(s) ['topik']``. :func:`decode_observation`
turns a message of a configured observation type into the float32 array a policy or an
episode receives.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from robokit.ros import convert
from robokit.ros.safety import SafetyLimits

#: observation type -> ROS 2 message type
OBSERVATION_TYPES = {
    "pointcloud2": "sensor_msgs/msg/PointCloud2",
    "joint_state": "sensor_msgs/msg/JointState",
    "float32_array": "std_msgs/msg/Float32MultiArray",
    "twist": "geometry_msgs/msg/Twist",
    "pose_stamped": "geometry_msgs/msg/PoseStamped",
    "image": "sensor_msgs/msg/Image",
}
#: command type -> ROS 2 message type
COMMAND_TYPES = {
    "twist": "geometry_msgs/msg/Twist",
    "twist_stamped": "geometry_msgs/msg/TwistStamped",
    "joint_state": "sensor_msgs/msg/JointState",
}
TWIST_AXES = ("vx", "vy", "vz", "wx", "wy", "wz")


class ConfigError(ValueError):
    """A runner config problem; the text names the file and key."""


@dataclass(frozen=True)
class ObservationSpec:
    key: str
    topic: str
    type: str
    fields: tuple[str, ...] = ("x", "y", "z")   # pointcloud2 columns
    min_points: int = 1                          # pointcloud2: fewer valid points -> dropped
    joints: tuple[str, ...] = ()                 # joint_state: names, in order
    parts: tuple[str, ...] = ("position",)       # joint_state: position/velocity/effort
    size: int | None = None                      # vector observations: required length
    axes: tuple[str, ...] = ()                   # twist: components to keep (default all six)

    @property
    def msgtype(self) -> str:
        return OBSERVATION_TYPES[self.type]


@dataclass(frozen=True)
class CommandSpec:
    topic: str
    type: str = "twist"
    axes: tuple[str, ...] = TWIST_AXES   # twist: which component each action element drives
    joints: tuple[str, ...] = ()         # joint_state: joint names (position targets)
    frame_id: str = ""

    @property
    def msgtype(self) -> str:
        return COMMAND_TYPES[self.type]

    @property
    def kind(self) -> str:
        return "joint_position" if self.type == "joint_state" else "twist"


@dataclass(frozen=True)
class RunnerConfig:
    observations: tuple[ObservationSpec, ...]
    command: CommandSpec
    rate_hz: float = 20.0
    trigger: str = "timer"
    estop_topic: str | None = "/robokit/estop"
    estop_reset_topic: str | None = None
    safety: SafetyLimits = field(default_factory=SafetyLimits)


def build_section(cls: type, data: Any, where: str) -> Any:
    """``cls(**data)`` for one YAML section; unknown keys and bad values raise ConfigError naming ``where``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__}")
    known = set(cls.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
    try:
        return cls(**values)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where}: {err}") from err


def parse_runner_config(data: dict[str, Any], source: str = "config") -> RunnerConfig:
    """RunnerConfig from plain data (a parsed YAML file); errors name ``source`` and the key."""
    data = dict(check_top_level(data, ("observations", "command"), source))
    observations = parse_observations(data.pop("observations"), source)
    command = build_section(CommandSpec, data.pop("command"), f"{source}: command")
    safety = build_section(SafetyLimits, data.pop("safety", {}) or {}, f"{source}: safety")
    config = build_section(RunnerConfig, {**data, "observations": [], "command": None}, source)
    config = RunnerConfig(observations=observations, command=command, safety=safety,
                          rate_hz=float(config.rate_hz), trigger=config.trigger,
                          estop_topic=config.estop_topic, estop_reset_topic=config.estop_reset_topic)
    _validate(config, source)
    return config


def _validate(config: RunnerConfig, source: str) -> None:
    for i, spec in enumerate(config.observations):
        if spec.type not in OBSERVATION_TYPES:
            raise ConfigError(f"{source}: observations[{i}].type '{spec.type}' not in {sorted(OBSERVATION_TYPES)}")
    if len({s.key for s in config.observations}) != len(config.observations):
        raise ConfigError(f"{source}: observation keys must be unique")
    command = config.command
    if command.type not in COMMAND_TYPES:
        raise ConfigError(f"{source}: command.type '{command.type}' not in {sorted(COMMAND_TYPES)}")
    bad_axes = [a for a in command.axes if a not in TWIST_AXES]
    if bad_axes:
        raise ConfigError(f"{source}: command.axes {bad_axes} not in {TWIST_AXES}")
    if command.type == "joint_state" and len(config.safety.joint_position_min) != len(command.joints):
        raise ConfigError(f"{source}: joint commands need safety.joint_position_min/max for all "
                          f"{len(command.joints)} joints")
    if not (config.rate_hz > 0 and np.isfinite(config.rate_hz)):
        raise ConfigError(f"{source}: rate_hz must be positive, got {config.rate_hz}")
    if config.trigger not in ("timer", "observation"):
        raise ConfigError(f"{source}: trigger must be 'timer' or 'observation', got {config.trigger!r}")


def load_runner_config(path: str | Path) -> RunnerConfig:
    """Read and validate a runner YAML file."""
    return parse_runner_config(read_yaml(path, "runner config"), str(path))


def read_yaml(path: str | Path, what: str) -> Any:
    """Parsed YAML of ``path``; unreadable or malformed files raise ConfigError naming it."""
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: cannot read {what}: {err}") from err


def check_top_level(data: Any, required: tuple[str, ...], source: str) -> dict[str, Any]:
    """``data`` if it is a mapping holding every ``required`` key, else ConfigError."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping")
    for key in required:
        if key not in data:
            raise ConfigError(f"{source}: missing key '{key}'")
    return data


def parse_observations(items: Any, source: str) -> tuple[ObservationSpec, ...]:
    """The ``observations`` list of a runner or bag config."""
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{source}: 'observations' must be a non-empty list")
    return tuple(build_section(ObservationSpec, spec, f"{source}: observations[{i}]")
                 for i, spec in enumerate(items))


# ---------------------------------------------------------------------------------------------


def decode_observation(spec: ObservationSpec, msg: Any) -> np.ndarray:
    """Message -> float32 array: (N, C) points for clouds, (O,) vectors otherwise."""
    if spec.type == "pointcloud2":
        return convert.pointcloud2_to_points(msg, spec.fields, remove_invalid=True)
    if spec.type == "joint_state":
        arrays = convert.joint_state_to_arrays(msg, spec.joints or None)
        return np.concatenate([arrays[p] for p in spec.parts]).astype(np.float32)
    if spec.type == "float32_array":
        return convert.multiarray_to_array(msg)
    if spec.type == "twist":
        twist = convert.twist_to_array(msg).astype(np.float32)
        return twist[[TWIST_AXES.index(a) for a in spec.axes]] if spec.axes else twist
    if spec.type == "pose_stamped":
        return convert.pose_to_array(msg).astype(np.float32)
    return convert.image_to_array(msg).astype(np.float32)


def expected_size(spec: ObservationSpec) -> int | None:
    """Required length of a vector observation (None: any length)."""
    if spec.size is not None:
        return spec.size
    if spec.type == "joint_state" and spec.joints:
        return len(spec.joints) * len(spec.parts)
    if spec.type == "twist":
        return len(spec.axes) or 6
    return {"pose_stamped": 7}.get(spec.type)
