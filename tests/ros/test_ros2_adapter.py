"""The thin rclpy transport, against stand-ins: no ROS 2 install can run here.

This is a mock at a boundary that cannot be reached on the build machines: ``rclpy`` and the
generated ROS 2 message classes are replaced by small stand-ins with the same surface
(``rclpy.ok/init/create_node/shutdown``, ``rclpy.executors.SingleThreadedExecutor``, node
``create_subscription/create_publisher``, message classes with ROS 2 field names and
``array('B')`` for ``uint8[]``). It checks robokit's side only: the wiring and the mapping
of robokit messages to ROS 2 fields (no ``Header.seq``). Real ROS 2 behaviour is not tested.
"""

from __future__ import annotations

import array
import sys
import time
import types

import numpy as np
import pytest

from robokit.ros import convert, transport
from robokit.ros.config import parse_runner_config
from robokit.ros.runner import PolicyRunner

# ROS 2 field layouts (names only) of the messages used here, as rosidl generates them
ROS2_FIELDS = {
    "builtin_interfaces/msg/Time": ("sec", "nanosec"),
    "std_msgs/msg/Header": ("stamp", "frame_id"),
    "std_msgs/msg/Bool": ("data",),
    "geometry_msgs/msg/Vector3": ("x", "y", "z"),
    "geometry_msgs/msg/Twist": ("linear", "angular"),
    "geometry_msgs/msg/TwistStamped": ("header", "twist"),
    "sensor_msgs/msg/PointField": ("name", "offset", "datatype", "count"),
    "sensor_msgs/msg/PointCloud2": ("header", "height", "width", "fields", "is_bigendian",
                                    "point_step", "row_step", "data", "is_dense"),
}


def fake_message_class(msgtype: str) -> type:
    fields = ROS2_FIELDS[msgtype]

    def __init__(self, **kwargs):
        for name in fields:
            setattr(self, name, kwargs.get(name))

    def __setattr__(self, name, value):
        if name not in fields:
            raise AttributeError(f"{msgtype} has no field {name!r}")   # like rosidl's __slots__
        object.__setattr__(self, name, value)

    return type(msgtype.rsplit("/", 1)[-1], (), {"__init__": __init__, "__setattr__": __setattr__,
                                                 "FIELDS": fields})


class FakeNode:
    def __init__(self) -> None:
        self.subscriptions, self.published = {}, []

    def create_subscription(self, cls, topic, callback, qos):
        self.subscriptions[topic] = (cls, callback)

    def create_publisher(self, cls, topic, qos):
        node = self
        return types.SimpleNamespace(publish=lambda msg: node.published.append((topic, msg)))

    def destroy_node(self):
        pass


@pytest.fixture
def fake_rclpy(monkeypatch):
    classes = {name: fake_message_class(name) for name in ROS2_FIELDS}
    node = FakeNode()
    state = {"ok": False}
    rclpy = types.ModuleType("rclpy")
    rclpy.ok = lambda: state["ok"]
    rclpy.init = lambda: state.update(ok=True)
    rclpy.shutdown = lambda: state.update(ok=False)
    rclpy.create_node = lambda name: node
    executors = types.ModuleType("rclpy.executors")
    executors.SingleThreadedExecutor = lambda: types.SimpleNamespace(
        add_node=lambda n: None, spin=lambda: None, shutdown=lambda: None)
    monkeypatch.setitem(sys.modules, "rclpy", rclpy)
    monkeypatch.setitem(sys.modules, "rclpy.executors", executors)
    monkeypatch.setattr(transport, "_rclpy_class", lambda msgtype: classes[msgtype])
    return node, classes


def test_ros2_transport_wires_the_runner_and_maps_fields(fake_rclpy):
    node, classes = fake_rclpy
    config = parse_runner_config({
        "rate_hz": 20, "observations": [{"key": "points", "topic": "/points", "type": "pointcloud2"}],
        "command": {"topic": "/cmd_vel", "type": "twist_stamped", "axes": ["vx", "wz"], "frame_id": "base"},
        "safety": {"max_linear_accel": 100.0, "max_angular_accel": 100.0}})
    ros2 = transport.make_transport("ros2")
    runner = PolicyRunner(lambda_policy(), ros2, config)
    assert set(node.subscriptions) == {"/points", "/robokit/estop"}

    # an incoming ROS 2 cloud as rclpy delivers it: uint8[] as array('B'), stamp sec/nanosec
    ours = convert.points_to_pointcloud2(np.full((8, 3), 0.2, np.float32), stamp_ns=time.time_ns())
    cls, callback = node.subscriptions["/points"]
    incoming = cls(header=classes["std_msgs/msg/Header"](
        stamp=classes["builtin_interfaces/msg/Time"](sec=ours.header.stamp.sec,
                                                    nanosec=ours.header.stamp.nanosec), frame_id="lidar"),
        height=1, width=8, fields=[classes["sensor_msgs/msg/PointField"](name=f.name, offset=f.offset,
                                                                           datatype=f.datatype, count=1)
                                   for f in ours.fields],
        is_bigendian=False, point_step=ours.point_step, row_step=ours.row_step,
        data=array.array("B", ours.data), is_dense=True)
    callback(incoming)
    runner.step(time.time_ns() + 50_000_000)

    topic, sent = node.published[-1]
    assert topic == "/cmd_vel" and type(sent).__name__ == "TwistStamped"
    assert sent.header.frame_id == "base" and not hasattr(sent.header, "seq")
    assert sent.header.stamp.sec == ours.header.stamp.sec           # the cloud's stamp travels on
    assert sent.twist.linear.x == pytest.approx(0.2) and sent.twist.angular.z == pytest.approx(0.4)
    ros2.close()


def test_ros2_uint8_arrays_are_handed_over_as_array_b(fake_rclpy):
    cloud = convert.points_to_pointcloud2(np.zeros((2, 3), np.float32))
    out = transport._to_rclpy(cloud)
    assert isinstance(out.data, array.array) and out.data.typecode == "B"
    assert bytes(out.data) == cloud.data and out.fields[0].name == "x"


def lambda_policy():
    class MeanPolicy:
        def act(self, obs, deterministic=True):
            return np.array([obs[:, 0].mean(), 2 * obs[:, 1].mean()], np.float32)

    return MeanPolicy()
