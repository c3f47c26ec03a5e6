"""Test ROS 1 nodes run as subprocesses (plain rospy + numpy, independent of robokit.ros).

    python tests/ros/nodes.py cloud  --topic /points --rate 20 --points 2000 --nan-after 1.5 --log FILE
    python tests/ros/nodes.py record --topic /cmd_vel --type twist --out FILE.jsonl
    python tests/ros/nodes.py estop  --topic /robokit/estop --at 1.5 --release-at 2.0
    python tests/ros/nodes.py joints --topic /joint_states --rate 20

Each writes JSON lines with wall-clock times (time.time()) so the test can line up events.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

sys.path.append("/usr/lib/python3/dist-packages")   # Debian's rospy, after the venv's packages

import rospy  # noqa: E402
from geometry_msgs.msg import Twist, TwistStamped  # noqa: E402
from sensor_msgs.msg import JointState, PointCloud2, PointField  # noqa: E402
from std_msgs.msg import Bool, Header  # noqa: E402


def make_cloud(points: np.ndarray, stamp: rospy.Time) -> PointCloud2:
    """x, y, z float32 + 4 padding bytes per point (point_step 16), little endian."""
    packed = np.zeros(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("pad", "<u4")])
    packed["x"], packed["y"], packed["z"] = points[:, 0], points[:, 1], points[:, 2]
    fields = [PointField(name, 4 * i, PointField.FLOAT32, 1) for i, name in enumerate("xyz")]
    return PointCloud2(header=Header(stamp=stamp, frame_id="lidar"), height=1, width=len(points),
                       fields=fields, is_bigendian=False, point_step=16, row_step=16 * len(points),
                       data=packed.tobytes(), is_dense=bool(np.isfinite(points).all()))


def run_cloud(args: argparse.Namespace) -> None:
    pub = rospy.Publisher(args.topic, PointCloud2, queue_size=1, tcp_nodelay=True)
    rng = np.random.default_rng(0)
    log = open(args.log, "a", buffering=1) if args.log else None
    time.sleep(args.warmup)        # let subscribers connect
    start = time.time()
    rate = rospy.Rate(args.rate)
    nan_logged = False
    while not rospy.is_shutdown():
        elapsed = time.time() - start
        if args.stop_after is not None and elapsed > args.stop_after:
            break
        points = rng.normal(size=(args.points, 3)).astype(np.float32) * 5.0
        if args.nan_after is not None and elapsed >= args.nan_after:
            points[:] = np.nan
            if not nan_logged and log:
                log.write(json.dumps({"event": "nan_start", "t": time.time()}) + "\n")
                nan_logged = True
        stamp = rospy.Time.from_sec(time.time())
        pub.publish(make_cloud(points, stamp))
        if log:
            log.write(json.dumps({"event": "pub", "t": stamp.to_sec()}) + "\n")
        rate.sleep()


def run_joints(args: argparse.Namespace) -> None:
    """JointState for joints j1, j2: position 0.4 sin(t), velocity its derivative."""
    pub = rospy.Publisher(args.topic, JointState, queue_size=1, tcp_nodelay=True)
    time.sleep(args.warmup)
    start = time.time()
    rate = rospy.Rate(args.rate)
    while not rospy.is_shutdown():
        t = time.time() - start
        msg = JointState(name=["j2", "j1"], position=[0.4 * np.cos(t), 0.4 * np.sin(t)],
                         velocity=[-0.4 * np.sin(t), 0.4 * np.cos(t)], effort=[])
        msg.header.stamp = rospy.Time.from_sec(time.time())
        pub.publish(msg)
        rate.sleep()


def run_record(args: argparse.Namespace) -> None:
    out = open(args.out, "a", buffering=1)
    if args.type == "joint_state":
        def on_joints(msg) -> None:
            row = {"t": time.time(), "names": list(msg.name), "v": list(msg.position)}
            out.write(json.dumps(row) + "\n")

        rospy.Subscriber(args.topic, JointState, on_joints, queue_size=100, tcp_nodelay=True)
        rospy.spin()
        return
    msg_class = TwistStamped if args.type == "twist_stamped" else Twist

    def on_message(msg) -> None:
        now = time.time()
        twist = msg.twist if args.type == "twist_stamped" else msg
        row = {"t": now, "v": [twist.linear.x, twist.linear.y, twist.linear.z,
                               twist.angular.x, twist.angular.y, twist.angular.z]}
        if args.type == "twist_stamped":
            row["stamp"] = msg.header.stamp.to_sec()
        out.write(json.dumps(row) + "\n")

    rospy.Subscriber(args.topic, msg_class, on_message, queue_size=100, tcp_nodelay=True)
    rospy.spin()


def run_estop(args: argparse.Namespace) -> None:
    pub = rospy.Publisher(args.topic, Bool, queue_size=1, latch=True)
    log = open(args.log, "a", buffering=1) if args.log else None
    start = time.time()
    for at, value in ((args.at, True), (args.release_at, False)):
        if at is None:
            continue
        time.sleep(max(0.0, start + at - time.time()))
        pub.publish(Bool(data=value))
        if log:
            log.write(json.dumps({"event": f"estop_{value}", "t": time.time()}) + "\n")
    rospy.spin()


def main() -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="role", required=True)
    cloud = sub.add_parser("cloud")
    cloud.add_argument("--topic", default="/points")
    cloud.add_argument("--rate", type=float, default=20.0)
    cloud.add_argument("--points", type=int, default=2000)
    cloud.add_argument("--nan-after", type=float)
    cloud.add_argument("--stop-after", type=float)
    cloud.add_argument("--warmup", type=float, default=0.5)
    cloud.add_argument("--log")
    joints = sub.add_parser("joints")
    joints.add_argument("--topic", default="/joint_states")
    joints.add_argument("--rate", type=float, default=20.0)
    joints.add_argument("--warmup", type=float, default=0.5)
    record = sub.add_parser("record")
    record.add_argument("--topic", default="/cmd_vel")
    record.add_argument("--type", default="twist")
    record.add_argument("--out", required=True)
    estop = sub.add_parser("estop")
    estop.add_argument("--topic", default="/robokit/estop")
    estop.add_argument("--at", type=float)
    estop.add_argument("--release-at", type=float)
    estop.add_argument("--log")
    args = parser.parse_args()
    rospy.init_node(f"test_{args.role}", anonymous=True, disable_signals=False)
    {"cloud": run_cloud, "joints": run_joints, "record": run_record, "estop": run_estop}[args.role](args)


if __name__ == "__main__":
    main()
