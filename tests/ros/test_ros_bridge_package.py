"""The ROS package in ros_bridge/: package.xml, launch file and node entry point, run by roslaunch."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "ros_bridge"


def ros_env(base: dict[str, str]) -> dict[str, str]:
    """ROS_PACKAGE_PATH finds robokit_bridge; the venv's python3 comes first on PATH so the
    node's `#!/usr/bin/env python3` runs where robokit is installed."""
    return {**base, "ROS_PACKAGE_PATH": str(PACKAGE),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{base.get('PATH', '')}"}


def test_package_manifest_and_configs_are_valid():
    manifest = ET.parse(PACKAGE / "package.xml").getroot()
    assert manifest.get("format") == "2" and manifest.findtext("name") == "robokit_bridge"
    depends = {e.text for e in manifest.findall("exec_depend")}
    assert {"rospy", "sensor_msgs", "geometry_msgs", "std_msgs"} <= depends
    assert os.access(PACKAGE / "scripts" / "policy_node", os.X_OK)
    from robokit.ros.bags import load_bag_config
    from robokit.ros.config import load_runner_config

    runner = load_runner_config(PACKAGE / "config" / "example.yaml")
    assert runner.command.axes == ("vx", "wz") and runner.safety.watchdog_ms == 250
    assert load_bag_config(PACKAGE / "config" / "bag_example.yaml").tolerance_ms == 30


@pytest.mark.ros
@pytest.mark.skipif(shutil.which("roslaunch") is None, reason="roslaunch (Debian ros-core) not installed")
def test_roslaunch_resolves_the_node_command_line(tmp_path):
    env = ros_env({**os.environ, "ROS_HOME": str(tmp_path)})
    out = subprocess.run(["roslaunch", "--args", "/robokit_policy", "robokit_bridge", "policy_node.launch",
                          "checkpoint:=/data/agent.pt", "cmd_topic:=/base/cmd_vel"],
                         env=env, capture_output=True, text=True, check=True).stdout
    assert str(PACKAGE / "scripts" / "policy_node") in out
    assert "--checkpoint /data/agent.pt" in out and "--policy" not in out
    assert "/cmd_vel:=/base/cmd_vel" in out


@pytest.mark.ros
def test_roslaunch_runs_the_policy_node_on_a_live_roscore(processes, tmp_path):
    config = yaml.safe_load((PACKAGE / "config" / "example.yaml").read_text())
    config["observations"][0].update(topic="/points", min_points=16)
    (tmp_path / "runner.yaml").write_text(yaml.safe_dump(config))
    commands = tmp_path / "commands.jsonl"
    processes.env = ros_env(processes.env)
    processes.node("recorder", "record", "--topic", "/base/cmd_vel", "--out", str(commands))
    processes.start("roslaunch", ["roslaunch", "robokit_bridge", "policy_node.launch",
                                  f"config:={tmp_path / 'runner.yaml'}", f"log_dir:={tmp_path / 'logs'}",
                                  "cmd_topic:=/base/cmd_vel"])
    processes.node("cloud", "cloud", "--rate", "20", "--points", "1000", "--warmup", "2.0")
    deadline = time.monotonic() + 60
    rows: list[str] = []
    while len(rows) < 30:
        assert time.monotonic() < deadline, processes.log("roslaunch")
        rows = commands.read_text().splitlines() if commands.exists() else []
        time.sleep(0.2)
    assert any('"v": [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]' not in row for row in rows), "policy commands arrive"
