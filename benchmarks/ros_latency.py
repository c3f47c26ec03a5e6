"""Observation-to-command latency through ROS 1 with a 120k-point cloud, at 10 Hz and 50 Hz.

Setup (all real, on one machine, loopback): a roscore on a free port; a publisher node sending
sensor_msgs/PointCloud2 with 120,000 points (x, y, z, intensity float32, point_step 16:
1.92 MB per message) stamped with its wall-clock send time; the node under test; a recorder
node that subscribes to the node's output and logs ``receive time - header.stamp``.

Nodes under test:

- ``robokit``: ``robokit ros run --transport ros1`` with ``trigger: observation`` (a policy step
  on each new cloud), command type ``twist_stamped`` carrying the cloud's stamp. Per message it
  decodes the cloud to (N, 3) float32, screens it (NaN, stale, order), runs the policy
  (``PointCloudTwistPolicy``: a small random PointNet on a strided subsample of 8,192 points,
  1 torch thread), applies the safety layer and publishes.
- peer ``rospy_relay_stamp``: a plain rospy node that only republishes: on each cloud it
  publishes a TwistStamped with the cloud's stamp (the floor: one 1.92 MB hop + one tiny hop).
- peer ``rospy_relay_cloud``: a plain rospy relay republishing the cloud itself (two 1.92 MB hops).

All subscribers use ``buff_size`` 16 MiB and ``tcp_nodelay`` (rospy's 64 KiB default adds
latency on large messages). Lower is better; the headline is the p50 latency at 50 Hz, ratio =
best peer / robokit (below 1: robokit is slower than a bare relay, as it must be).

Usage: ``python benchmarks/ros_latency.py [--quick]``; the last line is the benchmark JSON.
``--quick`` measures 4 s per condition, the full run 15 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
NUM_POINTS = 120_000
BUFF_SIZE = 1 << 24
WARMUP_S = 1.5


# --------------------------------------------------------------------------- nodes (subprocess roles)
def _rospy():
    sys.path.append("/usr/lib/python3/dist-packages")
    import rospy

    return rospy


def role_publisher(rate_hz: float) -> None:
    rospy = _rospy()
    from sensor_msgs.msg import PointCloud2, PointField
    from std_msgs.msg import Header

    rospy.init_node("bench_publisher", anonymous=True)
    pub = rospy.Publisher("/points", PointCloud2, queue_size=1, tcp_nodelay=True)
    rng = np.random.default_rng(0)
    clouds = [(rng.normal(size=(NUM_POINTS, 4)) * 10).astype("<f4").tobytes() for _ in range(4)]
    fields = [PointField(n, 4 * i, PointField.FLOAT32, 1) for i, n in enumerate(("x", "y", "z", "intensity"))]
    rate = rospy.Rate(rate_hz)
    index = 0
    while not rospy.is_shutdown():
        msg = PointCloud2(header=Header(frame_id="lidar"), height=1, width=NUM_POINTS, fields=fields,
                          is_bigendian=False, point_step=16, row_step=16 * NUM_POINTS,
                          data=clouds[index % 4], is_dense=True)
        msg.header.stamp = rospy.Time.from_sec(time.time())
        pub.publish(msg)
        index += 1
        rate.sleep()


def role_relay(kind: str) -> None:
    rospy = _rospy()
    from geometry_msgs.msg import TwistStamped
    from sensor_msgs.msg import PointCloud2

    rospy.init_node(f"bench_relay_{kind}", anonymous=True)
    if kind == "cloud":
        pub = rospy.Publisher("/out_cloud", PointCloud2, queue_size=1, tcp_nodelay=True)
        callback = pub.publish
    else:
        pub = rospy.Publisher("/cmd", TwistStamped, queue_size=1, tcp_nodelay=True)

        def callback(msg):
            out = TwistStamped()
            out.header.stamp = msg.header.stamp
            pub.publish(out)
    rospy.Subscriber("/points", PointCloud2, callback, queue_size=1, buff_size=BUFF_SIZE, tcp_nodelay=True)
    print("relay ready", flush=True)
    rospy.spin()


def role_recorder(topic: str, out: str) -> None:
    rospy = _rospy()
    from geometry_msgs.msg import TwistStamped
    from sensor_msgs.msg import PointCloud2

    rospy.init_node("bench_recorder", anonymous=True)
    handle = open(out, "a", buffering=1)

    def on_message(msg) -> None:
        handle.write(f"{time.time()} {msg.header.stamp.to_sec()}\n")

    msg_class = PointCloud2 if topic == "/out_cloud" else TwistStamped
    rospy.Subscriber(topic, msg_class, on_message, queue_size=10, buff_size=BUFF_SIZE, tcp_nodelay=True)
    rospy.spin()


# --------------------------------------------------------------------------- orchestration
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    """roscore plus nodes, every process in its own group, all stopped on exit."""

    def __init__(self, workdir: Path) -> None:
        port = _free_port()
        self.workdir = workdir
        self.env = {**os.environ, "ROS_MASTER_URI": f"http://127.0.0.1:{port}", "ROS_IP": "127.0.0.1",
                    "ROS_HOME": str(workdir / "ros_home"), "PYTHONUNBUFFERED": "1"}
        self.procs: list[subprocess.Popen] = []
        core = self.start("roscore", ["roscore", "-p", str(port)])
        deadline = time.monotonic() + 30
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            if core.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("roscore did not start: " + self.log("roscore"))
            time.sleep(0.1)
        time.sleep(1.0)

    def start(self, name: str, args: list[str]) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "w")  # noqa: SIM115
        proc = subprocess.Popen(args, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, cwd=REPO_ROOT)
        self.procs.append(proc)
        return proc

    def role(self, name: str, *args: str) -> subprocess.Popen:
        return self.start(name, [sys.executable, __file__, "--role", *args])

    def log(self, name: str) -> str:
        return (self.workdir / f"{name}.log").read_text()

    def wait_for(self, name: str, text: str, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while text not in self.log(name):
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name} not ready: {self.log(name)[-2000:]}")
            time.sleep(0.1)

    @staticmethod
    def stop(proc: subprocess.Popen) -> None:
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGINT)
                proc.wait(timeout=10)
            except (subprocess.TimeoutExpired, ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()

    def stop_nodes(self, keep: int = 1) -> None:
        while len(self.procs) > keep:
            self.stop(self.procs.pop())

    def close(self) -> None:
        self.stop_nodes(keep=0)


def _robokit_config(path: Path, rate_hz: float) -> Path:
    import yaml

    config = {"rate_hz": rate_hz, "trigger": "observation",
              "observations": [{"key": "points", "topic": "/points", "type": "pointcloud2",
                                "fields": ["x", "y", "z"]}],
              "command": {"topic": "/cmd", "type": "twist_stamped", "axes": ["vx", "wz"]},
              "safety": {"watchdog_ms": 1000, "stale_ms": 1000}}
    path.write_text(yaml.safe_dump(config))
    return path


def measure(cluster: Cluster, node: str, rate_hz: float, seconds: float) -> tuple[np.ndarray, float]:
    """Latencies (ms) of one node under test at one publish rate, and the rate of distinct
    observations that came out (Hz): below the publish rate means messages were skipped."""
    out = cluster.workdir / f"lat_{node}_{rate_hz:g}.txt"
    if node == "robokit":
        cluster.start("robokit", [sys.executable, "-m", "robokit", "ros", "run", "--config",
                                  str(_robokit_config(cluster.workdir / "runner.yaml", rate_hz)),
                                  "--policy", "benchmarks.ros_latency:make_policy", "--transport", "ros1"])
        cluster.wait_for("robokit", "running policy")
        topic = "/cmd"
    else:
        kind = node.rsplit("_", 1)[1]
        cluster.role(f"relay_{kind}", "relay", kind)
        cluster.wait_for(f"relay_{kind}", "relay ready")
        topic = "/out_cloud" if kind == "cloud" else "/cmd"
    cluster.role("recorder", "recorder", topic, str(out))
    time.sleep(1.0)
    cluster.role("publisher", "publisher", str(rate_hz))
    time.sleep(WARMUP_S + seconds)
    cluster.stop_nodes()
    rows = np.loadtxt(out, ndmin=2) if out.exists() and out.stat().st_size else np.zeros((0, 2))
    if len(rows) == 0:
        raise RuntimeError(f"no output from {node} at {rate_hz} Hz")
    rows = rows[rows[:, 1] >= rows[0, 1] + WARMUP_S]
    span = rows[-1, 1] - rows[0, 1]
    # drop repeated commands (same observation stamp): they measure nothing new
    _, first = np.unique(rows[:, 1], return_index=True)
    rows = rows[np.sort(first)]
    latency_ms = (rows[:, 0] - rows[:, 1]) * 1e3
    return latency_ms, (len(rows) - 1) / span if span > 0 else 0.0


def make_policy():
    """The benchmark's policy: PointCloudTwistPolicy on a strided 8,192-point subsample."""
    from robokit.ros.policies import PointCloudTwistPolicy

    return PointCloudTwistPolicy(max_points=8192)


def stage_costs_ms(repeats: int = 20) -> dict[str, float]:
    """Median in-process cost of robokit's per-message stages on one 120k-point cloud."""
    import torch

    from robokit.ros import convert
    from robokit.ros.safety import SafetyLayer, SafetyLimits

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    msg = convert.points_to_pointcloud2((rng.normal(size=(NUM_POINTS, 4)) * 10).astype(np.float32),
                                        ("x", "y", "z", "intensity"))
    policy, safety = make_policy(), SafetyLayer(SafetyLimits())
    points = convert.pointcloud2_to_points(msg)
    stages = {"decode": lambda: convert.pointcloud2_to_points(msg),
              "screen": lambda: safety.screen_observation("points", points, None, 0),
              "policy": lambda: policy.act(points)}
    costs = {}
    for name, stage in stages.items():
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            stage()
            times.append(time.perf_counter() - start)
        costs[name] = float(np.median(times) * 1e3)
    return costs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--role", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role:
        name, *rest = args.role
        {"publisher": lambda: role_publisher(float(rest[0])), "relay": lambda: role_relay(rest[0]),
         "recorder": lambda: role_recorder(rest[0], rest[1])}[name]()
        return
    if shutil.which("roscore") is None:
        print(json.dumps({"benchmark": "ros_latency", "unit": "ms", "higher_is_better": False,
                          "robokit": None, "peers": {}, "ratio": None, "bound": None,
                          "notes": "skipped: ROS 1 (roscore, python3-rospy) not installed"}))
        return
    seconds = 4.0 if args.quick else 15.0
    nodes = ("robokit", "rospy_relay_stamp", "rospy_relay_cloud")
    results: dict[tuple[str, float], tuple[np.ndarray, float]] = {}
    with tempfile.TemporaryDirectory(prefix="ros_latency_") as tmp:
        cluster = Cluster(Path(tmp))
        try:
            for rate_hz in (10.0, 50.0):
                for node in nodes:
                    results[node, rate_hz] = measure(cluster, node, rate_hz, seconds)
        finally:
            cluster.close()
    print(f"{'node':<20} {'rate':>5} {'msgs':>5} {'p50 ms':>8} {'p99 ms':>8} {'out Hz':>8}")
    stats = {}
    for (node, rate_hz), (lat, out_hz) in results.items():
        p50, p99 = np.percentile(lat, 50), np.percentile(lat, 99)
        stats[node, rate_hz] = (p50, p99)
        print(f"{node:<20} {rate_hz:>5g} {len(lat):>5} {p50:>8.2f} {p99:>8.2f} {out_hz:>8.1f}")
    costs = stage_costs_ms()
    print("robokit per-message stages in-process (median ms): "
          + ", ".join(f"{k} {v:.2f}" for k, v in costs.items()))
    headline = {node: round(float(stats[node, 50.0][0]), 3) for node in nodes}
    peers = {k: v for k, v in headline.items() if k != "robokit"}
    detail = "; ".join(f"{node} {rate:g}Hz p50 {p50:.2f} p99 {p99:.2f}" for (node, rate), (p50, p99) in stats.items())
    print(json.dumps({
        "benchmark": "ros_latency", "unit": "ms (p50 obs->command @50 Hz)", "higher_is_better": False,
        "robokit": headline["robokit"], "peers": peers,
        "ratio": round(min(peers.values()) / headline["robokit"], 3), "bound": None,
        "notes": f"ROS 1 loopback, 120k-point PointCloud2 (1.92 MB), {seconds:g} s per condition, "
                 f"robokit policy on an 8192-point subsample, 1 torch thread; {detail}; in-process stage "
                 f"medians: " + ", ".join(f"{k} {v:.2f} ms" for k, v in costs.items())}))


if __name__ == "__main__":
    main()
