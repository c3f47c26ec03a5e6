"""Plain-Python mirrors of the ROS messages robokit reads and writes.

These dataclasses carry exactly the fields of the ROS 2 message definitions
(ROS 1 adds ``Header.seq``, kept here with default 0), so the same value can be
handed to any backend: :mod:`robokit.ros.backends` turns them into rosbags
messages (ROS 1 / ROS 2 serialisation), genpy messages (rospy) or rosbridge
JSON dicts. No ROS install is needed to build or convert them.

``MSGTYPE`` on each class is the ROS 2 type name (``pkg/msg/Name``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

NS_PER_S = 1_000_000_000


@dataclass
class Time:
    """A ROS time stamp: whole seconds and nanoseconds (``0 <= nanosec < 1e9``)."""

    sec: int = 0
    nanosec: int = 0
    MSGTYPE = "builtin_interfaces/msg/Time"

    @classmethod
    def from_ns(cls, ns: int) -> Time:
        return cls(sec=int(ns) // NS_PER_S, nanosec=int(ns) % NS_PER_S)

    @classmethod
    def from_sec(cls, seconds: float) -> Time:
        return cls.from_ns(round(seconds * NS_PER_S))

    def to_ns(self) -> int:
        return self.sec * NS_PER_S + self.nanosec


@dataclass
class Header:
    stamp: Time = field(default_factory=Time)
    frame_id: str = ""
    seq: int = 0
    MSGTYPE = "std_msgs/msg/Header"


@dataclass
class PointField:
    """One channel of a PointCloud2: ``datatype`` is one of the ``POINTFIELD_*`` codes."""

    name: str
    offset: int
    datatype: int
    count: int = 1
    MSGTYPE = "sensor_msgs/msg/PointField"


@dataclass
class PointCloud2:
    header: Header
    height: int
    width: int
    fields: list[PointField]
    is_bigendian: bool
    point_step: int
    row_step: int
    data: bytes
    is_dense: bool
    MSGTYPE = "sensor_msgs/msg/PointCloud2"


@dataclass
class Image:
    header: Header
    height: int
    width: int
    encoding: str
    is_bigendian: int
    step: int
    data: bytes
    MSGTYPE = "sensor_msgs/msg/Image"


@dataclass
class JointState:
    header: Header
    name: list[str]
    position: list[float]
    velocity: list[float]
    effort: list[float]
    MSGTYPE = "sensor_msgs/msg/JointState"


@dataclass
class Vector3:
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    MSGTYPE = "geometry_msgs/msg/Vector3"


@dataclass
class Twist:
    """Linear velocity (m/s) and angular velocity (rad/s) in the robot's base frame."""

    linear: Vector3 = field(default_factory=Vector3)
    angular: Vector3 = field(default_factory=Vector3)
    MSGTYPE = "geometry_msgs/msg/Twist"


@dataclass
class TwistStamped:
    header: Header = field(default_factory=Header)
    twist: Twist = field(default_factory=Twist)
    MSGTYPE = "geometry_msgs/msg/TwistStamped"


@dataclass
class Point:
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    MSGTYPE = "geometry_msgs/msg/Point"


@dataclass
class Quaternion:
    x: float = 0.0
    y: float = 0.0
    z: float = 0.0
    w: float = 1.0
    MSGTYPE = "geometry_msgs/msg/Quaternion"


@dataclass
class Pose:
    position: Point = field(default_factory=Point)
    orientation: Quaternion = field(default_factory=Quaternion)
    MSGTYPE = "geometry_msgs/msg/Pose"


@dataclass
class PoseStamped:
    header: Header = field(default_factory=Header)
    pose: Pose = field(default_factory=Pose)
    MSGTYPE = "geometry_msgs/msg/PoseStamped"


@dataclass
class Bool:
    data: bool = False
    MSGTYPE = "std_msgs/msg/Bool"


@dataclass
class Float32:
    data: float = 0.0
    MSGTYPE = "std_msgs/msg/Float32"


@dataclass
class UInt32:
    data: int = 0
    MSGTYPE = "std_msgs/msg/UInt32"


@dataclass
class MultiArrayDimension:
    label: str = ""
    size: int = 0
    stride: int = 0
    MSGTYPE = "std_msgs/msg/MultiArrayDimension"


@dataclass
class MultiArrayLayout:
    dim: list[MultiArrayDimension] = field(default_factory=list)
    data_offset: int = 0
    MSGTYPE = "std_msgs/msg/MultiArrayLayout"


@dataclass
class Float32MultiArray:
    layout: MultiArrayLayout = field(default_factory=MultiArrayLayout)
    data: list[float] = field(default_factory=list)
    MSGTYPE = "std_msgs/msg/Float32MultiArray"


@dataclass
class Float64MultiArray:
    layout: MultiArrayLayout = field(default_factory=MultiArrayLayout)
    data: list[float] = field(default_factory=list)
    MSGTYPE = "std_msgs/msg/Float64MultiArray"


#: every message class above, by ROS 2 type name
MESSAGE_CLASSES: dict[str, type] = {
    cls.MSGTYPE: cls
    for cls in (Time, Header, PointField, PointCloud2, Image, JointState, Vector3, Twist,
                TwistStamped, Point, Quaternion, Pose, PoseStamped, Bool, Float32, UInt32,
                MultiArrayDimension, MultiArrayLayout, Float32MultiArray, Float64MultiArray)
}


def ros1_type_name(msgtype: str) -> str:
    """``sensor_msgs/msg/PointCloud2`` -> ``sensor_msgs/PointCloud2`` (ROS 1 spelling)."""
    package, _, name = msgtype.rpartition("/")
    return f"{package.split('/')[0]}/{name}"


def ros2_type_name(msgtype: str) -> str:
    """``sensor_msgs/PointCloud2`` or ``sensor_msgs/msg/PointCloud2`` -> ``sensor_msgs/msg/PointCloud2``."""
    parts = msgtype.split("/")
    return msgtype if len(parts) == 3 else f"{parts[0]}/msg/{parts[-1]}"
