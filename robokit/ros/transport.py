"""Live transports behind one interface: ROS 1 (rospy), rosbridge websocket (roslibpy), ROS 2 (rclpy).

A transport delivers incoming messages to callbacks as ``callback(msg, receive_ns)``
(``msg`` in the transport's native form, readable by :mod:`robokit.ros.convert`) and
publishes robokit message dataclasses (:mod:`robokit.ros.messages`).

rospy comes from Debian's ``python3-rospy`` in ``/usr/lib/python3/dist-packages``, a
folder a virtual environment does not see. :func:`import_rospy` appends that folder at
the END of ``sys.path`` (only when rospy is needed and not already importable), so the
venv's own numpy, yaml, ... still win over the Debian copies.
"""

from __future__ import annotations

import array
import os
import sys
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from robokit.optional import require

DEBIAN_PYTHON_PATH = "/usr/lib/python3/dist-packages"

Callback = Callable[[Any, int], None]


def import_rospy() -> Any:
    """Import rospy, falling back to Debian's copy appended at the end of ``sys.path``."""
    try:
        import rospy  # noqa: F401
    except ImportError:
        if os.path.isdir(DEBIAN_PYTHON_PATH) and DEBIAN_PYTHON_PATH not in sys.path:
            sys.path.append(DEBIAN_PYTHON_PATH)
    return require("rospy", "ros")


class Transport(ABC):
    """Publish/subscribe with ROS type names such as ``sensor_msgs/msg/PointCloud2``."""

    @abstractmethod
    def subscribe(self, topic: str, msgtype: str, callback: Callback) -> None: ...

    @abstractmethod
    def publisher(self, topic: str, msgtype: str, latch: bool = False) -> Callable[[Any], None]:
        """A function publishing one robokit message dataclass on ``topic``."""

    @abstractmethod
    def close(self) -> None: ...

    def is_shutdown(self) -> bool:
        return False


class Ros1Transport(Transport):
    """rospy: one node per process (rospy's rule), created on construction.

    Args:
        node_name: ROS node name (made unique with a suffix when ``anonymous``).
        master_uri: overrides ``ROS_MASTER_URI`` when given.
        buff_size: receive buffer per subscription; large so a 120k-point cloud (~2 MB)
            arrives in one read (rospy's 64 KiB default adds latency on big messages).
    """

    def __init__(self, node_name: str = "robokit_policy", anonymous: bool = True,
                 master_uri: str | None = None, buff_size: int = 1 << 24) -> None:
        if master_uri:
            os.environ["ROS_MASTER_URI"] = master_uri
        self.rospy = import_rospy()
        self.rospy.init_node(node_name, anonymous=anonymous, disable_signals=True)
        self.buff_size = buff_size
        self._handles: list[Any] = []

    def subscribe(self, topic: str, msgtype: str, callback: Callback) -> None:
        from robokit.ros.backends import genpy_class

        def on_message(msg: Any) -> None:
            callback(msg, time.time_ns())

        self._handles.append(self.rospy.Subscriber(
            topic, genpy_class(msgtype), on_message, queue_size=1, buff_size=self.buff_size,
            tcp_nodelay=True))

    def publisher(self, topic: str, msgtype: str, latch: bool = False) -> Callable[[Any], None]:
        from robokit.ros.backends import genpy_class, to_genpy

        pub = self.rospy.Publisher(topic, genpy_class(msgtype), queue_size=1, latch=latch,
                                   tcp_nodelay=True)
        self._handles.append(pub)
        return lambda msg: pub.publish(to_genpy(msg))

    def is_shutdown(self) -> bool:
        return bool(self.rospy.is_shutdown())

    def close(self) -> None:
        for handle in self._handles:
            handle.unregister()
        self._handles.clear()
        self.rospy.signal_shutdown("robokit transport closed")


class RosbridgeTransport(Transport):
    """rosbridge v2 JSON over a websocket (roslibpy); serves ROS 1 and ROS 2 robots alike.

    Args:
        host, port: the rosbridge server (``rosbridge_websocket``, port 9090 by default).
        ros_version: 1 or 2: spelling of type names and stamps on the wire.
        timeout_s: how long to wait for the connection.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 9090, ros_version: int = 1,
                 timeout_s: float = 10.0) -> None:
        self.roslibpy = require("roslibpy", "ros")
        self.ros_version = ros_version
        self.ros = self.roslibpy.Ros(host=host, port=port)
        self.ros.run(timeout=timeout_s)
        self._topics: list[Any] = []

    def subscribe(self, topic: str, msgtype: str, callback: Callback) -> None:
        from robokit.ros.backends import rosbridge_type

        handle = self.roslibpy.Topic(self.ros, topic, rosbridge_type(msgtype, self.ros_version),
                                     queue_length=1)
        handle.subscribe(lambda msg: callback(msg, time.time_ns()))
        self._topics.append(handle)

    def publisher(self, topic: str, msgtype: str, latch: bool = False) -> Callable[[Any], None]:
        from robokit.ros.backends import rosbridge_type, to_rosbridge

        handle = self.roslibpy.Topic(self.ros, topic, rosbridge_type(msgtype, self.ros_version),
                                     latch=latch, queue_size=1)
        handle.advertise()
        self._topics.append(handle)
        return lambda msg: handle.publish(self.roslibpy.Message(to_rosbridge(msg, self.ros_version)))

    def is_shutdown(self) -> bool:
        return not self.ros.is_connected

    def close(self) -> None:
        for handle in self._topics:
            if handle.is_advertised:
                handle.unadvertise()
            if handle.is_subscribed:
                handle.unsubscribe()
        self._topics.clear()
        self.ros.close()


class Ros2Transport(Transport):
    """Thin rclpy adapter for ROS 2 machines.

    Not tested against ROS 2 here: no ROS 2 install is available on the build machines.
    It relies only on rclpy's stable API (init, create_node, create_subscription/publisher,
    a spinning executor thread) and the same message mapping as the other transports; a
    test checks that mapping and wiring against stand-ins shaped like rclpy and its
    generated message classes.
    """

    def __init__(self, node_name: str = "robokit_policy") -> None:
        self.rclpy = require("rclpy", "ros")
        executors = require("rclpy.executors", "ros")
        if not self.rclpy.ok():
            self.rclpy.init()
        self.node = self.rclpy.create_node(node_name)
        self.executor = executors.SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self._thread = threading.Thread(target=self.executor.spin, daemon=True)
        self._thread.start()

    def subscribe(self, topic: str, msgtype: str, callback: Callback) -> None:
        self.node.create_subscription(_rclpy_class(msgtype), topic,
                                      lambda msg: callback(msg, time.time_ns()), 1)

    def publisher(self, topic: str, msgtype: str, latch: bool = False) -> Callable[[Any], None]:
        qos: Any = 1
        if latch:
            from rclpy.qos import DurabilityPolicy, QoSProfile
            qos = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        pub = self.node.create_publisher(_rclpy_class(msgtype), topic, qos)
        return lambda msg: pub.publish(_to_rclpy(msg))

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        if self.rclpy.ok():
            self.rclpy.shutdown()


def _rclpy_class(msgtype: str) -> type:
    import importlib

    from robokit.ros.messages import ros2_type_name

    package, _, name = ros2_type_name(msgtype).split("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def _to_rclpy(msg: Any) -> Any:
    """rclpy message from a robokit dataclass (fields share names with ROS 2)."""
    import dataclasses

    out = _rclpy_class(msg.MSGTYPE)()
    for fld in dataclasses.fields(msg):
        value = getattr(msg, fld.name)
        if not hasattr(out, fld.name):
            continue  # Header.seq does not exist in ROS 2
        if dataclasses.is_dataclass(value):
            value = _to_rclpy(value)
        elif isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
            value = [_to_rclpy(v) for v in value]
        elif isinstance(value, bytes | bytearray):
            # rclpy stores uint8[] as array('B'); handing one over skips a per-byte check
            value = array.array("B", value)
        setattr(out, fld.name, value)
    return out


TRANSPORTS = ("ros1", "rosbridge", "ros2")


def make_transport(name: str, **options: Any) -> Transport:
    """``ros1`` | ``rosbridge`` | ``ros2`` transport with backend-specific ``options``."""
    if name == "ros1":
        return Ros1Transport(**options)
    if name == "rosbridge":
        return RosbridgeTransport(**options)
    if name == "ros2":
        return Ros2Transport(**options)
    raise ValueError(f"unknown transport {name!r}; choose one of {TRANSPORTS}")
