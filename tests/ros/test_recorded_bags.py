"""Bags recorded by others: old ROS 1 definitions (roslib/Header), common sensor and navigation
types, observation-only LiDAR bags, type mismatches, libmcap metadata with an empty
storage_identifier, and custom message types defined only inside the bag.

Every bag here is written with rosbags' own writers (real ROS 1 and ROS 2 bag files); where an
old recorder's message definition is needed, its text is written out as such bags carry it.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import yaml

from robokit.ros import convert
from robokit.ros.backends import rosbags_message, to_rosbags
from robokit.ros.bags import parse_bag_config, read_bag, write_bag
from robokit.ros.cli import main
from robokit.ros.config import ConfigError

T0 = 1_600_000_000 * 10**9
PERIOD = 10**8                       # 10 Hz

# sensor_msgs/PointCloud2 as a pre-Groovy recorder wrote it into the connection header: the
# header field says "Header" and its definition is given as roslib/Header
OLD_POINTCLOUD2_MSGDEF = """\
# This message holds a collection of N-dimensional points
Header header

uint32 height
uint32 width

PointField[] fields

bool    is_bigendian # Is this data bigendian?
uint32  point_step   # Length of a point in bytes
uint32  row_step     # Length of a row in bytes
uint8[] data         # Actual point data, size is (row_step*height)

bool is_dense        # True if there are no invalid points

================================================================================
MSG: roslib/Header
# Standard metadata for higher-level flow data types
uint32 seq
time stamp
string frame_id

================================================================================
MSG: sensor_msgs/PointField
uint8 INT8    = 1
uint8 UINT8   = 2
uint8 INT16   = 3
uint8 UINT16  = 4
uint8 INT32   = 5
uint8 UINT32  = 6
uint8 FLOAT32 = 7
uint8 FLOAT64 = 8

string name      # Name of field
uint32 offset    # Offset from start of point struct
uint8  datatype  # Datatype enumeration, see above
uint32 count     # How many elements in the field
"""
POINTCLOUD2_MD5 = "1158d486dd51d683ce2f1be655c3c181"   # unchanged since roslib/Header (same text)

# tf2_msgs/TFMessage (ROS 1): rosbags' Noetic store lacks it, so a reader must take it from the bag
TFMESSAGE_MSGDEF = """\
geometry_msgs/TransformStamped[] transforms
================================================================================
MSG: geometry_msgs/TransformStamped
Header header
string child_frame_id
Transform transform
================================================================================
MSG: std_msgs/Header
uint32 seq
time stamp
string frame_id
================================================================================
MSG: geometry_msgs/Transform
Vector3 translation
Quaternion rotation
================================================================================
MSG: geometry_msgs/Vector3
float64 x
float64 y
float64 z
================================================================================
MSG: geometry_msgs/Quaternion
float64 x
float64 y
float64 z
float64 w
"""

# a robot's own message type, known only from the bag's definitions
WHEELS_MSGDEF = """\
std_msgs/Header header
float64 left
float64 right
uint16[] ticks
"""
WHEELS_TYPE = "robokit_test_msgs/msg/WheelSpeeds"


def store_for(ros1: bool, extra: dict[str, str] | None = None):
    """A writer-side typestore: Noetic or Humble plus ``extra`` types (name -> msg text)."""
    from rosbags.typesys import Stores, get_types_from_msg, get_typestore

    store = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
    for name, text in (extra or {}).items():
        store.register(get_types_from_msg(text, name))
    return store


class BagWriter:
    """One writer for ROS 1 (.bag) and ROS 2 (folder, mcap or sqlite3) bags: topic -> type, messages as dicts."""

    def __init__(self, path: Path, store, storage: str = "mcap") -> None:
        from rosbags.rosbag1 import Writer as Writer1
        from rosbags.rosbag2 import StoragePlugin
        from rosbags.rosbag2 import Writer as Writer2

        self.ros1 = path.suffix == ".bag"
        self.store = store
        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        self.writer = Writer1(path) if self.ros1 else Writer2(path, version=8, storage_plugin=plugin)
        self.connections: dict[str, object] = {}

    def __enter__(self) -> BagWriter:
        self.writer.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.writer.close()

    def add(self, topic: str, msgtype: str, **definition: str) -> None:
        self.connections[topic] = self.writer.add_connection(topic, msgtype, typestore=self.store, **definition)

    def write(self, topic: str, stamp_ns: int, msg: object, msgtype: str | None = None) -> None:
        msgtype = msgtype or msg.MSGTYPE
        value = msg if hasattr(msg, "__msgtype__") else (
            to_rosbags(msg, self.store) if hasattr(msg, "MSGTYPE") else rosbags_message(msgtype, msg, self.store))
        data = (self.store.serialize_ros1(value, msgtype) if self.ros1
                else self.store.serialize_cdr(value, msgtype))
        self.writer.write(self.connections[topic], stamp_ns, data)


def header(stamp_ns: int, frame: str = "") -> dict:
    return {"stamp": {"sec": stamp_ns // 10**9, "nanosec": stamp_ns % 10**9}, "frame_id": frame}


def lidar_scans(count: int, rng: np.random.Generator) -> list[np.ndarray]:
    return [rng.normal(size=(int(rng.integers(50, 200)), 4)).astype(np.float32) for _ in range(count)]


def write_lidar_bag(path: Path, scans: list[np.ndarray], msgdef: str | None = None,
                    fields: tuple[str, ...] = ("x", "y", "z", "intensity"), commands: bool = False) -> None:
    """One PointCloud2 per scan on /velodyne_points at 10 Hz; Twist commands on /cmd_vel
    (vx = scan index) only if ``commands``, as most recorded LiDAR bags have none."""
    store = store_for(ros1=path.suffix == ".bag")
    with BagWriter(path, store) as bag:
        definition = {"msgdef": msgdef, "md5sum": POINTCLOUD2_MD5} if msgdef else {}
        bag.add("/velodyne_points", "sensor_msgs/msg/PointCloud2", **definition)
        if commands:
            bag.add("/cmd_vel", "geometry_msgs/msg/Twist")
        for i, scan in enumerate(scans):
            stamp = T0 + i * PERIOD
            cloud = convert.points_to_pointcloud2(scan[:, : len(fields)], fields, stamp_ns=stamp, frame_id="velodyne")
            bag.write("/velodyne_points", stamp, cloud)
            if commands:
                bag.write("/cmd_vel", stamp, convert.array_to_twist([i, 0, 0, 0, 0, 0]))


LIDAR_ONLY = {"rate_hz": 10, "tolerance_ms": 20,
              "observations": [{"key": "points", "topic": "/velodyne_points", "type": "pointcloud2",
                                "fields": ["x", "y", "z", "intensity"]}]}


# ---------------------------------------------------------------------------------------------
# old ROS 1 definitions; observation-only LiDAR bags


def test_ros1_bag_whose_definitions_use_roslib_header(tmp_path):
    """rosbags' AnyReader fails on it ("Type 'std_msgs/msg/Header' is unknown"); robokit reads it."""
    scans = lidar_scans(4, np.random.default_rng(0))
    bag = tmp_path / "old.bag"
    write_lidar_bag(bag, scans, msgdef=OLD_POINTCLOUD2_MSGDEF, commands=True)
    from rosbags.rosbag1 import Reader
    with Reader(bag) as reader:
        assert "MSG: roslib/Header" in reader.connections[0].msgdef.data
    config = {**LIDAR_ONLY, "action": {"topic": "/cmd_vel", "type": "twist", "axes": ["vx"]}}
    (episode,), report = read_bag(bag, parse_bag_config(config))
    assert len(episode.observations) == 4
    np.testing.assert_array_equal(episode.actions[:, 0], [0, 1, 2])
    for got, want in zip(episode.observations, scans, strict=True):
        np.testing.assert_array_equal(got, want)
    assert report.decode_errors == []


@pytest.mark.parametrize("suffix", [".bag", ""])
def test_lidar_bag_without_a_command_topic_is_an_observation_only_dataset(tmp_path, suffix):
    scans = lidar_scans(6, np.random.default_rng(1))
    bag = tmp_path / f"lidar{suffix}"
    write_lidar_bag(bag, scans)
    (episode,), report = read_bag(bag, parse_bag_config(LIDAR_ONLY))
    assert episode.actions.shape == (5, 0) and len(episode.observations) == 6
    np.testing.assert_array_equal(episode.observations[3], scans[3])
    assert any("observation-only" in note for note in report.notes)


def test_cli_converts_an_observation_only_lidar_bag(tmp_path, capsys):
    from robokit.data import load_episodes

    scans = lidar_scans(5, np.random.default_rng(2))
    write_lidar_bag(tmp_path / "lidar.bag", scans)
    (tmp_path / "topics.yaml").write_text(yaml.safe_dump(LIDAR_ONLY))
    assert main(["bag-to-dataset", str(tmp_path / "lidar.bag"), "--config", str(tmp_path / "topics.yaml"),
                 "--out", str(tmp_path / "scans.npz")]) == 0
    assert "observation-only" in capsys.readouterr().out
    (episode,) = load_episodes(tmp_path / "scans.npz")
    assert episode.actions.shape == (4, 0)
    np.testing.assert_array_equal(episode.observations[4], scans[4])


# ---------------------------------------------------------------------------------------------
# common types


def write_robot_bag(path: Path, ticks: int, storage: str = "mcap") -> dict[str, list]:
    """Odometry, Imu, LaserScan, NavSatFix, tf, CompressedImage (PNG) and TwistStamped commands
    at 10 Hz; returns the values written per topic."""
    from PIL import Image

    rng = np.random.default_rng(3)
    ros1 = path.suffix == ".bag"
    store = store_for(ros1, {"tf2_msgs/msg/TFMessage": TFMESSAGE_MSGDEF} if ros1 else None)
    written: dict[str, list] = {k: [] for k in ("odom", "imu", "scan", "fix", "tf", "image", "cmd")}
    types = {"/odom": "nav_msgs/msg/Odometry", "/imu": "sensor_msgs/msg/Imu", "/scan": "sensor_msgs/msg/LaserScan",
             "/fix": "sensor_msgs/msg/NavSatFix", "/tf": "tf2_msgs/msg/TFMessage",
             "/camera/image/compressed": "sensor_msgs/msg/CompressedImage", "/cmd_vel": "geometry_msgs/msg/TwistStamped"}

    def xyz(v):
        return dict(zip("xyz", map(float, v), strict=True))

    def xyzw(v):
        return dict(zip("xyzw", map(float, v), strict=True))

    with BagWriter(path, store, storage) as bag:
        for topic, msgtype in types.items():
            bag.add(topic, msgtype)
        for i in range(ticks):
            stamp = T0 + i * PERIOD
            odom = rng.normal(size=13)
            bag.write("/odom", stamp, {"header": header(stamp, "odom"), "child_frame_id": "base_link",
                                       "pose": {"pose": {"position": xyz(odom[:3]), "orientation": xyzw(odom[3:7])}},
                                       "twist": {"twist": {"linear": xyz(odom[7:10]), "angular": xyz(odom[10:])}}},
                      types["/odom"])
            imu = rng.normal(size=10)
            bag.write("/imu", stamp, {"header": header(stamp, "imu"), "orientation": xyzw(imu[:4]),
                                      "angular_velocity": xyz(imu[4:7]), "linear_acceleration": xyz(imu[7:])},
                      types["/imu"])
            ranges = rng.uniform(0.5, 9.0, size=16).astype(np.float32)
            ranges[[2, 5]] = [np.inf, 0.01]                       # no return / below range_min
            bag.write("/scan", stamp, {"header": header(stamp, "laser"), "angle_min": -1.0, "angle_max": 1.0,
                                       "angle_increment": 2 / 15, "range_min": 0.1, "range_max": 10.0,
                                       "ranges": ranges}, types["/scan"])
            fix = [48.1 + i * 1e-6, 11.5, 520.0 + i]
            bag.write("/fix", stamp, {"header": header(stamp, "gps"), "latitude": fix[0], "longitude": fix[1],
                                      "altitude": fix[2]}, types["/fix"])
            base, laser = rng.normal(size=7), rng.normal(size=7)
            bag.write("/tf", stamp, {"transforms": [
                {"header": header(stamp, "odom"), "child_frame_id": "base_link",
                 "transform": {"translation": xyz(base[:3]), "rotation": xyzw(base[3:])}},
                {"header": header(stamp, "base_link"), "child_frame_id": "laser",
                 "transform": {"translation": xyz(laser[:3]), "rotation": xyzw(laser[3:])}}]}, types["/tf"])
            pixels = rng.integers(0, 256, size=(6, 8, 3), dtype=np.uint8)
            png = io.BytesIO()
            Image.fromarray(pixels).save(png, format="PNG")
            bag.write("/camera/image/compressed", stamp, {"header": header(stamp, "camera"), "format": "png",
                                                          "data": np.frombuffer(png.getvalue(), np.uint8)},
                      types["/camera/image/compressed"])
            cmd = rng.normal(size=6)
            bag.write("/cmd_vel", stamp + 3 * 10**6, {"header": header(stamp + 3 * 10**6, "base_link"),
                                                      "twist": {"linear": xyz(cmd[:3]), "angular": xyz(cmd[3:])}},
                      types["/cmd_vel"])
            written["odom"].append(odom)
            written["imu"].append(imu)
            written["scan"].append(np.where(np.isfinite(ranges) & (ranges >= 0.1), ranges, 10.0))
            written["fix"].append(fix)
            written["tf"].append(base)
            written["image"].append(pixels)
            written["cmd"].append(cmd[[0, 5]])
    return written


#: the types given in every spelling a config may use: short name, ROS 2 name, ROS 1 name
ROBOT_TOPICS = {
    "rate_hz": 10, "tolerance_ms": 20,
    "observations": [
        {"key": "odom", "topic": "/odom", "type": "nav_msgs/msg/Odometry"},
        {"key": "imu", "topic": "/imu", "type": "sensor_msgs/Imu"},
        {"key": "scan", "topic": "/scan", "type": "laser_scan"},
        {"key": "fix", "topic": "/fix", "type": "sensor_msgs/NavSatFix"},
        {"key": "tf", "topic": "/tf", "type": "tf2_msgs/TFMessage", "frame": "base_link", "parent": "odom"},
        {"key": "image", "topic": "/camera/image/compressed", "type": "sensor_msgs/msg/CompressedImage"},
    ],
    "action": {"topic": "/cmd_vel", "type": "geometry_msgs/TwistStamped", "axes": ["vx", "wz"]},
}


@pytest.mark.parametrize("name,storage", [("robot.bag", None), ("robot_mcap", "mcap"), ("robot_db3", "sqlite3")])
def test_common_sensor_and_navigation_types(tmp_path, name, storage):
    written = write_robot_bag(tmp_path / name, ticks=5, storage=storage or "mcap")
    (episode,), report = read_bag(tmp_path / name, parse_bag_config(ROBOT_TOPICS))
    obs = episode.observations
    assert report.decode_errors == [] and len(episode) == 4
    np.testing.assert_allclose(obs["odom"], np.stack(written["odom"]), rtol=1e-6)
    np.testing.assert_allclose(obs["imu"], np.stack(written["imu"]), rtol=1e-6)
    np.testing.assert_array_equal(obs["scan"], np.stack(written["scan"]).astype(np.float32))
    np.testing.assert_allclose(obs["fix"], np.array(written["fix"], np.float32))
    np.testing.assert_allclose(obs["tf"], np.stack(written["tf"]), rtol=1e-6)
    np.testing.assert_array_equal(obs["image"], np.stack(written["image"]).astype(np.float32))
    np.testing.assert_allclose(episode.actions, np.stack(written["cmd"])[:4], rtol=1e-6)


def test_tf_pose_of_a_frame_absent_from_some_messages_is_matched_by_its_own_stamp(tmp_path):
    """/tf carries many frames; messages without the configured one are skipped, not errors."""
    store = store_for(ros1=False)
    with BagWriter(tmp_path / "tf", store) as bag:
        bag.add("/tf", "tf2_msgs/msg/TFMessage")
        for i in range(6):
            stamp = T0 + i * PERIOD
            other = {"header": header(stamp, "map"), "child_frame_id": "odom"}
            mine = {"header": header(stamp + 5 * 10**6, "odom"), "child_frame_id": "base_link",
                    "transform": {"translation": {"x": float(i)}, "rotation": {"w": 1.0}}}
            bag.write("/tf", stamp, {"transforms": [other]}, "tf2_msgs/msg/TFMessage")
            bag.write("/tf", stamp + 10**6, {"transforms": [mine]}, "tf2_msgs/msg/TFMessage")
    config = {"rate_hz": 10, "tolerance_ms": 10,
              "observations": [{"key": "pose", "topic": "/tf", "type": "tf", "frame": "base_link"}]}
    (episode,), report = read_bag(tmp_path / "tf", parse_bag_config(config))
    np.testing.assert_array_equal(episode.observations[:, 0], np.arange(6))
    np.testing.assert_array_equal(episode.observations[:, 6], 1.0)
    assert report.messages["/tf"] == 6 and report.decode_errors == []


# ---------------------------------------------------------------------------------------------
# a configured type that does not match the bag


@pytest.mark.parametrize("configured,message", [
    ({"key": "points", "topic": "/velodyne_points", "type": "image"},
     r"topic /velodyne_points is sensor_msgs/msg/PointCloud2 in the bag but configured as type 'image' "
     r"\(sensor_msgs/msg/Image\); use type: pointcloud2"),
    ({"key": "points", "topic": "/velodyne_points", "type": "geometry_msgs/msg/Twist"},
     r"configured as type 'twist'"),
])
def test_a_topic_configured_as_another_type_is_a_clear_error(tmp_path, configured, message):
    write_lidar_bag(tmp_path / "lidar.bag", lidar_scans(3, np.random.default_rng(4)))
    with pytest.raises(ConfigError, match=message):
        read_bag(tmp_path / "lidar.bag", parse_bag_config({"observations": [configured]}))


def test_twist_configured_on_a_twist_stamped_topic_names_both(tmp_path):
    """Before: twist_to_array read TwistStamped silently, so the mistake went unnoticed."""
    write_robot_bag(tmp_path / "robot", ticks=3)
    config = {**ROBOT_TOPICS, "action": {"topic": "/cmd_vel", "type": "twist"}}
    with pytest.raises(ConfigError, match=r"/cmd_vel is geometry_msgs/msg/TwistStamped in the bag but configured "
                                          r"as type 'twist' \(geometry_msgs/msg/Twist\); use type: twist_stamped"):
        read_bag(tmp_path / "robot", parse_bag_config(config))


def test_scalar_and_custom_type_mismatches_say_what_to_write(tmp_path):
    write_robot_bag(tmp_path / "robot", ticks=2)
    as_reward = {**ROBOT_TOPICS, "reward": {"topic": "/fix", "type": "float32"}}
    with pytest.raises(ConfigError, match=r"/fix is sensor_msgs/msg/NavSatFix .* use a scalar topic"):
        read_bag(tmp_path / "robot", parse_bag_config(as_reward))
    custom = {**ROBOT_TOPICS, "observations": [{"key": "w", "topic": "/fix", "type": "my_msgs/Wheels",
                                                "paths": ["left"]}]}
    with pytest.raises(ConfigError, match=r"configured as type 'my_msgs/msg/Wheels' \(my_msgs/msg/Wheels\); "
                                          r"use type: navsat_fix$"):
        read_bag(tmp_path / "robot", parse_bag_config(custom))


def test_cli_type_mismatch_is_one_line_exit_2_and_nothing_written(tmp_path, capsys):
    write_lidar_bag(tmp_path / "lidar.bag", lidar_scans(3, np.random.default_rng(5)))
    wrong = {"observations": [{"key": "scan", "topic": "/velodyne_points", "type": "sensor_msgs/LaserScan"}]}
    (tmp_path / "wrong.yaml").write_text(yaml.safe_dump(wrong))
    out = tmp_path / "out.npz"
    assert main(["bag-to-dataset", str(tmp_path / "lidar.bag"), "--config", str(tmp_path / "wrong.yaml"),
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "/velodyne_points" in err and "LaserScan" in err and "lidar.bag" in err
    assert not out.exists()


@pytest.mark.parametrize("bad,message", [
    ({"key": "x", "topic": "/x", "type": "nav_msgs/Odometri"}, "not one robokit decodes"),
    ({"key": "x", "topic": "/x", "type": "odometryy"}, "type 'odometryy' not in"),
    ({"key": "x", "topic": "/x", "type": "tf"}, "frame"),
])
def test_config_type_errors_name_the_key(bad, message):
    with pytest.raises(ConfigError, match=message):
        parse_bag_config({"observations": [bad]}, "topics.yaml")


# ---------------------------------------------------------------------------------------------
# ROS 2 metadata with an empty storage_identifier (as libmcap-based tools write it)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_rosbag2_metadata_with_empty_storage_identifier(tmp_path, storage):
    rng = np.random.default_rng(6)
    steps = 4
    from robokit.data.episode import Episode
    episode = Episode(rng.normal(size=(steps + 1, 3)).astype(np.float32), rng.normal(size=(steps, 2)),
                      rng.normal(size=steps), np.zeros(steps, bool), np.eye(steps, dtype=bool)[-1])
    bag = write_bag([episode], tmp_path / "bag", storage=storage)
    meta_path = bag / "metadata.yaml"
    metadata = yaml.safe_load(meta_path.read_text())
    metadata["rosbag2_bagfile_information"]["storage_identifier"] = ""
    meta_path.write_text(yaml.safe_dump(metadata))
    (back,), _ = read_bag(bag)
    np.testing.assert_array_equal(back.observations, episode.observations)
    np.testing.assert_array_equal(back.actions, episode.actions)


# ---------------------------------------------------------------------------------------------
# custom message types defined only in the bag


@pytest.mark.parametrize("name", ["wheels.bag", "wheels_mcap"])
def test_custom_message_type_from_the_bags_own_definitions(tmp_path, name):
    """ROS 1: the connection header's msgdef; ROS 2 MCAP: the channel's ros2msg schema."""
    from rosbags.typesys import Stores, get_typestore

    assert WHEELS_TYPE not in get_typestore(Stores.ROS2_HUMBLE).types      # known from the bag only
    path = tmp_path / name
    store = store_for(ros1=name.endswith(".bag"), extra={WHEELS_TYPE: WHEELS_MSGDEF})
    with BagWriter(path, store) as bag:
        bag.add("/wheels", WHEELS_TYPE)
        for i in range(5):
            stamp = T0 + i * PERIOD
            bag.write("/wheels", stamp, {"header": header(stamp), "left": 0.5 * i, "right": -0.25 * i,
                                         "ticks": np.array([i, 2 * i], np.uint16)}, WHEELS_TYPE)
    config = {"rate_hz": 10, "observations": [
        {"key": "wheels", "topic": "/wheels", "type": "robokit_test_msgs/WheelSpeeds", "paths": ["left", "right", "ticks"]}]}
    sources = [path] + ([] if path.suffix == ".bag" else sorted(path.glob("*.mcap")))   # also the bare .mcap file
    assert len(sources) == (1 if path.suffix == ".bag" else 2)
    for source in sources:
        (episode,), report = read_bag(source, parse_bag_config(config))
        np.testing.assert_array_equal(episode.observations,
                                      [[0.5 * i, -0.25 * i, i, 2 * i] for i in range(5)])
        assert report.decode_errors == []


# ---------------------------------------------------------------------------------------------
# bag-to-clouds: a recorded LiDAR topic -> one file per scan


@pytest.mark.parametrize("fmt,suffix", [("kitti", ".bin"), ("pcd", ".pcd"), ("npz", ".npz")])
@pytest.mark.parametrize("bag_name", ["lidar.bag", "lidar_mcap"])
def test_bag_to_clouds_files_read_back_through_robokit_readers(tmp_path, capsys, fmt, suffix, bag_name):
    from robokit.pointcloud.io import read_point_cloud

    scans = lidar_scans(4, np.random.default_rng(7))
    scans[1][5, 0] = np.nan                                   # a missing return: dropped
    write_lidar_bag(tmp_path / bag_name, scans)
    out = tmp_path / "clouds"
    assert main(["bag-to-clouds", str(tmp_path / bag_name), "--topic", "/velodyne_points", "--out", str(out),
                 "--format", fmt, "--no-progress"]) == 0
    assert "wrote 4 scan(s)" in capsys.readouterr().out
    files = sorted(out.glob(f"*{suffix}"))
    assert [f.name for f in files] == [f"{i:06d}{suffix}" for i in range(4)]
    for file, scan in zip(files, scans, strict=True):
        expected = scan[np.isfinite(scan).all(axis=1)]
        np.testing.assert_array_equal(read_point_cloud(file), expected)
    stamps = (out / "stamps.csv").read_text().splitlines()
    assert stamps[0] == "file,stamp_ns,log_ns" and stamps[2] == f"000001{suffix},{T0 + PERIOD},{T0 + PERIOD}"


def test_bag_to_clouds_without_intensity_and_with_a_scale(tmp_path):
    from robokit.pointcloud.io import read_kitti_velodyne
    from robokit.ros.bag_clouds import bag_to_clouds

    xyz_scans = lidar_scans(2, np.random.default_rng(8))
    write_lidar_bag(tmp_path / "xyz.bag", xyz_scans, fields=("x", "y", "z"))
    bag_to_clouds(tmp_path / "xyz.bag", "/velodyne_points", tmp_path / "xyz", progress=False)
    cloud = read_kitti_velodyne(tmp_path / "xyz" / "000000.bin")
    np.testing.assert_array_equal(cloud[:, :3], xyz_scans[0][:, :3])
    np.testing.assert_array_equal(cloud[:, 3], 0.0)
    write_lidar_bag(tmp_path / "i.bag", xyz_scans)
    bag_to_clouds(tmp_path / "i.bag", "/velodyne_points", tmp_path / "scaled", intensity_scale=0.5, progress=False)
    np.testing.assert_allclose(read_kitti_velodyne(tmp_path / "scaled" / "000001.bin")[:, 3],
                               0.5 * xyz_scans[1][:, 3], rtol=1e-6)


def test_bag_to_clouds_reads_laser_scans_as_planar_points(tmp_path):
    from robokit.pointcloud.io import read_point_cloud
    from robokit.ros.bag_clouds import bag_to_clouds

    write_robot_bag(tmp_path / "robot", ticks=2)
    bag_to_clouds(tmp_path / "robot", "/scan", tmp_path / "scan", fmt="npz", progress=False)
    cloud = read_point_cloud(tmp_path / "scan" / "000000.npz")
    assert cloud.shape == (14, 4)                           # 16 beams, 2 without a valid return
    np.testing.assert_array_equal(cloud[:, 2], 0.0)
    assert np.all((np.hypot(cloud[:, 0], cloud[:, 1]) >= 0.5 - 1e-5) & (np.hypot(cloud[:, 0], cloud[:, 1]) <= 9.0 + 1e-5))


def test_bag_to_clouds_refuses_a_non_empty_out_without_overwrite(tmp_path, capsys):
    write_lidar_bag(tmp_path / "lidar.bag", lidar_scans(2, np.random.default_rng(9)))
    out = tmp_path / "clouds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    args = ["bag-to-clouds", str(tmp_path / "lidar.bag"), "--topic", "/velodyne_points", "--out", str(out),
            "--no-progress"]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(out) in err and "--overwrite" in err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert main([*args, "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["000000.bin", "000001.bin", "stamps.csv"]


@pytest.mark.parametrize("case,needle", [
    ("missing_bag", "absent.bag: no such bag"),
    ("missing_topic", "topic /points not in the bag; its point-cloud topics: ['/velodyne_points']"),
    ("wrong_type", "topic /cmd_vel is geometry_msgs/msg/Twist, not sensor_msgs/PointCloud2"),
    ("bad_format", "--format"),
    ("corrupt_bag", "corrupt.bag: cannot read bag"),
    ("no_scans", "empty.bag: topic /velodyne_points (sensor_msgs/msg/PointCloud2) has no scan with a valid point"),
])
def test_bag_to_clouds_bad_input_is_one_line_exit_2_nothing_written(tmp_path, capsys, case, needle):
    write_lidar_bag(tmp_path / "lidar.bag", lidar_scans(2, np.random.default_rng(10)), commands=True)
    (tmp_path / "corrupt.bag").write_bytes((tmp_path / "lidar.bag").read_bytes()[:300])
    write_lidar_bag(tmp_path / "empty.bag", [])
    bag = {"missing_bag": "absent.bag", "corrupt_bag": "corrupt.bag", "no_scans": "empty.bag"}.get(case, "lidar.bag")
    topic = {"missing_topic": "/points", "wrong_type": "/cmd_vel"}.get(case, "/velodyne_points")
    fmt = ["--format", "las"] if case == "bad_format" else []
    before = sorted(p.name for p in tmp_path.iterdir())
    try:
        code = main(["bag-to-clouds", str(tmp_path / bag), "--topic", topic, "--out", str(tmp_path / "out"),
                     "--no-progress", *fmt])
    except SystemExit as exit_:                    # tyro's parser exits by itself on a bad choice
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and needle in err
    if case != "bad_format":                       # tyro's own usage message for a bad choice
        assert len(err.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.ros
def test_sensor_types_in_a_bag_written_by_debians_rosbag(tmp_path):
    """The recorder's own library (Debian's python3-rosbag with genpy messages) writes the
    connection headers, with genpy's full definition texts; robokit reads every value back."""
    import subprocess
    import textwrap

    from PIL import Image

    debian = Path("/usr/bin/python3")
    if not (debian.exists() and Path("/usr/lib/python3/dist-packages/rosbag").is_dir()):
        pytest.skip("no system python with Debian's python3-rosbag (make system-deps installs it)")
    pixels = np.random.default_rng(11).integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    png = io.BytesIO()
    Image.fromarray(pixels).save(png, format="PNG")
    (tmp_path / "frame.png").write_bytes(png.getvalue())
    bag = tmp_path / "sensors.bag"
    script = textwrap.dedent(f"""
        import rosbag, rospy
        from sensor_msgs.msg import Imu, LaserScan, NavSatFix, CompressedImage
        from geometry_msgs.msg import TwistStamped
        png = open({str(tmp_path / "frame.png")!r}, "rb").read()
        with rosbag.Bag({str(bag)!r}, "w") as bag:
            for i in range(4):
                t = rospy.Time.from_sec(1600000000.0 + 0.1 * i)
                imu = Imu(); imu.header.stamp = t; imu.orientation.w = 1.0; imu.angular_velocity.z = 0.1 * i
                imu.linear_acceleration.z = 9.81
                scan = LaserScan(); scan.header.stamp = t; scan.range_min = 0.1; scan.range_max = 5.0
                scan.ranges = [1.0 + i, float("inf"), 2.0]
                fix = NavSatFix(); fix.header.stamp = t; fix.latitude = 48.0 + i; fix.longitude = 11.0; fix.altitude = 500.0
                image = CompressedImage(); image.header.stamp = t; image.format = "png"; image.data = png
                cmd = TwistStamped(); cmd.header.stamp = t; cmd.twist.linear.x = 0.5 * i
                for topic, msg in (("/imu", imu), ("/scan", scan), ("/fix", fix), ("/image/compressed", image),
                                   ("/cmd", cmd)):
                    bag.write(topic, msg, t)
    """)
    subprocess.run([str(debian), "-c", script], check=True, capture_output=True)
    config = {"rate_hz": 10, "observations": [
        {"key": "imu", "topic": "/imu", "type": "imu"}, {"key": "scan", "topic": "/scan", "type": "laser_scan"},
        {"key": "fix", "topic": "/fix", "type": "navsat_fix"},
        {"key": "image", "topic": "/image/compressed", "type": "compressed_image"}],
        "action": {"topic": "/cmd", "type": "twist_stamped", "axes": ["vx"]}}
    (episode,), report = read_bag(bag, parse_bag_config(config))
    obs = episode.observations
    assert report.decode_errors == [] and len(episode) == 3
    np.testing.assert_allclose(obs["imu"][:, [3, 6, 9]], [[1.0, 0.1 * i, 9.81] for i in range(4)], rtol=1e-6)
    np.testing.assert_array_equal(obs["scan"], [[1.0 + i, 5.0, 2.0] for i in range(4)])
    np.testing.assert_array_equal(obs["fix"][:, 0], [48.0, 49.0, 50.0, 51.0])
    np.testing.assert_array_equal(obs["image"], np.stack([pixels] * 4).astype(np.float32))
    np.testing.assert_allclose(episode.actions[:, 0], [0.0, 0.5, 1.0])
