"""numpy <-> ROS message conversion (pure Python + numpy; no ROS install needed).

Readers accept any message-like value: robokit's own dataclasses
(:mod:`robokit.ros.messages`), rosbags messages (ROS 1 or ROS 2 typestores),
genpy messages from rospy, or rosbridge JSON dicts (``uint8[]`` as base64 text,
stamps as ``secs/nsecs`` or ``sec/nanosec``). Writers return robokit dataclasses;
:mod:`robokit.ros.backends` turns those into any of the above.

Supported: ``sensor_msgs/PointCloud2`` (all eight PointField datatypes, ``count``
> 1, ``point_step`` / ``row_step`` padding, both byte orders, organised and
unorganised, ``is_dense``), ``sensor_msgs/Image`` (rgb8, bgr8, mono8, 16UC1 /
mono16, 32FC1), ``sensor_msgs/JointState``, ``geometry_msgs/Twist`` /
``TwistStamped`` and ``geometry_msgs/PoseStamped``, ``std_msgs`` scalars and
``Float32MultiArray``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import numpy as np

from robokit.ros import messages as m

# PointField datatype codes (sensor_msgs/PointField constants)
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = range(1, 9)
#: PointField datatype -> numpy scalar type (byte order applied separately)
POINTFIELD_DTYPES: dict[int, np.dtype] = {
    INT8: np.dtype(np.int8), UINT8: np.dtype(np.uint8), INT16: np.dtype(np.int16),
    UINT16: np.dtype(np.uint16), INT32: np.dtype(np.int32), UINT32: np.dtype(np.uint32),
    FLOAT32: np.dtype(np.float32), FLOAT64: np.dtype(np.float64),
}
_DATATYPE_OF_DTYPE = {dtype: code for code, dtype in POINTFIELD_DTYPES.items()}

#: Image encoding -> (numpy scalar type, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3), "bgr8": (np.dtype(np.uint8), 3),
    "mono8": (np.dtype(np.uint8), 1), "8UC1": (np.dtype(np.uint8), 1),
    "16UC1": (np.dtype(np.uint16), 1), "mono16": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
}


class MessageError(ValueError):
    """A message that cannot be converted; the text names the message type and field."""


# ---------------------------------------------------------------------------------------------
# duck-typed field access


def get_field(msg: Any, name: str, default: Any = ...) -> Any:
    """``msg.name`` for message objects, ``msg[name]`` for rosbridge dicts."""
    if isinstance(msg, dict):
        if name in msg:
            return msg[name]
    elif hasattr(msg, name):
        return getattr(msg, name)
    if default is ...:
        raise MessageError(f"{type(msg).__name__} message has no field '{name}'")
    return default


def stamp_to_ns(stamp: Any) -> int:
    """Nanoseconds from a ROS 2 (``sec/nanosec``), ROS 1 (``secs/nsecs``) or dict stamp."""
    if isinstance(stamp, int | np.integer):
        return int(stamp)
    for sec_name, ns_name in (("sec", "nanosec"), ("secs", "nsecs")):
        sec = get_field(stamp, sec_name, None)
        if sec is not None:
            return int(sec) * m.NS_PER_S + int(get_field(stamp, ns_name, 0))
    raise MessageError(f"cannot read a time stamp from {stamp!r}")


def header_stamp_ns(msg: Any) -> int | None:
    """The header stamp of ``msg`` in ns, or None if the message has no header."""
    header = get_field(msg, "header", None)
    return None if header is None else stamp_to_ns(get_field(header, "stamp"))


def as_bytes(data: Any) -> memoryview | bytes:
    """Raw bytes of a ``uint8[]`` field: bytes, numpy uint8 array, array('B'), list of ints or base64 text."""
    if isinstance(data, bytes | bytearray | memoryview):
        return memoryview(data)
    if isinstance(data, np.ndarray):
        return memoryview(np.ascontiguousarray(data, dtype=np.uint8)).cast("B")
    if isinstance(data, str):
        return base64.b64decode(data)
    try:   # array.array('B') (rclpy), or any other buffer
        return memoryview(data).cast("B")
    except TypeError:
        return bytes(bytearray(data))


def make_header(stamp_ns: int = 0, frame_id: str = "", seq: int = 0) -> m.Header:
    return m.Header(stamp=m.Time.from_ns(stamp_ns), frame_id=frame_id, seq=seq)


# ---------------------------------------------------------------------------------------------
# PointCloud2


def pointcloud2_dtype(fields: Sequence[Any], point_step: int, big_endian: bool) -> np.dtype:
    """Structured numpy dtype for one point: named fields at their offsets, itemsize = point_step.

    Fields with ``count > 1`` become sub-array fields of shape ``(count,)``.
    """
    order = ">" if big_endian else "<"
    names, formats, offsets = [], [], []
    for index, fld in enumerate(fields):
        name, datatype = get_field(fld, "name"), int(get_field(fld, "datatype"))
        count, offset = int(get_field(fld, "count", 1)), int(get_field(fld, "offset"))
        if datatype not in POINTFIELD_DTYPES:
            raise MessageError(f"PointCloud2 field {index} '{name}': unknown datatype {datatype}")
        if count < 1:
            # ROS publishers sometimes write count=0 for scalars; treat it as 1
            count = 1
        scalar = POINTFIELD_DTYPES[datatype].newbyteorder(order)
        size = scalar.itemsize * count
        if offset < 0 or offset + size > point_step:
            raise MessageError(f"PointCloud2 field '{name}' (offset {offset}, {size} bytes) "
                               f"does not fit in point_step {point_step}")
        names.append(name)
        formats.append(scalar if count == 1 else (scalar, (count,)))
        offsets.append(offset)
    if len(set(names)) != len(names):
        raise MessageError(f"PointCloud2 has duplicate field names {names}")
    return np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": point_step})


def pointcloud2_to_structured(msg: Any) -> np.ndarray:
    """Structured array of the cloud's points: shape (H, W) if organised (height > 1), else (W,).

    Honours ``point_step`` padding, ``row_step`` padding at row ends and the byte
    order. The result is a read-only view on the message bytes where possible.
    """
    height, width = int(get_field(msg, "height")), int(get_field(msg, "width"))
    point_step, row_step = int(get_field(msg, "point_step")), int(get_field(msg, "row_step"))
    dtype = pointcloud2_dtype(get_field(msg, "fields"), point_step,
                              bool(get_field(msg, "is_bigendian")))
    data = as_bytes(get_field(msg, "data"))
    if row_step < width * point_step:
        raise MessageError(f"PointCloud2 row_step {row_step} < width {width} * point_step {point_step}")
    if len(data) < height * row_step:
        raise MessageError(f"PointCloud2 data has {len(data)} bytes, expected height {height} * "
                           f"row_step {row_step} = {height * row_step} (truncated message)")
    raw = np.frombuffer(data, dtype=np.uint8, count=height * row_step).reshape(height, row_step)
    rows = raw[:, : width * point_step]
    if row_step != width * point_step:
        rows = np.ascontiguousarray(rows)
    points = rows.view(dtype).reshape(height, width)
    return points if height > 1 else points.reshape(width)


def pointcloud2_to_points(msg: Any, fields: Sequence[str] = ("x", "y", "z"),
                          remove_invalid: bool = True, keep_organised: bool = False) -> np.ndarray:
    """(N, C) float32 points with the named fields as columns, xyz first by convention.

    Args:
        msg: a PointCloud2 (any backend).
        fields: field names to take, in column order; a field with ``count > 1``
            contributes ``count`` columns.
        remove_invalid: drop points whose selected values are not finite (ROS marks
            invalid points with NaN when ``is_dense`` is false). Ignored when organised.
        keep_organised: return (H, W, C) for organised clouds instead of flattening.
    """
    cloud = pointcloud2_to_structured(msg)
    available = cloud.dtype.names or ()
    missing = [name for name in fields if name not in available]
    if missing:
        raise MessageError(f"PointCloud2 lacks field(s) {missing}; it has {list(available)}")
    points = _float32_columns_fast(cloud, fields)
    if points is None:
        columns = []
        for name in fields:
            column = cloud[name].astype(np.float32)
            columns.append(column if column.ndim == cloud.ndim + 1 else column[..., None])
        points = np.concatenate(columns, axis=-1) if columns else np.zeros(cloud.shape + (0,), np.float32)
    if keep_organised and cloud.ndim == 2:
        return points
    points = points.reshape(-1, points.shape[-1])
    if remove_invalid:
        valid = np.isfinite(points).all(axis=1)
        if not valid.all():
            points = points[valid]
    return np.ascontiguousarray(points)


def _float32_columns_fast(cloud: np.ndarray, fields: Sequence[str]) -> np.ndarray | None:
    """One gather instead of a copy per field, when every selected field is a scalar float32
    in native byte order and the point size is a multiple of 4 bytes (the common LiDAR layout)."""
    native = np.dtype(np.float32)
    offsets = []
    for name in fields:
        dtype, offset = cloud.dtype.fields[name][:2]
        if dtype != native or offset % 4:
            return None
        offsets.append(offset // 4)
    if cloud.dtype.itemsize % 4 or not fields:
        return None
    flat = cloud.reshape(-1)
    if not flat.flags.c_contiguous:
        return None
    words = flat.view(np.uint8).view(native).reshape(*cloud.shape, cloud.dtype.itemsize // 4)
    return words[..., offsets]


def _fields_for_columns(names: Sequence[str], dtypes: Sequence[np.dtype],
                        align: int) -> tuple[list[m.PointField], int]:
    """PointFields packed in order (each offset aligned to ``align`` bytes); returns (fields, used bytes)."""
    fields, offset = [], 0
    for name, dtype in zip(names, dtypes, strict=True):
        dtype = np.dtype(dtype)
        if dtype.newbyteorder("=") not in _DATATYPE_OF_DTYPE:
            raise MessageError(f"field '{name}': dtype {dtype} has no PointField datatype")
        offset = -(-offset // min(align, dtype.itemsize)) * min(align, dtype.itemsize)
        fields.append(m.PointField(name, offset, _DATATYPE_OF_DTYPE[dtype.newbyteorder("=")], 1))
        offset += dtype.itemsize
    return fields, offset


def points_to_pointcloud2(points: np.ndarray, field_names: Sequence[str] = ("x", "y", "z"),
                          dtypes: Sequence[Any] | None = None, *, big_endian: bool = False,
                          point_step: int | None = None, row_padding: int = 0,
                          stamp_ns: int = 0, frame_id: str = "", is_dense: bool | None = None,
                          align: int = 4) -> m.PointCloud2:
    """Pack (N, C) or organised (H, W, C) points into a PointCloud2.

    Args:
        points: numeric array; column ``i`` becomes field ``field_names[i]``.
        field_names: one name per column.
        dtypes: numpy dtype per column (default float32 for all; any of the eight
            PointField types: int8/uint8/int16/uint16/int32/uint32/float32/float64).
        big_endian: write big-endian data (``is_bigendian`` true).
        point_step: bytes per point; larger than the packed fields adds padding
            (e.g. 32 for the common x,y,z,_,intensity layout). Default: packed size
            rounded up to ``align``.
        row_padding: extra bytes at the end of each row (``row_step`` > width * point_step).
        is_dense: default: true iff every value is finite.
    """
    points = np.asarray(points)
    if points.ndim not in (2, 3):
        raise MessageError(f"points must be (N, C) or (H, W, C), got shape {points.shape}")
    height, width = (1, points.shape[0]) if points.ndim == 2 else points.shape[:2]
    channels = points.shape[-1]
    if len(field_names) != channels:
        raise MessageError(f"{len(field_names)} field names for {channels} columns")
    dtypes = [np.dtype(np.float32)] * channels if dtypes is None else [np.dtype(d) for d in dtypes]
    fields, used = _fields_for_columns(field_names, dtypes, align)
    point_step = point_step or -(-used // align) * align
    if point_step < used:
        raise MessageError(f"point_step {point_step} smaller than the {used} bytes of fields")
    order = ">" if big_endian else "<"
    struct = np.dtype({"names": list(field_names),
                       "formats": [d.newbyteorder(order) for d in dtypes],
                       "offsets": [f.offset for f in fields], "itemsize": point_step})
    row_step = width * point_step + row_padding
    buffer = np.zeros((height, row_step), dtype=np.uint8)
    cloud = buffer[:, : width * point_step].view(struct).reshape(height, width)
    flat = points.reshape(height, width, channels)
    for column, name in enumerate(field_names):
        cloud[name] = flat[..., column]
    if is_dense is None:
        is_dense = bool(np.isfinite(points.astype(np.float64, copy=False)).all())
    return m.PointCloud2(header=make_header(stamp_ns, frame_id), height=height, width=width,
                         fields=fields, is_bigendian=big_endian, point_step=point_step,
                         row_step=row_step, data=buffer.tobytes(), is_dense=is_dense)


def structured_to_pointcloud2(cloud: np.ndarray, *, stamp_ns: int = 0, frame_id: str = "",
                              is_dense: bool = True) -> m.PointCloud2:
    """PointCloud2 from a structured array (N,) or (H, W), keeping its offsets and itemsize."""
    if cloud.dtype.names is None:
        raise MessageError("structured_to_pointcloud2 needs a structured array (named fields)")
    cloud = cloud.reshape(1, -1) if cloud.ndim == 1 else cloud
    fields, orders = [], set()
    for name in cloud.dtype.names:
        sub, offset = cloud.dtype.fields[name][:2]
        base, count = (sub.base, int(np.prod(sub.shape))) if sub.shape else (sub, 1)
        if base.newbyteorder("=") not in _DATATYPE_OF_DTYPE:
            raise MessageError(f"field '{name}': dtype {base} has no PointField datatype")
        if base.itemsize > 1:
            orders.add(">" if base.byteorder == ">" or (base.byteorder == "=" and not _LITTLE) else "<")
        fields.append(m.PointField(name, offset, _DATATYPE_OF_DTYPE[base.newbyteorder("=")], count))
    if len(orders) > 1:
        raise MessageError("structured array mixes byte orders")
    height, width = cloud.shape
    return m.PointCloud2(header=make_header(stamp_ns, frame_id), height=height, width=width,
                         fields=fields, is_bigendian=orders == {">"},
                         point_step=cloud.dtype.itemsize, row_step=width * cloud.dtype.itemsize,
                         data=np.ascontiguousarray(cloud).tobytes(), is_dense=is_dense)


_LITTLE = np.little_endian


# ---------------------------------------------------------------------------------------------
# Image


def image_to_array(msg: Any) -> np.ndarray:
    """(H, W) or (H, W, 3) array from an Image; channel order as in the encoding (bgr8 stays BGR).

    Honours ``step`` (row padding) and ``is_bigendian`` for 16-bit and float images.
    """
    encoding = str(get_field(msg, "encoding"))
    if encoding not in IMAGE_ENCODINGS:
        raise MessageError(f"Image encoding '{encoding}' unsupported; use one of {sorted(IMAGE_ENCODINGS)}")
    scalar, channels = IMAGE_ENCODINGS[encoding]
    height, width, step = (int(get_field(msg, k)) for k in ("height", "width", "step"))
    scalar = scalar.newbyteorder(">" if get_field(msg, "is_bigendian", 0) else "<")
    row_bytes = width * channels * scalar.itemsize
    data = as_bytes(get_field(msg, "data"))
    if step < row_bytes:
        raise MessageError(f"Image step {step} < width {width} * {channels} * {scalar.itemsize}")
    if len(data) < height * step:
        raise MessageError(f"Image data has {len(data)} bytes, expected {height} * step {step}")
    rows = np.frombuffer(data, np.uint8, count=height * step).reshape(height, step)[:, :row_bytes]
    image = np.ascontiguousarray(rows).view(scalar).reshape(height, width, channels)
    image = image.astype(scalar.newbyteorder("="))
    return image[..., 0] if channels == 1 else image


def array_to_image(image: np.ndarray, encoding: str, *, stamp_ns: int = 0, frame_id: str = "",
                   big_endian: bool = False, row_padding: int = 0) -> m.Image:
    """Image message from (H, W) or (H, W, 3) data whose dtype matches ``encoding``."""
    if encoding not in IMAGE_ENCODINGS:
        raise MessageError(f"Image encoding '{encoding}' unsupported; use one of {sorted(IMAGE_ENCODINGS)}")
    scalar, channels = IMAGE_ENCODINGS[encoding]
    image = np.asarray(image)
    expected = (2, 3) if channels == 1 else (3,)
    if image.ndim not in expected or (channels == 3 and image.shape[-1] != 3):
        raise MessageError(f"encoding {encoding} needs {'(H, W)' if channels == 1 else '(H, W, 3)'} "
                           f"data, got shape {image.shape}")
    if image.dtype != scalar:
        raise MessageError(f"encoding {encoding} needs dtype {scalar}, got {image.dtype}")
    height, width = image.shape[:2]
    data = image.astype(scalar.newbyteorder(">" if big_endian else "<")).reshape(height, -1)
    data = data.view(np.uint8)
    if row_padding:
        data = np.concatenate([data, np.zeros((height, row_padding), np.uint8)], axis=1)
    return m.Image(header=make_header(stamp_ns, frame_id), height=height, width=width,
                   encoding=encoding, is_bigendian=int(big_endian), step=data.shape[1],
                   data=data.tobytes())


# ---------------------------------------------------------------------------------------------
# JointState, Twist, PoseStamped, std_msgs


def joint_state_to_arrays(msg: Any, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """``{"position", "velocity", "effort"}`` float64 arrays (J,), ordered as ``names`` if given.

    Empty velocity/effort lists (allowed by ROS) become NaN arrays of length J.
    """
    msg_names = [str(n) for n in get_field(msg, "name")]
    order = np.arange(len(msg_names))
    if names is not None:
        missing = [n for n in names if n not in msg_names]
        if missing:
            raise MessageError(f"JointState lacks joint(s) {missing}; it has {msg_names}")
        order = np.array([msg_names.index(n) for n in names], dtype=np.int64)
    out = {}
    for key in ("position", "velocity", "effort"):
        values = np.asarray(get_field(msg, key, []), dtype=np.float64)
        if values.size == 0:
            values = np.full(len(msg_names), np.nan)
        if values.shape != (len(msg_names),):
            raise MessageError(f"JointState.{key} has {values.size} values for {len(msg_names)} names")
        out[key] = values[order]
    return out


def arrays_to_joint_state(names: Sequence[str], position: Any = (), velocity: Any = (),
                          effort: Any = (), *, stamp_ns: int = 0, frame_id: str = "") -> m.JointState:
    arrays = [np.asarray(v, dtype=np.float64).ravel() for v in (position, velocity, effort)]
    for key, values in zip(("position", "velocity", "effort"), arrays, strict=True):
        if values.size not in (0, len(names)):
            raise MessageError(f"JointState.{key} has {values.size} values for {len(names)} joints")
    return m.JointState(make_header(stamp_ns, frame_id), [str(n) for n in names],
                        *(v.tolist() for v in arrays))


def _vector(msg: Any, keys: str = "xyz") -> list[float]:
    return [float(get_field(msg, k)) for k in keys]


def twist_to_array(msg: Any) -> np.ndarray:
    """(6,) float64 ``[vx, vy, vz, wx, wy, wz]`` (m/s, rad/s) from a Twist or TwistStamped."""
    twist = get_field(msg, "twist", msg)
    return np.array(_vector(get_field(twist, "linear")) + _vector(get_field(twist, "angular")))


def array_to_twist(values: Any) -> m.Twist:
    """Twist from ``[vx, vy, vz, wx, wy, wz]`` (6,)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.shape != (6,):
        raise MessageError(f"a Twist needs 6 values [vx vy vz wx wy wz], got shape {v.shape}")
    return m.Twist(m.Vector3(*map(float, v[:3])), m.Vector3(*map(float, v[3:])))


def array_to_twist_stamped(values: Any, *, stamp_ns: int = 0, frame_id: str = "") -> m.TwistStamped:
    return m.TwistStamped(make_header(stamp_ns, frame_id), array_to_twist(values))


def pose_to_array(msg: Any) -> np.ndarray:
    """(7,) float64 ``[x, y, z, qx, qy, qz, qw]`` from a Pose or PoseStamped."""
    pose = get_field(msg, "pose", msg)
    return np.array(_vector(get_field(pose, "position")) +
                    _vector(get_field(pose, "orientation"), "xyzw"))


def array_to_pose_stamped(values: Any, *, stamp_ns: int = 0, frame_id: str = "") -> m.PoseStamped:
    """PoseStamped from ``[x, y, z, qx, qy, qz, qw]`` (7,)."""
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.shape != (7,):
        raise MessageError(f"a PoseStamped needs 7 values [x y z qx qy qz qw], got shape {v.shape}")
    pose = m.Pose(m.Point(*map(float, v[:3])), m.Quaternion(*map(float, v[3:])))
    return m.PoseStamped(make_header(stamp_ns, frame_id), pose)


def multiarray_to_array(msg: Any) -> np.ndarray:
    """(N,) float32 from a Float32MultiArray / Float64MultiArray (layout ignored: data is flat)."""
    return np.asarray(get_field(msg, "data"), dtype=np.float32).ravel()


def array_to_float32_multiarray(values: Any, label: str = "") -> m.Float32MultiArray:
    flat = np.asarray(values, dtype=np.float32).ravel()
    dim = m.MultiArrayDimension(label=label, size=flat.size, stride=flat.size)
    return m.Float32MultiArray(m.MultiArrayLayout([dim], 0), flat.tolist())


def scalar_of(msg: Any) -> Any:
    """``msg.data`` for std_msgs scalars (Bool, Float32, UInt32 ...)."""
    return get_field(msg, "data")


# ---------------------------------------------------------------------------------------------
# navigation and sensor types read from recorded bags


def odometry_to_array(msg: Any) -> np.ndarray:
    """(13,) float64 ``[x y z qx qy qz qw vx vy vz wx wy wz]`` from a nav_msgs/Odometry
    (pose in ``header.frame_id``, twist in ``child_frame_id``, as the message defines them)."""
    return np.concatenate([pose_to_array(get_field(msg, "pose")),
                           twist_to_array(get_field(msg, "twist"))])


def imu_to_array(msg: Any) -> np.ndarray:
    """(10,) float64 ``[qx qy qz qw wx wy wz ax ay az]`` from a sensor_msgs/Imu (rad/s, m/s^2)."""
    return np.array(_vector(get_field(msg, "orientation"), "xyzw")
                    + _vector(get_field(msg, "angular_velocity"))
                    + _vector(get_field(msg, "linear_acceleration")))


def laser_scan_to_ranges(msg: Any) -> np.ndarray:
    """(N,) float32 ranges (m) of a sensor_msgs/LaserScan; a reading outside
    ``[range_min, range_max]`` or not finite (no return) becomes ``range_max``."""
    ranges = np.asarray(get_field(msg, "ranges"), dtype=np.float32).ravel()
    low, high = float(get_field(msg, "range_min")), float(get_field(msg, "range_max"))
    valid = np.isfinite(ranges) & (ranges >= low) & (ranges <= high)
    return np.where(valid, ranges, np.float32(high)).astype(np.float32)


def laser_scan_to_points(msg: Any) -> np.ndarray:
    """(M, 4) float32 ``x, y, 0, intensity`` of a LaserScan's valid returns, in the scan's frame
    (intensity 0 where the scan has none)."""
    ranges = np.asarray(get_field(msg, "ranges"), dtype=np.float32).ravel()
    angles = float(get_field(msg, "angle_min")) + float(get_field(msg, "angle_increment")) * np.arange(len(ranges))
    low, high = float(get_field(msg, "range_min")), float(get_field(msg, "range_max"))
    intensities = np.asarray(get_field(msg, "intensities", []), dtype=np.float32).ravel()
    if len(intensities) != len(ranges):
        intensities = np.zeros(len(ranges), np.float32)
    keep = np.isfinite(ranges) & (ranges >= low) & (ranges <= high)
    r, a = ranges[keep], angles[keep]
    return np.stack([r * np.cos(a), r * np.sin(a), np.zeros_like(r), intensities[keep]], axis=1).astype(np.float32)


def compressed_image_to_array(msg: Any) -> np.ndarray:
    """(H, W, 3) RGB or (H, W) grey uint8 (or uint16 for 16-bit PNG) from a
    sensor_msgs/CompressedImage (JPEG or PNG, decoded with Pillow)."""
    import io

    from robokit.optional import require

    image_module = require("PIL.Image", "ros")
    data = bytes(as_bytes(get_field(msg, "data")))
    try:
        image = image_module.open(io.BytesIO(data))
        image.load()
    except (OSError, ValueError) as err:
        raise MessageError(f"CompressedImage ({get_field(msg, 'format', '')!r}): cannot decode: {err}") from None
    if image.mode not in ("L", "RGB", "I;16"):
        image = image.convert("RGB")
    return np.asarray(image)


def navsat_fix_to_array(msg: Any) -> np.ndarray:
    """(3,) float64 ``[latitude, longitude, altitude]`` (degrees, degrees, metres) from a NavSatFix."""
    return np.array([float(get_field(msg, k)) for k in ("latitude", "longitude", "altitude")])


def find_transform(msg: Any, child_frame: str, parent_frame: str = "") -> Any | None:
    """The last TransformStamped of a tf2_msgs/TFMessage whose ``child_frame_id`` is ``child_frame``
    (and whose ``header.frame_id`` is ``parent_frame`` when given), or None. Leading '/' ignored."""
    found = None
    for transform in get_field(msg, "transforms"):
        child = str(get_field(transform, "child_frame_id")).lstrip("/")
        parent = str(get_field(get_field(transform, "header"), "frame_id")).lstrip("/")
        if child == child_frame.lstrip("/") and (not parent_frame or parent == parent_frame.lstrip("/")):
            found = transform
    return found


def transform_to_array(msg: Any) -> np.ndarray:
    """(7,) float64 ``[x y z qx qy qz qw]`` from a Transform or TransformStamped."""
    transform = get_field(msg, "transform", msg)
    return np.array(_vector(get_field(transform, "translation"))
                    + _vector(get_field(transform, "rotation"), "xyzw"))


def fields_to_array(msg: Any, paths: Sequence[str]) -> np.ndarray:
    """(K,) float32: the numeric fields at dotted ``paths`` (``pose.pose.position.x``), each a
    number or a numeric array (flattened), concatenated in order. Works for any message type,
    custom ones included."""
    values = []
    for path in paths:
        value = msg
        for name in path.split("."):
            value = get_field(value, name, None)
            if value is None:
                raise MessageError(f"{type(msg).__name__} message has no field '{path}'")
        try:
            array = np.asarray(value, dtype=np.float32).ravel()
        except (TypeError, ValueError):
            raise MessageError(f"field '{path}' is not numeric ({type(value).__name__})") from None
        values.append(array)
    return np.concatenate(values) if values else np.zeros(0, np.float32)
