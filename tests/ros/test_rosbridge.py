"""The rosbridge transport (roslibpy, real websocket client) against a local rosbridge v2 server.

Debian has no rosbridge_server package and no other server runs here, so the server is the
small stand-in in tests/ros/fake_rosbridge.py (a broker for the rosbridge v2 topic
operations on 127.0.0.1 that also plays the robot). Everything on the robokit side is real:
`robokit ros run --transport rosbridge`, roslibpy, twisted, a torch policy.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml
from ros_processes import free_port, stop_process

SERVER = Path(__file__).with_name("fake_rosbridge.py")


def test_policy_runs_over_rosbridge_and_stops_when_clouds_stop(tmp_path):
    port, record = free_port(), tmp_path / "commands.jsonl"
    config = {"rate_hz": 20, "observations": [{"key": "points", "topic": "/points", "type": "pointcloud2"}],
              "command": {"topic": "/cmd_vel", "type": "twist", "axes": ["vx", "wz"]},
              "safety": {"max_linear_speed": 0.3, "max_angular_speed": 0.8, "watchdog_ms": 300,
                         "stale_ms": 1000}}
    (tmp_path / "runner.yaml").write_text(yaml.safe_dump(config))
    logs = {name: open(tmp_path / f"{name}.log", "w") for name in ("server", "runner")}
    server = subprocess.Popen([sys.executable, str(SERVER), "--port", str(port), "--record", str(record),
                               "--cloud-rate", "20", "--cloud-seconds", "3"],
                              stdout=logs["server"], stderr=subprocess.STDOUT, start_new_session=True)
    runner = None
    try:
        deadline = time.monotonic() + 30
        while "listening" not in (tmp_path / "server.log").read_text():
            assert server.poll() is None and time.monotonic() < deadline, (tmp_path / "server.log").read_text()
            time.sleep(0.05)
        runner = subprocess.Popen(
            [sys.executable, "-m", "robokit", "ros", "run", "--config", str(tmp_path / "runner.yaml"),
             "--policy", "robokit.ros.policies:PointCloudTwistPolicy", "--transport", "rosbridge",
             "--port", str(port), "--duration-s", "60", "--log-dir", str(tmp_path / "logs")],
            stdout=logs["runner"], stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy())
        deadline = time.monotonic() + 60
        while "clouds stopped" not in (tmp_path / "server.log").read_text():
            assert runner.poll() is None, (tmp_path / "runner.log").read_text()
            assert time.monotonic() < deadline, "the fake robot never finished publishing"
            time.sleep(0.1)
        clouds_stopped = float((tmp_path / "server.log").read_text().split("clouds stopped")[1].split()[0])
        time.sleep(1.0)
        os.killpg(runner.pid, signal.SIGINT)
        assert runner.wait(timeout=30) == 0, (tmp_path / "runner.log").read_text()
    finally:
        for proc in (runner, server):
            if proc is not None:
                stop_process(proc)
        for log in logs.values():
            log.close()
    rows = [json.loads(line) for line in record.read_text().splitlines()]
    assert {row["type"] for row in rows} == {"geometry_msgs/Twist"}
    twists = np.array([[r["msg"]["linear"]["x"], r["msg"]["angular"]["z"]] for r in rows])
    times = np.array([r["t"] for r in rows])
    moving = np.abs(twists).sum(axis=1) > 0
    assert moving.sum() >= 20, "the policy's commands reached the robot over rosbridge"
    assert np.abs(twists[:, 0]).max() <= 0.3 + 1e-9 and np.abs(twists[:, 1]).max() <= 0.8 + 1e-9
    assert not moving[times > clouds_stopped + 0.3 + 0.25].any(), "no stop after the clouds ended"
    summary = json.loads((tmp_path / "logs" / "summary.json").read_text())
    assert summary["counts"]["stop_watchdog"] > 0
