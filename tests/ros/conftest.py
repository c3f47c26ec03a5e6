"""Fixtures for the ROS tests: a real roscore on a free loopback port, and process cleanup."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ros_processes import free_port, stop_process, wait_for_port

NODES = Path(__file__).with_name("nodes.py")


class Processes:
    """Starts subprocesses in their own process groups and stops every one of them at teardown."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env, self.log_dir, self.procs = env, log_dir, []

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.log_dir / f"{name}.log", "w")  # noqa: SIM115 - closed with the process
        proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        proc.log_file = log  # type: ignore[attr-defined]
        self.procs.append(proc)
        return proc

    def node(self, name: str, *args: str) -> subprocess.Popen:
        return self.start(name, [sys.executable, str(NODES), *args])

    def robokit(self, name: str, *args: str) -> subprocess.Popen:
        return self.start(name, [sys.executable, "-m", "robokit", *args])

    def log(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text() if path.exists() else ""

    def stop_all(self) -> None:
        for proc in reversed(self.procs):
            stop_process(proc)
            proc.log_file.close()  # type: ignore[attr-defined]
        self.procs.clear()


@pytest.fixture(scope="session")
def roscore(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A real roscore on 127.0.0.1:<free port>; yields the environment for ROS subprocesses."""
    if shutil.which("roscore") is None or not Path("/usr/lib/python3/dist-packages/rospy").is_dir():
        pytest.skip("ROS 1 (roscore, python3-rospy) is not installed; `make system-deps` installs it")
    port = free_port()
    ros_home = tmp_path_factory.mktemp("ros_home")
    env = {**os.environ, "ROS_MASTER_URI": f"http://127.0.0.1:{port}", "ROS_IP": "127.0.0.1",
           "ROS_HOME": str(ros_home), "ROS_LOG_DIR": str(ros_home / "log"), "PYTHONUNBUFFERED": "1"}
    env.pop("ROS_HOSTNAME", None)
    log = open(ros_home / "roscore.log", "w")  # noqa: SIM115
    proc = subprocess.Popen(["roscore", "-p", str(port)], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for_port(port, 30.0, proc)
        time.sleep(1.0)   # rosout and the parameter server come up just after the port opens
        yield env
    finally:
        stop_process(proc, timeout_s=10.0)
        log.close()


@pytest.fixture
def processes(roscore: dict[str, str], tmp_path: Path) -> Iterator[Processes]:
    procs = Processes(roscore, tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()
