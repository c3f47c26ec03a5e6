"""Safety layer and runner logic without ROS: clamps, watchdog, e-stop, drops, config errors."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from robokit.ros import convert
from robokit.ros.config import ConfigError, parse_runner_config
from robokit.ros.runner import PolicyRunner
from robokit.ros.safety import SafetyLayer, SafetyLimits

MS = 1_000_000


def ready_layer(limits: SafetyLimits, kind: str = "twist", **kwargs) -> SafetyLayer:
    layer = SafetyLayer(limits, kind, **kwargs)
    layer.observation_accepted(0, kwargs.pop("joints", None))
    return layer


def test_twist_speed_limits_keep_direction():
    layer = ready_layer(SafetyLimits(max_linear_speed=0.5, max_angular_speed=1.0,
                                     max_linear_accel=1e9, max_angular_accel=1e9))
    safe, stopped = layer.filter(np.array([3.0, 4.0, 0, 0, 0, -2.0]), 10 * MS)
    assert not stopped
    np.testing.assert_allclose(safe, [0.3, 0.4, 0, 0, 0, -1.0])
    assert layer.counts["clamp"] == 1
    inside = np.array([0.1, 0, 0, 0, 0, 0.2])
    np.testing.assert_array_equal(layer.filter(inside, 20 * MS)[0], inside)
    assert layer.counts["clamp"] == 1                    # nothing changed: no intervention


def test_twist_rate_of_change_is_limited_per_tick():
    layer = ready_layer(SafetyLimits(max_linear_speed=10, max_angular_speed=10,
                                     max_linear_accel=2.0, max_angular_accel=4.0))
    layer.filter(np.zeros(6), 0)
    previous = np.zeros(6)
    for tick in range(1, 6):                             # 50 ms ticks: at most 0.1 m/s, 0.2 rad/s more
        safe, _ = layer.filter(np.array([5.0, 0, 0, 0, 0, 5.0]), tick * 50 * MS)
        assert safe[0] - previous[0] == pytest.approx(0.1)
        assert safe[5] - previous[5] == pytest.approx(0.2)
        previous = safe


def test_joint_position_and_velocity_limits():
    limits = SafetyLimits(joint_position_min=(-1.0, 0.0), joint_position_max=(1.0, 2.0),
                          joint_velocity_max=(0.5, 10.0))
    layer = SafetyLayer(limits, "joint_position")
    layer.observation_accepted(0, np.array([0.0, 1.0]))
    safe, _ = layer.filter(np.array([5.0, 5.0]), 100 * MS)
    # joint 0: velocity-limited to 0.5 rad/s * 0.1 s from the held position; joint 1: clipped to 2
    np.testing.assert_allclose(safe, [0.05, 2.0])
    outside = SafetyLayer(limits, "joint_position", period_s=0.05)
    outside.observation_accepted(0, np.array([1.5, 1.0]))     # observed beyond joint 0's limit
    np.testing.assert_allclose(outside.filter(np.array([1.5, 1.0]), 50 * MS)[0], [1.0, 1.0])


def test_hold_position_stop_respects_position_limits():
    """Before any command the hold is the observed position; observed beyond a limit, the stop
    must still be inside it (a live run published 0.4 against a 0.3 limit this way)."""
    limits = SafetyLimits(watchdog_ms=100, joint_position_min=(-0.45, -0.5), joint_position_max=(0.45, 0.3))
    layer = SafetyLayer(limits, "joint_position")
    layer.observation_accepted(0, np.array([0.0, 0.4]))        # joint 2 observed above its limit
    np.testing.assert_allclose(layer.emergency_stop(10 * MS, "stop_stuck_step", "test"), [0.0, 0.3])
    fresh = SafetyLayer(limits, "joint_position")
    fresh.observation_accepted(0, np.array([0.0, 0.4]))
    held, stopped = fresh.filter(None, 10 * MS, error=RuntimeError("policy failed"))
    assert stopped
    np.testing.assert_allclose(held, [0.0, 0.3])


def test_watchdog_policy_error_bad_commands_and_hold_position():
    layer = SafetyLayer(SafetyLimits(watchdog_ms=100), "joint_position")
    with pytest.raises(RuntimeError, match="hold-position"):
        layer.filter(np.zeros(2), 0)                     # no joint position known: cannot hold
    layer = SafetyLayer(SafetyLimits(watchdog_ms=100, joint_position_min=(-1, -1),
                                     joint_position_max=(1, 1)), "joint_position")
    layer.observation_accepted(0, np.array([0.2, -0.3]))
    np.testing.assert_array_equal(layer.filter(np.array([0.25, -0.3]), 50 * MS)[0], [0.25, -0.3])
    held, stopped = layer.filter(np.array([0.9, 0.9]), 151 * MS)
    assert stopped and layer.counts["stop_watchdog"] == 1
    np.testing.assert_array_equal(held, [0.25, -0.3])    # hold the last commanded position
    layer.observation_accepted(200 * MS)
    _, stopped = layer.filter(None, 210 * MS, error=RuntimeError("boom"))
    assert stopped and layer.counts["stop_policy_error"] == 1
    _, stopped = layer.filter(np.array([np.nan, 0.0]), 220 * MS)
    assert stopped and layer.counts["stop_bad_command"] == 1
    _, stopped = layer.filter(np.array([0.0, 0.0, 0.0]), 230 * MS)
    assert stopped and layer.counts["stop_bad_command"] == 2


def test_estop_latches_until_reset_and_is_logged(tmp_path):
    log = tmp_path / "interventions.jsonl"
    layer = ready_layer(SafetyLimits(), log_path=log)
    layer.trigger_estop(5 * MS)
    layer.trigger_estop(6 * MS)                          # repeated e-stop messages: one latch
    layer.observation_accepted(7 * MS)
    for t in (10, 20, 30):
        safe, stopped = layer.filter(np.array([0.1, 0, 0, 0, 0, 0]), t * MS)
        assert stopped and not safe.any()
    layer.reset_estop(40 * MS)
    layer.observation_accepted(41 * MS)
    safe, stopped = layer.filter(np.array([0.1, 0, 0, 0, 0, 0]), 50 * MS)
    assert not stopped and safe[0] == pytest.approx(2.0 * 0.02)   # ramps up from the stop
    layer.close()
    kinds = [json.loads(line)["kind"] for line in log.read_text().splitlines()]
    assert kinds == ["estop_latched", "stop_estop", "stop_estop", "stop_estop", "estop_reset", "clamp"]


def test_observation_screening_counts_every_reason():
    layer = SafetyLayer(SafetyLimits(stale_ms=100))
    now = 10_000 * MS
    vec = np.zeros(3, np.float32)
    assert layer.screen_observation("v", vec, now - 10 * MS, now, expected_size=3)
    assert not layer.screen_observation("v", np.zeros(4, np.float32), now, now, expected_size=3)
    assert not layer.screen_observation("v", np.array([0, np.nan, 0], np.float32), now, now, 3)
    assert not layer.screen_observation("v", vec, now - 200 * MS, now, 3)
    assert not layer.screen_observation("v", vec, now - 20 * MS, now, 3)       # older than accepted
    assert not layer.screen_observation("p", np.zeros((0, 3), np.float32), now, now, min_rows=1)
    assert not layer.screen_observation("p", np.zeros((3, 3), np.float32), now, now, min_rows=10)
    assert layer.counts == {"drop_wrong_size": 1, "drop_nan": 2, "drop_stale": 1,
                            "drop_out_of_order": 1, "drop_too_few_points": 1}


class RecordingTransport:
    """In-memory transport: the runner's logic without a network (the ROS path is in test_ros1_live)."""

    def __init__(self) -> None:
        self.callbacks, self.sent = {}, []

    def subscribe(self, topic, msgtype, callback):
        self.callbacks[topic] = callback

    def publisher(self, topic, msgtype, latch=False):
        return self.sent.append

    def is_shutdown(self):
        return False


class ExplodingPolicy:
    def act(self, obs, deterministic=True):
        raise RuntimeError("policy crashed")


class EchoPolicy:
    """Returns the mean of x and y of the cloud as (vx, wz): predictable, for checks."""

    def act(self, obs, deterministic=True):
        return np.array([obs[:, 0].mean(), obs[:, 1].mean()], np.float32)


RUNNER_CONFIG = {
    "rate_hz": 20,
    "observations": [{"key": "points", "topic": "/points", "type": "pointcloud2", "min_points": 2}],
    "command": {"topic": "/cmd", "type": "twist", "axes": ["vx", "wz"]},
    "safety": {"max_linear_speed": 1.0, "max_linear_accel": 100.0, "max_angular_accel": 100.0},
}


def cloud(x: float, y: float, n: int = 5, stamp_ns: int | None = None):
    points = np.tile(np.array([[x, y, 0.0]], np.float32), (n, 1))
    return convert.points_to_pointcloud2(points, stamp_ns=stamp_ns or time.time_ns())


def test_runner_maps_axes_drops_bad_clouds_and_stops_on_policy_error():
    transport = RecordingTransport()
    runner = PolicyRunner(EchoPolicy(), transport, parse_runner_config(RUNNER_CONFIG))
    start = time.time_ns()
    runner.step(start)                                   # nothing received yet: stop
    assert convert.twist_to_array(transport.sent[-1]).tolist() == [0.0] * 6
    transport.callbacks["/points"](cloud(0.4, -0.7), time.time_ns())
    runner.step(start + 50 * MS)
    command = convert.twist_to_array(transport.sent[-1])
    np.testing.assert_allclose(command, [0.4, 0, 0, 0, 0, -0.7], rtol=1e-6)
    transport.callbacks["/points"](cloud(np.nan, 0.0), time.time_ns())        # all NaN: dropped
    transport.callbacks["/points"](cloud(0.1, 0.1, n=1), time.time_ns())      # too few points
    bad_fields = convert.points_to_pointcloud2(np.zeros((5, 2), np.float32), ("a", "b"))
    transport.callbacks["/points"](bad_fields, time.time_ns())                # no x/y/z fields
    assert runner.safety.counts["drop_nan"] == 1
    assert runner.safety.counts["drop_too_few_points"] == 1
    assert runner.safety.counts["drop_malformed"] == 1
    runner.policy = ExplodingPolicy()
    runner.step()
    assert runner.safety.counts["stop_policy_error"] == 1
    assert not convert.twist_to_array(transport.sent[-1]).any()


def test_runner_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="missing key 'command'"):
        parse_runner_config({"observations": RUNNER_CONFIG["observations"]}, "r.yaml")
    with pytest.raises(ConfigError, match=r"observations\[0\]: unknown key\(s\) \['topik'\]"):
        parse_runner_config({**RUNNER_CONFIG, "observations": [{"key": "a", "topik": "/x", "type": "twist"}]})
    with pytest.raises(ConfigError, match="command.axes"):
        parse_runner_config({**RUNNER_CONFIG, "command": {"topic": "/c", "axes": ["vq"]}})
    with pytest.raises(ConfigError, match="safety: safety limit 'watchdog_ms' must be positive"):
        parse_runner_config({**RUNNER_CONFIG, "safety": {"watchdog_ms": -1}})
    with pytest.raises(ConfigError, match="joint commands need"):
        parse_runner_config({**RUNNER_CONFIG, "command": {"topic": "/c", "type": "joint_state",
                                                          "joints": ["a"]}})


def test_observation_trigger_steps_once_per_cloud_then_watchdog_stops():
    import threading

    config = parse_runner_config({**RUNNER_CONFIG, "trigger": "observation", "rate_hz": 50,
                                  "command": {"topic": "/cmd", "type": "twist_stamped", "axes": ["vx", "wz"]},
                                  "safety": {**RUNNER_CONFIG["safety"], "watchdog_ms": 100}})
    transport = RecordingTransport()
    runner = PolicyRunner(EchoPolicy(), transport, config)
    thread = threading.Thread(target=runner.run, kwargs={"duration_s": 1.0})
    thread.start()
    stamps = []
    for _ in range(5):
        stamps.append(time.time_ns())
        transport.callbacks["/points"](cloud(0.1, 0.0, stamp_ns=stamps[-1]), time.time_ns())
        time.sleep(0.04)
    thread.join()
    moving = [msg for msg in transport.sent if convert.twist_to_array(msg).any()]
    # one command per cloud, each stamped with its cloud (no re-run on an old cloud)
    assert [convert.header_stamp_ns(msg) for msg in moving] == stamps
    assert runner.policy_steps == 5
    stops = transport.sent[len(moving):]
    assert len(stops) >= 10 and runner.safety.counts["stop_watchdog"] == len(stops)
    assert all(convert.header_stamp_ns(msg) > stamps[-1] for msg in stops)


class HangingPolicy(EchoPolicy):
    """Answers at once, except that its third call blocks for 0.8 s (a hung inference)."""

    def __init__(self) -> None:
        self.calls = 0

    def act(self, obs, deterministic=True):
        self.calls += 1
        if self.calls == 3:
            time.sleep(0.8)
        return super().act(obs, deterministic)


def test_hung_policy_step_still_publishes_a_stop():
    import threading

    config = parse_runner_config({**RUNNER_CONFIG, "safety": {**RUNNER_CONFIG["safety"], "watchdog_ms": 150,
                                                              "stale_ms": None}})
    transport = RecordingTransport()
    sent_at = []
    transport.publisher = lambda topic, msgtype, latch=False: lambda msg: (
        transport.sent.append(msg), sent_at.append(time.monotonic()))
    runner = PolicyRunner(HangingPolicy(), transport, config)
    feeding = threading.Event()

    def feed():
        while not feeding.is_set():
            transport.callbacks["/points"](cloud(0.5, 0.2), time.time_ns())
            time.sleep(0.02)

    feeder = threading.Thread(target=feed)
    feeder.start()
    try:
        runner.run(duration_s=1.5)
    finally:
        feeding.set()
        feeder.join()
    gaps = np.diff(sent_at)
    assert gaps.max() < 0.15 + 0.1, f"no command for {gaps.max():.2f} s while the policy hung"
    assert runner.safety.counts["stop_step_timeout"] >= 1
    stops = [m for m in transport.sent if not convert.twist_to_array(m).any()]
    assert len(stops) >= runner.safety.counts["stop_step_timeout"]


def test_runner_estop_topic_latches_and_reset_topic_releases():
    config = parse_runner_config({**RUNNER_CONFIG, "estop_reset_topic": "/robokit/estop_reset"})
    transport = RecordingTransport()
    runner = PolicyRunner(EchoPolicy(), transport, config)
    start = time.time_ns()
    transport.callbacks["/points"](cloud(0.3, 0.0), time.time_ns())
    runner.step(start + 50 * MS)
    assert convert.twist_to_array(transport.sent[-1])[0] == pytest.approx(0.3)
    transport.callbacks["/robokit/estop"]({"data": True}, time.time_ns())     # rosbridge-style dict
    assert not convert.twist_to_array(transport.sent[-1]).any()               # stop published at once
    transport.callbacks["/robokit/estop"]({"data": False}, time.time_ns())
    transport.callbacks["/points"](cloud(0.3, 0.0), time.time_ns())
    runner.step()
    assert runner.safety.estopped and not convert.twist_to_array(transport.sent[-1]).any()
    transport.callbacks["/robokit/estop_reset"]({"data": True}, time.time_ns())
    transport.callbacks["/points"](cloud(0.3, 0.0), time.time_ns())
    runner.step()
    assert not runner.safety.estopped and convert.twist_to_array(transport.sent[-1])[0] > 0
    assert runner.safety.counts["estop_latched"] == 1 and runner.safety.counts["estop_reset"] == 1
