"""Live policy node on a real roscore (Debian ROS 1): rate, limits, watchdog, NaN drops, e-stop.

Every process here is real: roscore, a test publisher node sending PointCloud2 (plain rospy,
tests/ros/nodes.py), a recorder node, and ``robokit ros run`` with a real torch policy
(robokit.ros.policies.PointCloudTwistPolicy, random weights, outputs scaled past the limits).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

pytestmark = pytest.mark.ros

RATE_HZ = 20.0
WATCHDOG_MS = 300.0
MAX_LINEAR, MAX_ANGULAR = 0.5, 1.0
MAX_LINEAR_ACCEL, MAX_ANGULAR_ACCEL = 2.0, 6.0
# scheduling slack on a shared 2-core machine (load average 5-10 while these run): two control
# periods plus delivery and scheduling jitter
SLACK_S = 2 / RATE_HZ + 0.25


def write_config(path: Path) -> Path:
    config = {
        "rate_hz": RATE_HZ, "trigger": "timer",
        "observations": [{"key": "points", "topic": "/points", "type": "pointcloud2",
                          "fields": ["x", "y", "z"], "min_points": 16}],
        "command": {"topic": "/cmd_vel", "type": "twist", "axes": ["vx", "wz"]},
        "estop_topic": "/robokit/estop",
        "safety": {"max_linear_speed": MAX_LINEAR, "max_angular_speed": MAX_ANGULAR,
                   "max_linear_accel": MAX_LINEAR_ACCEL, "max_angular_accel": MAX_ANGULAR_ACCEL,
                   "watchdog_ms": WATCHDOG_MS, "stale_ms": 500.0},
    }
    path.write_text(yaml.safe_dump(config))
    return path


def start_runner(processes, tmp_path: Path, duration_s: float, sigint_ignored: bool = False):
    args = ["ros", "run", "--config", str(write_config(tmp_path / "runner.yaml")),
            "--policy", "robokit.ros.policies:PointCloudTwistPolicy", "--transport", "ros1",
            "--duration-s", str(duration_s), "--log-dir", str(tmp_path / "runner_logs")]
    if sigint_ignored:  # as in a background job of a non-interactive shell
        proc = processes.start("runner", ["bash", "-c", 'trap "" INT; exec "$@"', "bash",
                                          sys.executable, "-m", "robokit", *args])
    else:
        proc = processes.robokit("runner", *args)
    deadline = time.monotonic() + 60
    while "running policy" not in processes.log("runner"):
        assert proc.poll() is None, processes.log("runner")
        assert time.monotonic() < deadline, "runner did not start: " + processes.log("runner")
        time.sleep(0.1)
    return proc


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] \
        if path.exists() else []


def wait_for_commands(path: Path, predicate, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not any(predicate(row) for row in read_jsonl(path)):
        assert time.monotonic() < deadline, f"no matching command within {timeout_s} s"
        time.sleep(0.05)


def moving(row: dict) -> bool:
    return bool(np.any(np.abs(row["v"]) > 1e-9))


def finish(proc, processes, tmp_path: Path) -> dict:
    """Stop the runner like Ctrl-C does; it must exit cleanly and write its summary."""
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=30)
    assert proc.returncode == 0, processes.log("runner")
    return json.loads((tmp_path / "runner_logs" / "summary.json").read_text())


def check_limits(rows: list[dict]) -> None:
    values = np.array([row["v"] for row in rows])
    assert np.linalg.norm(values[:, :3], axis=1).max() <= MAX_LINEAR + 1e-9
    assert np.linalg.norm(values[:, 3:], axis=1).max() <= MAX_ANGULAR + 1e-9
    # rate of change between consecutive commands (dt measured at the recorder, so loose)
    times = np.array([row["t"] for row in rows])
    dt = np.maximum(np.diff(times), 1 / RATE_HZ)
    moving_pairs = np.array([moving(a) and moving(b) for a, b in zip(rows[:-1], rows[1:], strict=True)])
    linear_change = np.linalg.norm(np.diff(values[:, :3], axis=0), axis=1)
    assert np.all(linear_change[moving_pairs] <= MAX_LINEAR_ACCEL * 3 * dt[moving_pairs] + 1e-9)


def test_rate_limits_and_stop_when_publisher_dies(processes, tmp_path):
    commands = tmp_path / "commands.jsonl"
    processes.node("recorder", "record", "--topic", "/cmd_vel", "--out", str(commands))
    runner = start_runner(processes, tmp_path, duration_s=60.0)
    publisher = processes.node("cloud", "cloud", "--rate", str(RATE_HZ), "--points", "3000")
    wait_for_commands(commands, moving)
    time.sleep(3.0)
    publisher.kill()                          # the observation source dies without warning
    killed_at = time.time()
    time.sleep(1.5)
    rows = read_jsonl(commands)
    active = [r for r in rows if r["t"] < killed_at]
    first_moving = next(r["t"] for r in rows if moving(r))
    steady = [r for r in active if r["t"] > first_moving + 0.5]
    span = steady[-1]["t"] - steady[0]["t"]
    rate = (len(steady) - 1) / span
    assert abs(rate - RATE_HZ) / RATE_HZ < 0.15, f"command rate {rate:.1f} Hz, set {RATE_HZ} Hz"
    median_gap = np.median(np.diff([r["t"] for r in steady]))
    assert median_gap == pytest.approx(1 / RATE_HZ, rel=0.2), f"median gap {median_gap * 1e3:.1f} ms"
    check_limits(rows)
    speeds = np.abs([r["v"][0] for r in steady])
    assert speeds.max() == pytest.approx(MAX_LINEAR), "the policy's oversized commands were clamped"
    late = [r for r in rows if r["t"] > killed_at + WATCHDOG_MS / 1e3 + SLACK_S]
    moving_late = [round(r["t"] - killed_at, 3) for r in late if moving(r)]
    assert late and not moving_late, f"still moving {moving_late} s after the publisher died"
    stop_at = next(r["t"] for r in rows if r["t"] > killed_at and not moving(r))
    assert stop_at - killed_at <= WATCHDOG_MS / 1e3 + SLACK_S, f"stop after {stop_at - killed_at:.3f} s"
    summary = finish(runner, processes, tmp_path)
    assert summary["counts"]["stop_watchdog"] > 0
    assert summary["counts"]["clamp"] > 0


def test_nan_clouds_are_dropped_and_stop_the_robot(processes, tmp_path):
    commands, events = tmp_path / "commands.jsonl", tmp_path / "events.jsonl"
    processes.node("recorder", "record", "--topic", "/cmd_vel", "--out", str(commands))
    runner = start_runner(processes, tmp_path, duration_s=60.0)
    processes.node("cloud", "cloud", "--rate", str(RATE_HZ), "--points", "2000",
                   "--nan-after", "2.0", "--log", str(events))
    wait_for_commands(commands, moving)
    deadline = time.monotonic() + 15
    while not any(e["event"] == "nan_start" for e in read_jsonl(events)):
        assert time.monotonic() < deadline, "publisher never switched to NaN clouds"
        time.sleep(0.05)
    nan_at = next(e["t"] for e in read_jsonl(events) if e["event"] == "nan_start")
    time.sleep(1.0)
    rows = read_jsonl(commands)
    check_limits(rows)
    assert any(moving(r) for r in rows if r["t"] < nan_at)
    late = [r for r in rows if r["t"] > nan_at + WATCHDOG_MS / 1e3 + SLACK_S]
    assert late and not any(moving(r) for r in late), "the node acted on NaN clouds"
    summary = finish(runner, processes, tmp_path)
    assert summary["counts"]["drop_nan"] >= 5
    assert summary["counts"]["stop_watchdog"] > 0


def test_estop_latches(processes, tmp_path):
    commands, events = tmp_path / "commands.jsonl", tmp_path / "events.jsonl"
    processes.node("recorder", "record", "--topic", "/cmd_vel", "--out", str(commands))
    runner = start_runner(processes, tmp_path, duration_s=60.0)
    processes.node("cloud", "cloud", "--rate", str(RATE_HZ), "--points", "2000")
    wait_for_commands(commands, moving)
    processes.node("estop", "estop", "--at", "1.0", "--release-at", "2.0", "--log", str(events))
    deadline = time.monotonic() + 15
    while not any(e["event"] == "estop_False" for e in read_jsonl(events)):
        assert time.monotonic() < deadline, "e-stop node did not run"
        time.sleep(0.05)
    estop_at = next(e["t"] for e in read_jsonl(events) if e["event"] == "estop_True")
    time.sleep(1.0)                            # observations keep flowing, e-stop was "released"
    rows = read_jsonl(commands)
    late = [r for r in rows if r["t"] > estop_at + SLACK_S]
    assert len(late) > RATE_HZ, "commands must keep flowing (as stops) while e-stopped"
    assert not any(moving(r) for r in late), "robot moved after the e-stop"
    summary = finish(runner, processes, tmp_path)
    assert summary["estop"] is True
    assert summary["counts"]["estop_latched"] == 1
    interventions = read_jsonl(tmp_path / "runner_logs" / "interventions.jsonl")
    assert any(i["kind"] == "estop_latched" for i in interventions)


def test_rl_checkpoint_drives_joint_targets_within_limits_and_holds(processes, tmp_path):
    """A real robokit SAC checkpoint (robokit.algos.save_agent) reads JointState (positions and
    velocities of 2 joints) and commands joint position targets; limits hold exactly."""
    from robokit.algos import make_agent, save_agent

    checkpoint = save_agent(make_agent("sac", obs_dim=4, action_dim=2, seed=0), tmp_path / "agent.pt")
    lower, upper, vmax = (-0.45, -0.5), (0.45, 0.3), (1.0, 0.4)
    config = {
        "rate_hz": RATE_HZ,
        "observations": [{"key": "joints", "topic": "/joint_states", "type": "joint_state",
                          "joints": ["j1", "j2"], "parts": ["position", "velocity"]}],
        "command": {"topic": "/joint_command", "type": "joint_state", "joints": ["j1", "j2"]},
        "safety": {"joint_position_min": list(lower), "joint_position_max": list(upper),
                   "joint_velocity_max": list(vmax), "watchdog_ms": WATCHDOG_MS},
    }
    (tmp_path / "joints.yaml").write_text(yaml.safe_dump(config))
    commands = tmp_path / "commands.jsonl"
    processes.node("recorder", "record", "--topic", "/joint_command", "--type", "joint_state",
                   "--out", str(commands))
    runner = processes.robokit("runner", "ros", "run", "--config", str(tmp_path / "joints.yaml"),
                               "--checkpoint", str(checkpoint), "--log-dir", str(tmp_path / "runner_logs"))
    deadline = time.monotonic() + 60
    while "running policy" not in processes.log("runner"):
        assert runner.poll() is None and time.monotonic() < deadline, processes.log("runner")
        time.sleep(0.1)
    publisher = processes.node("joints", "joints", "--rate", str(RATE_HZ))
    wait_for_commands(commands, lambda row: True)
    time.sleep(2.5)
    publisher.kill()
    killed_at = time.time()
    time.sleep(1.0)
    rows = read_jsonl(commands)
    assert all(row["names"] == ["j1", "j2"] for row in rows)
    targets = np.array([row["v"] for row in rows])
    assert np.all(targets >= np.array(lower) - 1e-9) and np.all(targets <= np.array(upper) + 1e-9)
    # per-tick change never exceeds joint_velocity_max / rate (dt is capped at the period)
    assert np.all(np.abs(np.diff(targets, axis=0)) <= np.array(vmax) / RATE_HZ + 1e-9)
    assert np.abs(np.diff(targets, axis=0)).max() > 0, "the policy moved the joints"
    held = targets[[r["t"] > killed_at + WATCHDOG_MS / 1e3 + SLACK_S for r in rows]]
    assert len(held) > 5 and np.all(held == held[0]), "joints must hold position after the watchdog"
    summary = finish(runner, processes, tmp_path)
    assert summary["policy_steps"] > 20 and summary["counts"]["stop_watchdog"] > 0


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_runner_stops_cleanly_on_signals_even_when_started_with_sigint_ignored(processes, tmp_path,
                                                                                signum):
    """A node started with SIGINT ignored (background job, some supervisors) still stops on
    SIGINT and SIGTERM and writes its summary (found when CI ran the suite as a background job)."""
    runner = start_runner(processes, tmp_path, duration_s=60.0, sigint_ignored=True)
    time.sleep(0.5)
    os.killpg(runner.pid, signum)
    runner.wait(timeout=30)
    assert runner.returncode == 0, processes.log("runner")
    summary = json.loads((tmp_path / "runner_logs" / "summary.json").read_text())
    assert summary["commands_sent"] > 0, "the watchdog publishes stops while no cloud arrives"
