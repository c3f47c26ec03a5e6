"""Typed configs of the live runner and the bag reader, parsed from YAML with clear errors.

Every error is a :class:`ConfigError` naming the file (or ``source``) and the key, e.g.
``runner.yaml: observations[0]: unknown key(s) ['topik']``. :func:`decode_observation`
turns a message of a configured observation type into the float32 array a policy or an
episode receives.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from robokit.ros import convert
from robokit.ros.messages import ros2_type_name
from robokit.ros.safety import SafetyLimits

#: observation type -> ROS 2 message type. A config may name a type by this short name or by
#: its ROS name in either spelling (``nav_msgs/msg/Odometry`` or ``nav_msgs/Odometry``).
OBSERVATION_TYPES = {
    "pointcloud2": "sensor_msgs/msg/PointCloud2",
    "joint_state": "sensor_msgs/msg/JointState",
    "float32_array": "std_msgs/msg/Float32MultiArray",
    "float64_array": "std_msgs/msg/Float64MultiArray",
    "twist": "geometry_msgs/msg/Twist",
    "twist_stamped": "geometry_msgs/msg/TwistStamped",
    "pose_stamped": "geometry_msgs/msg/PoseStamped",
    "image": "sensor_msgs/msg/Image",
    "compressed_image": "sensor_msgs/msg/CompressedImage",
    "odometry": "nav_msgs/msg/Odometry",
    "imu": "sensor_msgs/msg/Imu",
    "laser_scan": "sensor_msgs/msg/LaserScan",
    "navsat_fix": "sensor_msgs/msg/NavSatFix",
    "tf": "tf2_msgs/msg/TFMessage",
}
#: the observation types the live runner subscribes to (the ones its transports are tested with)
LIVE_OBSERVATION_TYPES = ("pointcloud2", "joint_state", "float32_array", "twist", "pose_stamped", "image")
#: observation types whose value is not a vector, so they cannot be an action
NON_VECTOR_TYPES = ("pointcloud2", "image", "compressed_image")
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
    frame: str = ""                              # tf: child_frame_id of the transform to read
    parent: str = ""                             # tf: its parent frame_id (default: any)
    paths: tuple[str, ...] = ()                  # any type: dotted numeric fields to read instead

    @property
    def msgtype(self) -> str:
        """ROS 2 type name; a custom type (one not in OBSERVATION_TYPES) is its own name."""
        return OBSERVATION_TYPES.get(self.type, self.type)


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
        if spec.type not in LIVE_OBSERVATION_TYPES or spec.paths:
            raise ConfigError(f"{source}: observations[{i}].type '{spec.type}': the live runner reads "
                              f"{list(LIVE_OBSERVATION_TYPES)} (without paths)")
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
    return tuple(parse_spec(spec, f"{source}: observations[{i}]") for i, spec in enumerate(items))


def parse_spec(data: Any, where: str) -> ObservationSpec:
    """One topic section: an ObservationSpec whose ``type`` is resolved by :func:`resolve_type`."""
    spec = build_section(ObservationSpec, data, where)
    kind = resolve_type(spec.type, OBSERVATION_TYPES, f"{where}: type", custom_ok=True)
    if kind not in OBSERVATION_TYPES and not spec.paths:
        raise ConfigError(f"{where}: type '{spec.type}' is not one robokit decodes; name its numeric "
                          f"fields with paths: [field.sub, ...] or use one of {sorted(OBSERVATION_TYPES)}")
    if kind == "tf" and not spec.frame and not spec.paths:
        raise ConfigError(f"{where}: type tf needs frame: CHILD_FRAME_ID (the transform to read)")
    return dataclasses.replace(spec, type=kind)


def resolve_type(name: Any, table: dict[str, str], where: str, custom_ok: bool = False) -> str:
    """The short name in ``table`` for ``name``, given as a short name or a ROS type name
    (``pkg/msg/Name`` or ``pkg/Name``). With ``custom_ok`` a ROS name not in ``table`` is
    returned in its ROS 2 spelling (a custom type, read through ``paths``)."""
    if isinstance(name, str) and name in table:
        return name
    parts = name.split("/") if isinstance(name, str) else []
    if len(parts) in (2, 3) and all(parts) and (len(parts) == 2 or parts[1] == "msg"):
        msgtype = ros2_type_name(name)
        short = next((k for k, v in table.items() if v == msgtype), None)
        if short is not None or custom_ok:
            return short or msgtype
    raise ConfigError(f"{where} '{name}' not in {sorted(table)} (or their ROS names, e.g. "
                      f"{next(iter(table.values()))})")


def short_type_name(msgtype: str) -> str:
    """The config's short name for a bag's ROS 2 type name, or the type name itself."""
    return next((k for k, v in OBSERVATION_TYPES.items() if v == msgtype), msgtype)


# ---------------------------------------------------------------------------------------------


def _twist(spec: ObservationSpec, msg: Any) -> np.ndarray:
    twist = convert.twist_to_array(msg).astype(np.float32)
    return twist[[TWIST_AXES.index(a) for a in spec.axes]] if spec.axes else twist


def _joint_state(spec: ObservationSpec, msg: Any) -> np.ndarray:
    arrays = convert.joint_state_to_arrays(msg, spec.joints or None)
    return np.concatenate([arrays[p] for p in spec.parts]).astype(np.float32)


def _tf_pose(spec: ObservationSpec, msg: Any) -> np.ndarray | None:
    transform = convert.find_transform(msg, spec.frame, spec.parent)
    return None if transform is None else convert.transform_to_array(transform).astype(np.float32)


_DECODERS: dict[str, Any] = {
    "pointcloud2": lambda spec, msg: convert.pointcloud2_to_points(msg, spec.fields, remove_invalid=True),
    "joint_state": _joint_state,
    "float32_array": lambda spec, msg: convert.multiarray_to_array(msg),
    "float64_array": lambda spec, msg: convert.multiarray_to_array(msg),
    "twist": _twist,
    "twist_stamped": _twist,
    "pose_stamped": lambda spec, msg: convert.pose_to_array(msg).astype(np.float32),
    "image": lambda spec, msg: convert.image_to_array(msg).astype(np.float32),
    "compressed_image": lambda spec, msg: convert.compressed_image_to_array(msg).astype(np.float32),
    "odometry": lambda spec, msg: convert.odometry_to_array(msg).astype(np.float32),
    "imu": lambda spec, msg: convert.imu_to_array(msg).astype(np.float32),
    "laser_scan": lambda spec, msg: convert.laser_scan_to_ranges(msg),
    "navsat_fix": lambda spec, msg: convert.navsat_fix_to_array(msg).astype(np.float32),
    "tf": _tf_pose,
}


def decode_observation(spec: ObservationSpec, msg: Any) -> np.ndarray | None:
    """Message -> float32 array: (N, C) points for clouds, (H, W[, 3]) images, (O,) vectors
    otherwise (the layout of each type is in docs/ros.md). None when the message holds nothing
    for ``spec`` (a tf message without the configured frame)."""
    if spec.paths:
        return convert.fields_to_array(msg, spec.paths)
    return _DECODERS[spec.type](spec, msg)


def observation_stamp_ns(spec: ObservationSpec, msg: Any) -> int | None:
    """The header stamp that dates ``msg`` for ``spec`` (a tf frame: its transform's), or None."""
    if spec.type == "tf" and not spec.paths:
        transform = convert.find_transform(msg, spec.frame, spec.parent)
        return None if transform is None else convert.header_stamp_ns(transform)
    return convert.header_stamp_ns(msg)


def expected_size(spec: ObservationSpec) -> int | None:
    """Required length of a vector observation (None: any length)."""
    if spec.size is not None:
        return spec.size
    if spec.type == "joint_state" and spec.joints:
        return len(spec.joints) * len(spec.parts)
    if spec.type in ("twist", "twist_stamped"):
        return len(spec.axes) or 6
    return {"pose_stamped": 7, "odometry": 13, "imu": 10, "navsat_fix": 3, "tf": 7}.get(spec.type)
