"""ROS bags <-> robokit episodes.

Reading (:func:`read_bag`): ROS 1 ``.bag`` files and ROS 2 bag folders (sqlite3 or mcap),
opened by :class:`robokit.ros.bagfile.BagFile` (the bag's own message definitions, old ROS 1
definitions, libmcap metadata). A small YAML config (:class:`BagConfig`) names the topics that
make the observation, action (optional: without one, an observation-only dataset with actions
of shape (T, 0)), reward and end flags; each configured type is checked against the bag's. Messages are put on a time grid at ``rate_hz``:
each grid tick takes, per topic, the message whose stamp is nearest, if it lies within
``tolerance_ms``. Nothing is interpolated or carried forward: a tick where a topic has no
message within tolerance ends the current episode, and the gap is listed in the
:class:`SyncReport`, as are stamps that go backwards within a topic.

Writing (:func:`write_bag`): episodes (vector, dict or point-cloud observations) go to a
ROS 2 bag (``mcap`` or ``sqlite3``) with standard message types, and a
``robokit_bag_config.yaml`` inside the bag folder lets :func:`read_bag` read it back
without further configuration. Default topics (``/robokit/...``):

========================  ===============================  ==============================
topic                     type                             content
========================  ===============================  ==============================
observation[/KEY]         std_msgs/Float32MultiArray       vector observation(s)
points                    sensor_msgs/PointCloud2          point-cloud observation (x,y,z,...)
action                    std_msgs/Float32MultiArray       action (A,)
reward                    std_msgs/Float32                 reward
terminated / truncated    std_msgs/Bool                    end flags (at every step)
episode                   std_msgs/UInt32                  episode index (at every tick)
========================  ===============================  ==============================

Step ``t`` of episode ``e`` is stamped ``start + (tick) / rate_hz`` where ticks run on
through the episode's final observation, with ``gap_ticks`` empty ticks between episodes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from robokit.ros import convert
from robokit.ros import messages as m
from robokit.ros.bagfile import BagError, BagFile
from robokit.ros.config import (
    NON_VECTOR_TYPES,
    ConfigError,
    ObservationSpec,
    build_section,
    check_top_level,
    decode_observation,
    observation_stamp_ns,
    parse_observations,
    parse_spec,
    read_yaml,
    resolve_type,
    short_type_name,
)

BAG_CONFIG_NAME = "robokit_bag_config.yaml"
#: rosbag2 metadata version written: 8 is read by ROS 2 Iron and newer (rosbags writes 8 or 9)
ROSBAG2_VERSION = 8
SCALAR_TYPES = {"float32": "std_msgs/msg/Float32", "float64": "std_msgs/msg/Float64",
                "bool": "std_msgs/msg/Bool", "uint32": "std_msgs/msg/UInt32",
                "int32": "std_msgs/msg/Int32"}
__all__ = ["BagConfig", "BagError", "ScalarSpec", "SyncReport", "parse_bag_config", "load_bag_config",
           "read_bag", "write_bag", "default_bag_config"]


@dataclass(frozen=True)
class ScalarSpec:
    """A topic carrying one number per message (reward, end flag, episode index)."""

    topic: str
    type: str = "float32"

    @property
    def msgtype(self) -> str:
        return SCALAR_TYPES[self.type]


@dataclass(frozen=True)
class BagConfig:
    """Which topics make an episode, and how to synchronise them.

    Attributes:
        observations: observation topics (same fields as the live runner's).
        action: the action topic (any vector type), or None for an observation-only dataset
            (actions of shape (T, 0); the report says so).
        reward, terminated, truncated, episode: optional scalar topics. Without a reward
            topic rewards are 0 (and the report says so).
        rate_hz: grid rate. tolerance_ms: largest |stamp - tick| accepted.
        time_source: ``header`` (header stamp when the message has one, else the bag's
            log time) or ``log`` (always the log time).
    """

    observations: tuple[ObservationSpec, ...]
    action: ObservationSpec | None = None
    reward: ScalarSpec | None = None
    terminated: ScalarSpec | None = None
    truncated: ScalarSpec | None = None
    episode: ScalarSpec | None = None
    rate_hz: float = 10.0
    tolerance_ms: float = 20.0
    time_source: str = "header"

    def topics(self) -> dict[str, tuple[str, Any]]:
        """role -> (topic, spec) for every configured topic."""
        roles: dict[str, tuple[str, Any]] = {f"obs:{s.key}": (s.topic, s) for s in self.observations}
        if self.action is not None:
            roles["action"] = (self.action.topic, self.action)
        for name in ("reward", "terminated", "truncated", "episode"):
            spec = getattr(self, name)
            if spec is not None:
                roles[name] = (spec.topic, spec)
        return roles


def parse_bag_config(data: Any, source: str = "bag config") -> BagConfig:
    """BagConfig from parsed YAML; errors name ``source`` and the key."""
    data = dict(check_top_level(data, ("observations",), source))
    observations = parse_observations(data.pop("observations"), source)
    action_data = data.pop("action", None)
    if action_data is not None and not isinstance(action_data, dict):
        raise ConfigError(f"{source}: action: expected a mapping, got {type(action_data).__name__}")
    action = parse_spec({"key": "action", **action_data}, f"{source}: action") if action_data else None
    scalars = {name: _parse_scalar(data.pop(name), f"{source}: {name}")
               for name in ("reward", "terminated", "truncated", "episode") if data.get(name)}
    for name in ("reward", "terminated", "truncated", "episode"):
        data.pop(name, None)
    rest = build_section(BagConfig, {**data, "observations": (), "action": None}, source)
    config = dataclasses.replace(rest, observations=observations, action=action, **scalars)
    _validate_bag_config(config, source)
    return config


def _parse_scalar(data: Any, where: str) -> ScalarSpec:
    spec = build_section(ScalarSpec, data, where)
    return dataclasses.replace(spec, type=resolve_type(spec.type, SCALAR_TYPES, f"{where}.type"))


def _validate_bag_config(config: BagConfig, source: str) -> None:
    if config.action is not None and config.action.type in NON_VECTOR_TYPES and not config.action.paths:
        raise ConfigError(f"{source}: action.type '{config.action.type}' is not a vector type")
    clouds = [s for s in config.observations if s.type == "pointcloud2"]
    if clouds and len(config.observations) > 1:
        raise ConfigError(f"{source}: a point-cloud observation must be the only observation "
                          "(robokit episodes store clouds as a ragged list, not inside a dict)")
    if not config.rate_hz > 0 or not config.tolerance_ms >= 0:
        raise ConfigError(f"{source}: rate_hz must be > 0 and tolerance_ms >= 0")
    if config.time_source not in ("header", "log"):
        raise ConfigError(f"{source}: time_source must be 'header' or 'log'")


def load_bag_config(path: str | Path) -> BagConfig:
    return parse_bag_config(read_yaml(path, "bag config"), str(path))


# ---------------------------------------------------------------------------------------------
# reading


@dataclass
class SyncReport:
    """What synchronisation found. Times are seconds since the bag's first used message."""

    ticks: int = 0
    episodes: int = 0
    transitions: int = 0
    messages: dict[str, int] = field(default_factory=dict)
    out_of_order: dict[str, int] = field(default_factory=dict)
    out_of_order_examples: list[str] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    missing_ticks: dict[str, int] = field(default_factory=dict)
    decode_errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """A readable summary."""
        out = [f"{self.episodes} episode(s), {self.transitions} transition(s) from {self.ticks} "
               f"tick(s)", "messages: " + ", ".join(f"{k}={v}" for k, v in self.messages.items())]
        if any(self.out_of_order.values()):
            out.append("out-of-order stamps: " + ", ".join(
                f"{k}={v}" for k, v in self.out_of_order.items() if v))
            out += [f"  {example}" for example in self.out_of_order_examples[:5]]
        if self.gaps:
            out.append(f"{len(self.gaps)} gap(s) ended an episode:")
            out += [f"  t={g['time_s']:.3f}s: {g['reason']}" for g in self.gaps[:10]]
            if len(self.gaps) > 10:
                out.append(f"  ... {len(self.gaps) - 10} more")
        out += [f"decode error: {e}" for e in self.decode_errors[:5]]
        out += [f"note: {n}" for n in self.notes]
        return out


@dataclass
class _Stream:
    """One role's messages, sorted by time: times (K,) int64 ns and decoded values."""

    topic: str
    times: np.ndarray
    values: list[Any]


def check_topic_types(path: Path, bag_types: dict[str, str], wanted: Iterable[tuple[str, Any]]) -> None:
    """ConfigError naming the topic and both types when a configured topic is absent from the
    bag or carries another message type than configured. ``wanted``: (topic, spec) pairs."""
    wanted = list(wanted)
    missing = sorted({topic for topic, _ in wanted} - set(bag_types))
    if missing:
        raise ConfigError(f"{path}: topic(s) {missing} not in the bag; it has {sorted(bag_types)}")
    for topic, spec in wanted:
        have = bag_types[topic]
        if have != spec.msgtype:
            raise ConfigError(f"{path}: topic {topic} is {have} in the bag but configured as type "
                              f"'{spec.type}' ({spec.msgtype}); use {_type_hint(spec, have)}")


def _type_hint(spec: Any, msgtype: str) -> str:
    """What to write as ``type`` for a topic of ``msgtype``."""
    if isinstance(spec, ScalarSpec):
        short = next((k for k, v in SCALAR_TYPES.items() if v == msgtype), None)
        return f"type: {short}" if short else f"a scalar topic ({sorted(SCALAR_TYPES)})"
    short = short_type_name(msgtype)
    return f"type: {short}" + (" with paths: [...]" if short == msgtype else "")


def _read_streams(path: Path, config: BagConfig, report: SyncReport) -> dict[str, _Stream]:
    roles = config.topics()
    by_topic: dict[str, list[str]] = {}
    for role, (topic, _) in roles.items():
        by_topic.setdefault(topic, []).append(role)
    raw: dict[str, list[tuple[int, Any]]] = {role: [] for role in roles}
    with BagFile(path) as bag:
        check_topic_types(path, bag.topics(), roles.values())
        messages = tqdm(bag.messages(list(by_topic)), desc=f"reading {path.name}",
                        total=bag.message_count(list(by_topic)), unit="msg", leave=False)
        for index, (topic, log_ns, msg) in enumerate(messages):
            for role in by_topic[topic]:
                _collect(roles[role][1], msg, log_ns, index, config, raw[role], report)
    return {role: _sorted_stream(role, roles[role][0], items, report) for role, items in raw.items()}


def _collect(spec: Any, msg: Any, log_ns: int, index: int, config: BagConfig,
             out: list[tuple[int, Any]], report: SyncReport) -> None:
    """Append (stamp ns, value) of one message for one role; decode errors go to the report."""
    try:
        if isinstance(spec, ObservationSpec):
            value = decode_observation(spec, msg)
            stamp = observation_stamp_ns(spec, msg) if config.time_source == "header" else None
        else:
            value = convert.scalar_of(msg)
            stamp = convert.header_stamp_ns(msg) if config.time_source == "header" else None
    except (convert.MessageError, ValueError) as err:
        report.decode_errors.append(f"{spec.topic} message {index}: {err}")
        return
    if value is not None:
        out.append((log_ns if stamp is None else stamp, value))


def _sorted_stream(role: str, topic: str, items: list[tuple[int, Any]], report: SyncReport) -> _Stream:
    times = np.array([t for t, _ in items], dtype=np.int64)
    backwards = np.flatnonzero(np.diff(times) < 0) + 1 if len(times) > 1 else np.zeros(0, int)
    report.messages[topic] = len(items)
    report.out_of_order[topic] = int(backwards.size)
    for i in backwards[:3]:
        report.out_of_order_examples.append(
            f"{topic}: message {i} stamped {times[i] / 1e9:.6f}s after one stamped {times[i - 1] / 1e9:.6f}s")
    order = np.argsort(times, kind="stable")
    return _Stream(topic, times[order], [items[i][1] for i in order])


def _match(stream: _Stream, ticks: np.ndarray, tolerance_ns: int) -> np.ndarray:
    """Index of the nearest message per tick, or -1 if none lies within tolerance. (K,) int64."""
    if len(stream.times) == 0:
        return np.full(len(ticks), -1, dtype=np.int64)
    right = np.clip(np.searchsorted(stream.times, ticks), 1, len(stream.times) - 1) \
        if len(stream.times) > 1 else np.zeros(len(ticks), dtype=np.int64)
    left = np.maximum(right - 1, 0)
    pick = np.where(np.abs(stream.times[left] - ticks) <= np.abs(stream.times[right] - ticks), left, right)
    within = np.abs(stream.times[pick] - ticks) <= tolerance_ns
    return np.where(within, pick, -1)


def read_bag(path: str | Path, config: BagConfig | None = None) -> tuple[list[Any], SyncReport]:
    """Episodes (``robokit.data.Episode``) from a ROS 1 or ROS 2 bag, and what sync found.

    ``config`` defaults to the ``robokit_bag_config.yaml`` that :func:`write_bag` leaves in the bag.
    """
    path = Path(path)
    if config is None:
        own = path / BAG_CONFIG_NAME
        if not own.is_file():
            raise ConfigError(f"{path}: no --config given and no {BAG_CONFIG_NAME} inside the bag")
        config = load_bag_config(own)
    report = SyncReport()
    streams = _read_streams(path, config, report)
    obs_roles = [f"obs:{s.key}" for s in config.observations]
    if config.action is None:
        report.notes.append("no action topic configured: observation-only dataset (actions of shape (T, 0))")
    if any(len(s.times) == 0 for role, s in streams.items() if role in obs_roles or role == "action"):
        report.notes.append("an observation or action topic has no usable message")
        return [], report
    first = max(int(streams[r].times[0]) for r in obs_roles)
    last = min(int(streams[r].times[-1]) for r in obs_roles)
    period_ns = round(1e9 / config.rate_hz)
    # up to the last observation + tolerance: stamps from float seconds (rospy.Time.from_sec)
    # land a few ns before their tick, and the last scan must still get its tick
    ticks = np.arange(first, last + round(config.tolerance_ms * 1e6) + 1, period_ns, dtype=np.int64)
    report.ticks = len(ticks)
    matches = {role: _match(s, ticks, round(config.tolerance_ms * 1e6)) for role, s in streams.items()}
    for role, match in matches.items():
        report.missing_ticks[streams[role].topic] = int((match < 0).sum())
    if config.reward is None:
        report.notes.append("no reward topic configured: rewards are 0")
    episodes = [_make_episode(config, streams, matches, run, path)
                for run in _runs(config, streams, matches, ticks, first, report)]
    report.episodes = len(episodes)
    report.transitions = sum(len(e) for e in episodes)
    return episodes, report


@dataclass
class _Run:
    start: int     # first tick (first observation)
    end: int       # last tick (final observation); transitions start .. end-1
    terminated: bool


def _runs(config: BagConfig, streams: dict[str, _Stream], matches: dict[str, np.ndarray],
          ticks: np.ndarray, origin_ns: int, report: SyncReport) -> list[_Run]:
    """Split the grid into episodes at gaps, episode-index changes and terminations."""
    obs_roles = [f"obs:{s.key}" for s in config.observations]
    obs_ok = np.all([matches[r] >= 0 for r in obs_roles], axis=0)
    act_roles = [r for r in ("action", "reward") if r in streams]
    act_ok = np.all([matches[r] >= 0 for r in act_roles], axis=0) if act_roles else np.ones(len(ticks), bool)
    episode_id = _scalar_at(streams, matches, "episode", len(ticks), default=0)
    terminated = _scalar_at(streams, matches, "terminated", len(ticks), default=0).astype(bool)
    runs, start, skip_to = [], None, 0
    for i in range(len(ticks)):
        if start is None:
            if i < skip_to or not obs_ok[i]:
                continue
            start = i
        last = i + 1 >= len(ticks)
        can_step = (not last and act_ok[i] and obs_ok[i + 1] and episode_id[i + 1] == episode_id[i])
        if can_step and terminated[i]:
            runs.append(_Run(start, i + 1, True))
            start, skip_to = None, i + 2
        elif not can_step:
            if i > start:
                runs.append(_Run(start, i, False))
            reason = _stop_reason(i, last, act_ok, obs_ok, episode_id, matches, streams, act_roles, obs_roles)
            if reason is not None:
                report.gaps.append({"time_s": (ticks[i] - origin_ns) / 1e9, "tick": i, "reason": reason})
            start = None
    return runs


def _stop_reason(i: int, last: bool, act_ok: np.ndarray, obs_ok: np.ndarray, episode_id: np.ndarray,
                 matches: dict[str, np.ndarray], streams: dict[str, _Stream], act_roles: list[str],
                 obs_roles: list[str]) -> str | None:
    """Why the episode stops at tick i; None for a normal end (bag end, next episode index)."""
    if last:
        return None
    if not act_ok[i]:
        missing = [streams[r].topic for r in act_roles if matches[r][i] < 0]
        if obs_ok[i + 1] and episode_id[i + 1] == episode_id[i]:
            return f"no {', '.join(missing)} within tolerance"
        return None
    if not obs_ok[i + 1]:
        missing = [streams[r].topic for r in obs_roles if matches[r][i + 1] < 0]
        return f"no {', '.join(missing)} within tolerance at the next tick"
    return None


def _scalar_at(streams: dict[str, _Stream], matches: dict[str, np.ndarray], role: str,
               size: int, default: float) -> np.ndarray:
    if role not in streams:
        return np.full(size, default)
    values = np.array([float(v) for v in streams[role].values] + [default])
    return values[matches[role]]   # index -1 picks the default


def _make_episode(config: BagConfig, streams: dict[str, _Stream], matches: dict[str, np.ndarray],
                  run: _Run, path: Path) -> Any:
    from robokit.data.episode import Episode

    steps = slice(run.start, run.end)
    frames = slice(run.start, run.end + 1)

    def values(role: str, sl: slice) -> list[Any]:
        return [streams[role].values[j] for j in matches[role][sl]]

    keys = [s.key for s in config.observations]
    if config.observations[0].type == "pointcloud2":
        observations: Any = values(f"obs:{keys[0]}", frames)
    elif len(keys) == 1:
        observations = np.stack(values(f"obs:{keys[0]}", frames))
    else:
        observations = {k: np.stack(values(f"obs:{k}", frames)) for k in keys}
    length = run.end - run.start
    rewards = (np.array(values("reward", steps), np.float32) if config.reward
               else np.zeros(length, np.float32))
    terminated = np.zeros(length, bool)
    terminated[-1] = run.terminated
    truncated = np.zeros(length, bool)
    truncated[-1] = not run.terminated
    actions = (np.stack(values("action", steps)).astype(np.float32) if config.action is not None
               else np.zeros((length, 0), np.float32))
    return Episode(observations, actions, rewards, terminated, truncated, source=str(path))


# ---------------------------------------------------------------------------------------------
# writing


def _pointcloud_field_names(channels: int) -> tuple[str, ...]:
    extra = ("intensity",) if channels == 4 else tuple(f"f{i}" for i in range(3, channels))
    return ("x", "y", "z") + extra


def default_bag_config(episode: Any, rate_hz: float, prefix: str = "/robokit") -> dict[str, Any]:
    """The BagConfig (as plain data) matching what :func:`write_bag` writes for ``episode``."""
    obs = episode.observations
    if isinstance(obs, list):
        observations = [{"key": "points", "topic": f"{prefix}/points", "type": "pointcloud2",
                         "fields": list(_pointcloud_field_names(obs[0].shape[1]))}]
    elif isinstance(obs, dict):
        observations = [{"key": k, "topic": f"{prefix}/observation/{k}", "type": "float32_array"}
                        for k in obs]
    else:
        observations = [{"key": "observation", "topic": f"{prefix}/observation",
                         "type": "float32_array"}]
    return {"rate_hz": rate_hz, "tolerance_ms": 0.25 * 1000 / rate_hz, "time_source": "header",
            "observations": observations,
            "action": {"topic": f"{prefix}/action", "type": "float32_array"},
            "reward": {"topic": f"{prefix}/reward", "type": "float32"},
            "terminated": {"topic": f"{prefix}/terminated", "type": "bool"},
            "truncated": {"topic": f"{prefix}/truncated", "type": "bool"},
            "episode": {"topic": f"{prefix}/episode", "type": "uint32"}}


def _vector_msg(values: np.ndarray) -> m.Float32MultiArray:
    values = np.asarray(values)
    if values.ndim != 1:
        raise ValueError(f"write_bag stores vector observations; got an observation of shape {values.shape}")
    return convert.array_to_float32_multiarray(values)


def _tick_messages(episode: Any, config: dict[str, Any], index: int, t: int,
                   stamp_ns: int) -> list[tuple[str, Any]]:
    """(topic, message) pairs for step t of episode ``index`` (t == len(episode): final obs)."""
    out: list[tuple[str, Any]] = []
    obs = episode.observation(t)
    for spec in config["observations"]:
        if spec["type"] == "pointcloud2":
            msg: Any = convert.points_to_pointcloud2(obs, spec["fields"], stamp_ns=stamp_ns,
                                                     frame_id="robokit")
        else:
            msg = _vector_msg(obs[spec["key"]] if isinstance(obs, dict) else obs)
        out.append((spec["topic"], msg))
    out.append((config["episode"]["topic"], m.UInt32(index)))
    if t < len(episode):
        out += [(config["action"]["topic"], _vector_msg(episode.actions[t])),
                (config["reward"]["topic"], m.Float32(float(episode.rewards[t]))),
                (config["terminated"]["topic"], m.Bool(bool(episode.terminated[t]))),
                (config["truncated"]["topic"], m.Bool(bool(episode.truncated[t])))]
    return out


def write_bag(episodes: list[Any], out: str | Path, storage: str = "mcap", rate_hz: float = 10.0,
              start_ns: int = 1_700_000_000 * 10**9, gap_ticks: int = 5) -> Path:
    """Write ``episodes`` to a new ROS 2 bag folder ``out`` (storage ``mcap`` or ``sqlite3``).

    The folder is written under a temporary name and renamed when complete, so a failed
    write leaves no half bag behind. Returns the bag path.
    """
    import shutil

    from rosbags.rosbag2 import StoragePlugin, Writer
    from rosbags.typesys import Stores, get_typestore

    from robokit.core.atomic import atomic_write_text
    from robokit.ros.backends import to_rosbags

    if storage not in ("mcap", "sqlite3"):
        raise ValueError(f"storage must be 'mcap' or 'sqlite3', got {storage!r}")
    if not episodes:
        raise ValueError("write_bag needs at least one episode")
    out = Path(out)
    if out.exists():
        raise FileExistsError(f"{out} exists already; rosbag2 bags are never overwritten")
    config = default_bag_config(episodes[0], rate_hz)
    typestore = get_typestore(Stores.ROS2_HUMBLE)
    # the bag is built as <parent>/.<name>.partial/<name> (storage files are named after the
    # bag folder), then moved to <parent>/<name> once complete
    staging = out.with_name(f".{out.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    tmp = staging / out.name
    plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
    connections: dict[str, Any] = {}
    period_ns = round(1e9 / rate_hz)
    tick = 0
    try:
        with Writer(tmp, version=ROSBAG2_VERSION, storage_plugin=plugin) as writer:
            for index, episode in enumerate(tqdm(episodes, desc=f"writing {out.name}", unit="episode",
                                                 leave=False)):
                for t in range(len(episode) + 1):
                    stamp = start_ns + tick * period_ns
                    for topic, msg in _tick_messages(episode, config, index, t, stamp):
                        if topic not in connections:
                            connections[topic] = writer.add_connection(topic, msg.MSGTYPE,
                                                                       typestore=typestore)
                        data = typestore.serialize_cdr(to_rosbags(msg, typestore), msg.MSGTYPE)
                        writer.write(connections[topic], stamp, data)
                    tick += 1
                tick += gap_ticks
        atomic_write_text(tmp / BAG_CONFIG_NAME, yaml.safe_dump(config, sort_keys=False))
        tmp.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out
