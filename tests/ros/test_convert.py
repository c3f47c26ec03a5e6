"""numpy <-> ROS message conversion: round trips, hand-packed bytes, rosbags (CDR + ROS 1), genpy."""

from __future__ import annotations

import io
import struct
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robokit.ros import backends, convert
from robokit.ros import messages as m
from robokit.ros.convert import MessageError

ALL_DTYPES = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.float32, np.float64]


@pytest.fixture(scope="module")
def typestores():
    from rosbags.typesys import Stores, get_typestore

    return {"ros2": get_typestore(Stores.ROS2_HUMBLE), "ros1": get_typestore(Stores.ROS1_NOETIC)}


def through_rosbags(msg, typestore, ros1: bool):
    """Serialise with rosbags (ROS 1 wire format or ROS 2 CDR) and deserialise again."""
    native = backends.to_rosbags(msg, typestore)
    if ros1:
        return typestore.deserialize_ros1(typestore.serialize_ros1(native, msg.MSGTYPE), msg.MSGTYPE)
    return typestore.deserialize_cdr(typestore.serialize_cdr(native, msg.MSGTYPE), msg.MSGTYPE)


def random_columns(rng: np.random.Generator, n: int, dtypes) -> np.ndarray:
    columns = []
    for dtype in dtypes:
        if np.issubdtype(dtype, np.integer):
            info = np.iinfo(dtype)
            columns.append(rng.integers(info.min, info.max, size=n, endpoint=True).astype(np.float64))
        else:
            columns.append(rng.normal(size=n).astype(dtype).astype(np.float64))
    return np.stack(columns, axis=1)


# ---------------------------------------------------------------------------------------------
# PointCloud2


@pytest.mark.parametrize("big_endian", [False, True])
def test_pointcloud2_every_datatype_round_trips_exactly(big_endian):
    rng = np.random.default_rng(0)
    names = [f"c{i}" for i in range(len(ALL_DTYPES))]
    values = random_columns(rng, 50, ALL_DTYPES)
    msg = convert.points_to_pointcloud2(values, names, ALL_DTYPES, big_endian=big_endian,
                                        point_step=64, row_padding=7)
    assert msg.point_step == 64 and msg.row_step == 50 * 64 + 7 and msg.is_bigendian == big_endian
    assert [f.datatype for f in msg.fields] == list(range(1, 9))
    cloud = convert.pointcloud2_to_structured(msg)
    for name, dtype, column in zip(names, ALL_DTYPES, values.T, strict=True):
        np.testing.assert_array_equal(cloud[name].astype(np.float64), column.astype(dtype))


def test_pointcloud2_decoder_matches_hand_packed_bytes():
    """A big-endian cloud packed with struct (not numpy): x,y,z float32, ring uint16 at 16, t float64 at 24."""
    points = [(1.5, -2.0, 3.25, 7, 0.125), (-0.5, 4.0, 1e-3, 65535, -8.0)]
    point_step, row = 32, b""
    for x, y, z, ring, t in points:
        packed = bytearray(point_step)
        struct.pack_into(">fff", packed, 0, x, y, z)
        struct.pack_into(">H", packed, 16, ring)
        struct.pack_into(">d", packed, 24, t)
        row += bytes(packed)
    fields = [m.PointField("x", 0, convert.FLOAT32), m.PointField("y", 4, convert.FLOAT32),
              m.PointField("z", 8, convert.FLOAT32), m.PointField("ring", 16, convert.UINT16),
              m.PointField("t", 24, convert.FLOAT64)]
    msg = m.PointCloud2(m.Header(), 1, 2, fields, True, point_step, len(row), row, True)
    out = convert.pointcloud2_to_points(msg, ("x", "y", "z", "ring", "t"))
    np.testing.assert_allclose(out, np.array(points, dtype=np.float32))


def test_organised_cloud_keeps_rows_and_columns():
    rng = np.random.default_rng(1)
    grid = rng.normal(size=(4, 6, 3)).astype(np.float32)
    grid[1, 2] = np.nan                                   # an invalid return, as drivers write it
    msg = convert.points_to_pointcloud2(grid, ("x", "y", "z"), row_padding=12)
    assert (msg.height, msg.width, msg.is_dense) == (4, 6, False)
    organised = convert.pointcloud2_to_points(msg, keep_organised=True)
    np.testing.assert_array_equal(organised, grid)
    flat = convert.pointcloud2_to_points(msg)
    assert flat.shape == (23, 3)                          # the NaN point is removed
    assert np.isfinite(flat).all()


def test_field_with_count_greater_than_one():
    cloud = np.zeros(5, dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "u1", (3,))])
    cloud["x"] = np.arange(5)
    cloud["rgb"] = np.arange(15).reshape(5, 3)
    msg = convert.structured_to_pointcloud2(cloud)
    assert msg.fields[3].count == 3 and msg.fields[3].datatype == convert.UINT8
    out = convert.pointcloud2_to_points(msg, ("x", "rgb"))
    np.testing.assert_array_equal(out, np.column_stack([np.arange(5), np.arange(15).reshape(5, 3)]))


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 40), channels=st.integers(3, 6), big_endian=st.booleans(),
       extra_step=st.integers(0, 9), padding=st.integers(0, 5), seed=st.integers(0, 2**31))
def test_pointcloud2_round_trip_property(n, channels, big_endian, extra_step, padding, seed):
    rng = np.random.default_rng(seed)
    dtypes = [np.float32] * 3 + [ALL_DTYPES[i] for i in rng.integers(0, 8, size=channels - 3)]
    values = random_columns(rng, n, dtypes)
    names = [f"f{i}" for i in range(channels)]
    packed = convert.points_to_pointcloud2(values, names, dtypes, big_endian=big_endian,
                                           row_padding=padding)
    msg = convert.points_to_pointcloud2(values, names, dtypes, big_endian=big_endian,
                                        point_step=packed.point_step + extra_step, row_padding=padding)
    cloud = convert.pointcloud2_to_structured(msg)
    for name, dtype, column in zip(names, dtypes, values.T, strict=True):
        np.testing.assert_array_equal(cloud[name], column.astype(dtype))


@pytest.mark.parametrize("store", ["ros2", "ros1"])
def test_pointcloud2_through_rosbags_serialisation(typestores, store):
    rng = np.random.default_rng(2)
    points = rng.normal(size=(100, 4)).astype(np.float32)
    msg = convert.points_to_pointcloud2(points, ("x", "y", "z", "intensity"), big_endian=True,
                                        point_step=32, stamp_ns=1_700_000_000_123_456_789,
                                        frame_id="velodyne")
    back = through_rosbags(msg, typestores[store], ros1=store == "ros1")
    np.testing.assert_array_equal(convert.pointcloud2_to_points(back, ("x", "y", "z", "intensity")), points)
    assert convert.header_stamp_ns(back) == 1_700_000_000_123_456_789
    assert back.header.frame_id == "velodyne"


def test_pointcloud2_through_rosbridge_json():
    points = np.random.default_rng(3).normal(size=(10, 3)).astype(np.float32)
    msg = convert.points_to_pointcloud2(points, stamp_ns=5 * 10**9 + 7)
    for version in (1, 2):
        as_json = backends.to_rosbridge(msg, version)
        assert isinstance(as_json["data"], str)             # uint8[] travels as base64
        np.testing.assert_array_equal(convert.pointcloud2_to_points(as_json), points)
        assert convert.header_stamp_ns(as_json) == 5 * 10**9 + 7


def test_pointcloud2_bad_input_is_named():
    msg = convert.points_to_pointcloud2(np.zeros((4, 3), np.float32))
    truncated = m.PointCloud2(**{**msg.__dict__, "data": msg.data[:-1]})
    with pytest.raises(MessageError, match="truncated"):
        convert.pointcloud2_to_points(truncated)
    outside = m.PointCloud2(**{**msg.__dict__, "fields": [m.PointField("x", 10, convert.FLOAT32)]})
    with pytest.raises(MessageError, match="does not fit in point_step"):
        convert.pointcloud2_to_points(outside, ("x",))
    unknown = m.PointCloud2(**{**msg.__dict__, "fields": [m.PointField("x", 0, 42)]})
    with pytest.raises(MessageError, match="unknown datatype 42"):
        convert.pointcloud2_to_points(unknown, ("x",))
    with pytest.raises(MessageError, match=r"lacks field\(s\) \['intensity'\]"):
        convert.pointcloud2_to_points(msg, ("x", "y", "z", "intensity"))
    with pytest.raises(MessageError, match="shape"):
        convert.points_to_pointcloud2(np.zeros(5, np.float32))


# ---------------------------------------------------------------------------------------------
# Image, JointState, Twist, PoseStamped


@pytest.mark.parametrize("encoding,shape,dtype", [
    ("rgb8", (5, 7, 3), np.uint8), ("bgr8", (5, 7, 3), np.uint8), ("mono8", (5, 7), np.uint8),
    ("16UC1", (5, 7), np.uint16), ("32FC1", (5, 7), np.float32)])
@pytest.mark.parametrize("big_endian", [False, True])
def test_image_round_trips(typestores, encoding, shape, dtype, big_endian):
    rng = np.random.default_rng(4)
    image = (rng.normal(size=shape) * 100).astype(dtype) if dtype == np.float32 else \
        rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True).astype(dtype)
    msg = convert.array_to_image(image, encoding, big_endian=big_endian, row_padding=3)
    assert msg.step == shape[1] * (shape[2] if len(shape) == 3 else 1) * np.dtype(dtype).itemsize + 3
    np.testing.assert_array_equal(convert.image_to_array(msg), image)
    for store in ("ros2", "ros1"):
        back = through_rosbags(msg, typestores[store], ros1=store == "ros1")
        np.testing.assert_array_equal(convert.image_to_array(back), image)


def test_image_channel_order_is_kept_and_bad_input_named():
    image = np.zeros((1, 1, 3), np.uint8)
    image[0, 0] = (10, 20, 30)
    bgr = convert.array_to_image(image, "bgr8")
    assert bytes(bgr.data) == bytes([10, 20, 30])
    with pytest.raises(MessageError, match="unsupported"):
        convert.array_to_image(image, "yuv422")
    with pytest.raises(MessageError, match="dtype uint16"):
        convert.array_to_image(image[..., 0], "16UC1")
    short = m.Image(**{**bgr.__dict__, "data": b"\x00"})
    with pytest.raises(MessageError, match="expected"):
        convert.image_to_array(short)


def test_joint_state_twist_pose(typestores):
    joint_msg = convert.arrays_to_joint_state(["a", "b", "c"], [0.1, -0.2, 0.3], [1, 2, 3],
                                              stamp_ns=42)
    for store in ("ros2", "ros1"):
        back = through_rosbags(joint_msg, typestores[store], ros1=store == "ros1")
        arrays = convert.joint_state_to_arrays(back, ["c", "a"])
        np.testing.assert_array_equal(arrays["position"], [0.3, 0.1])
        np.testing.assert_array_equal(arrays["velocity"], [3, 1])
        assert np.isnan(arrays["effort"]).all()          # empty effort list -> NaN, not zeros
    with pytest.raises(MessageError, match=r"lacks joint\(s\) \['z'\]"):
        convert.joint_state_to_arrays(joint_msg, ["z"])

    twist = np.array([0.5, 0.0, 0.0, 0.0, 0.1, -1.2])
    for store in ("ros2", "ros1"):
        back = through_rosbags(convert.array_to_twist(twist), typestores[store], ros1=store == "ros1")
        np.testing.assert_array_equal(convert.twist_to_array(back), twist)
        stamped = through_rosbags(convert.array_to_twist_stamped(twist, stamp_ns=9), typestores[store],
                                  ros1=store == "ros1")
        np.testing.assert_array_equal(convert.twist_to_array(stamped), twist)
    with pytest.raises(MessageError, match="6 values"):
        convert.array_to_twist([1.0, 2.0])

    pose = np.array([1.0, 2.0, 3.0, 0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5)])
    for store in ("ros2", "ros1"):
        back = through_rosbags(convert.array_to_pose_stamped(pose, frame_id="map", stamp_ns=3),
                               typestores[store], ros1=store == "ros1")
        np.testing.assert_array_equal(convert.pose_to_array(back), pose)
        assert convert.header_stamp_ns(back) == 3


# ---------------------------------------------------------------------------------------------
# genpy: the serialiser rospy itself uses (Debian python3-rospy)


@pytest.fixture(scope="module")
def genpy_available():
    if not Path("/usr/lib/python3/dist-packages/genpy").is_dir():
        pytest.skip("Debian's python3-genpy/python3-rospy is not installed")
    from robokit.ros.transport import import_rospy

    import_rospy()
    numpy_before = sys.modules["numpy"].__file__
    assert "/usr/lib/python3" not in numpy_before, "the venv's numpy must win over Debian's"


@pytest.mark.ros
def test_genpy_serialised_cloud_reads_back_through_rosbags(genpy_available, typestores):
    rng = np.random.default_rng(5)
    points = rng.normal(size=(64, 4)).astype(np.float32)
    msg = convert.points_to_pointcloud2(points, ("x", "y", "z", "intensity"), point_step=32,
                                        stamp_ns=12 * 10**9 + 34)
    buffer = io.BytesIO()
    backends.to_genpy(msg).serialize(buffer)
    back = typestores["ros1"].deserialize_ros1(buffer.getvalue(), "sensor_msgs/msg/PointCloud2")
    np.testing.assert_array_equal(convert.pointcloud2_to_points(back, ("x", "y", "z", "intensity")), points)


@pytest.mark.ros
def test_rosbags_serialised_messages_read_by_genpy(genpy_available, typestores):
    from sensor_msgs.msg import Image, JointState, PointCloud2

    cloud = convert.points_to_pointcloud2(np.arange(12, dtype=np.float32).reshape(4, 3),
                                          big_endian=True)
    image = convert.array_to_image(np.arange(6, dtype=np.uint16).reshape(2, 3), "16UC1")
    joints = convert.arrays_to_joint_state(["j"], [1.5], [0.5], [0.0])
    for msg, cls in ((cloud, PointCloud2), (image, Image), (joints, JointState)):
        raw = typestores["ros1"].serialize_ros1(backends.to_rosbags(msg, typestores["ros1"]), msg.MSGTYPE)
        native = cls().deserialize(bytes(raw))
        assert native._type == m.ros1_type_name(msg.MSGTYPE)
    np.testing.assert_array_equal(convert.pointcloud2_to_points(PointCloud2().deserialize(bytes(
        typestores["ros1"].serialize_ros1(backends.to_rosbags(cloud, typestores["ros1"]), cloud.MSGTYPE)))),
        np.arange(12, dtype=np.float32).reshape(4, 3))


@settings(max_examples=30, deadline=None)
@given(big_endian=st.booleans(), extra_step=st.sampled_from([0, 2, 4, 8]), seed=st.integers(0, 2**31),
       organised=st.booleans())
def test_points_fast_and_general_paths_agree(big_endian, extra_step, seed, organised):
    """pointcloud2_to_points gathers native float32 fields in one step; other layouts per field."""
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(24, 4)).astype(np.float32)
    values[rng.integers(0, 24)] = np.nan
    names = ("x", "y", "z", "intensity")
    packed = convert.points_to_pointcloud2(values, names).point_step
    msg = convert.points_to_pointcloud2(values.reshape(4, 6, 4) if organised else values, names,
                                        big_endian=big_endian, point_step=packed + extra_step)
    selected = ("z", "x")
    expected = values[:, [2, 0]]
    np.testing.assert_array_equal(convert.pointcloud2_to_points(msg, selected),
                                  expected[np.isfinite(expected).all(axis=1)])


def test_rosbridge_spelling_for_ros1_and_ros2():
    msg = convert.array_to_twist_stamped([1, 0, 0, 0, 0, 2], stamp_ns=3 * 10**9 + 4, frame_id="base")
    ros1, ros2 = backends.to_rosbridge(msg, 1), backends.to_rosbridge(msg, 2)
    assert ros1["header"] == {"stamp": {"secs": 3, "nsecs": 4}, "frame_id": "base", "seq": 0}
    assert ros2["header"] == {"stamp": {"sec": 3, "nanosec": 4}, "frame_id": "base"}
    assert backends.rosbridge_type(msg.MSGTYPE, 1) == "geometry_msgs/TwistStamped"
    assert backends.rosbridge_type(msg.MSGTYPE, 2) == "geometry_msgs/msg/TwistStamped"
    for wire in (ros1, ros2):
        assert convert.header_stamp_ns(wire) == 3 * 10**9 + 4
        np.testing.assert_array_equal(convert.twist_to_array(wire), [1, 0, 0, 0, 0, 2])
