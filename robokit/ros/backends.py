"""Turn robokit message dataclasses into backend messages: rosbags, genpy (rospy), rosbridge JSON.

Reading needs no adapter: :mod:`robokit.ros.convert` reads any of these forms.
"""

from __future__ import annotations

import base64
import dataclasses
import importlib
from typing import Any

import numpy as np

from robokit.ros import messages as m

_NUMPY_OF_ROS_BASE = {
    "bool": np.bool_, "int8": np.int8, "uint8": np.uint8, "byte": np.uint8, "char": np.uint8,
    "int16": np.int16, "uint16": np.uint16, "int32": np.int32, "uint32": np.uint32,
    "int64": np.int64, "uint64": np.uint64, "float32": np.float32, "float64": np.float64,
}


def _own_fields(msg: Any) -> dict[str, Any]:
    return {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}


# ---------------------------------------------------------------------------------------------
# rosbags (serialisation to ROS 2 CDR and ROS 1 wire format, bag files)


def to_rosbags(msg: Any, typestore: Any) -> Any:
    """The rosbags message of ``typestore`` (ROS 1 or ROS 2 store) with ``msg``'s values.

    Fields the target lacks (e.g. ``Header.seq`` in ROS 2) are dropped; fields ours
    lacks (``Header.seq`` in a ROS 1 store) get zero.
    """
    return _rosbags_value(msg, msg.MSGTYPE, typestore)


def rosbags_message(msgtype: str, values: dict[str, Any] | None, typestore: Any) -> Any:
    """The rosbags message ``msgtype`` (any type the typestore knows, custom ones included) from
    nested dicts of field values; fields not given are zero (empty strings and sequences)."""
    return _rosbags_value(values, msgtype, typestore)


def _rosbags_value(msg: Any, msgtype: str, typestore: Any) -> Any:
    from rosbags.typesys.base import Nodetype

    cls = typestore.types[msgtype]
    _, fielddefs = typestore.fielddefs[msgtype]
    values = _own_fields(msg) if dataclasses.is_dataclass(msg) else dict(msg or {})
    kwargs = {}
    for name, (node, spec) in fielddefs:
        value = values.get(name)
        if node == Nodetype.NAME:
            kwargs[name] = _rosbags_value(value, spec, typestore)
        elif node in (Nodetype.SEQUENCE, Nodetype.ARRAY):
            (inner_node, inner_spec), length = spec
            if value is None and node == Nodetype.ARRAY:     # fixed-size array not given: zeros
                value = [None] * length if inner_node == Nodetype.NAME else np.zeros(length)
            if inner_node == Nodetype.NAME:
                kwargs[name] = [_rosbags_value(v, inner_spec, typestore) for v in (value or [])]
            elif inner_spec[0] == "string":
                kwargs[name] = [str(v) for v in (value or [])]
            else:
                dtype = _NUMPY_OF_ROS_BASE[inner_spec[0]]
                raw = value if value is not None else []
                kwargs[name] = (np.frombuffer(raw, dtype=dtype).copy()
                                if isinstance(raw, bytes | bytearray | memoryview)
                                else np.asarray(raw, dtype=dtype))
        else:
            kwargs[name] = _rosbags_scalar(value, spec[0])
    return cls(**kwargs)


def _rosbags_scalar(value: Any, base: str) -> Any:
    if base == "string":
        return "" if value is None else str(value)
    if value is None:
        value = 0
    if base == "bool":
        return bool(value)
    return float(value) if base.startswith("float") else int(value)


# ---------------------------------------------------------------------------------------------
# genpy (rospy, ROS 1)


def genpy_class(msgtype: str) -> type:
    """The genpy class for ``sensor_msgs/msg/PointCloud2`` or ``sensor_msgs/PointCloud2``."""
    package, _, name = m.ros1_type_name(msgtype).partition("/")
    return getattr(importlib.import_module(f"{package}.msg"), name)


def to_genpy(msg: Any) -> Any:
    """A genpy message (ROS 1, rospy) with ``msg``'s values; needs rospy importable."""
    import genpy

    if isinstance(msg, m.Time):
        return genpy.Time(msg.sec, msg.nanosec)
    cls = genpy_class(msg.MSGTYPE)
    values = _own_fields(msg)
    kwargs = {}
    for name, slot_type in zip(cls.__slots__, cls._slot_types, strict=True):
        value = values.get(name)
        if value is None:
            continue
        if dataclasses.is_dataclass(value):
            kwargs[name] = to_genpy(value)
        elif isinstance(value, list) and value and dataclasses.is_dataclass(value[0]):
            kwargs[name] = [to_genpy(v) for v in value]
        elif slot_type == "uint8[]":
            kwargs[name] = bytes(value)
        else:
            kwargs[name] = value
    return cls(**kwargs)


# ---------------------------------------------------------------------------------------------
# rosbridge v2 JSON


def to_rosbridge(msg: Any, ros_version: int = 1) -> dict[str, Any]:
    """A rosbridge JSON dict: ``uint8[]`` as base64 text, stamps as secs/nsecs (ROS 1) or sec/nanosec."""
    if isinstance(msg, m.Time):
        return {"secs": msg.sec, "nsecs": msg.nanosec} if ros_version == 1 else \
            {"sec": msg.sec, "nanosec": msg.nanosec}
    out: dict[str, Any] = {}
    for name, value in _own_fields(msg).items():
        if name == "seq" and ros_version != 1:
            continue
        if dataclasses.is_dataclass(value):
            out[name] = to_rosbridge(value, ros_version)
        elif isinstance(value, bytes | bytearray | memoryview):
            out[name] = base64.b64encode(bytes(value)).decode("ascii")
        elif isinstance(value, list):
            out[name] = [to_rosbridge(v, ros_version) if dataclasses.is_dataclass(v) else v
                         for v in value]
        else:
            out[name] = value
    return out


def rosbridge_type(msgtype: str, ros_version: int = 1) -> str:
    """Type name as rosbridge expects it: ``sensor_msgs/PointCloud2`` (ROS 1) or ``.../msg/...``."""
    return m.ros1_type_name(msgtype) if ros_version == 1 else m.ros2_type_name(msgtype)
