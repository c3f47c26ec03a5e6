"""Bags: robokit episodes -> ROS 2 bags (mcap, sqlite3) -> episodes; ROS 1 bags from Debian's rosbag;
synchronisation with tolerance, gaps and out-of-order stamps reported; standard tools read our bags."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from robokit.data.episode import Episode
from robokit.data.testing import assert_episodes_equal
from robokit.ros import convert
from robokit.ros import messages as m
from robokit.ros.bags import BAG_CONFIG_NAME, parse_bag_config, read_bag, write_bag
from robokit.ros.config import ConfigError

DEBIAN_PYTHON = "/usr/bin/python3"


def vector_episode(rng: np.random.Generator, steps: int, terminated: bool) -> Episode:
    ends = np.zeros(steps, bool)
    ends[-1] = True
    return Episode(rng.normal(size=(steps + 1, 5)).astype(np.float32),
                   rng.normal(size=(steps, 2)).astype(np.float32),
                   rng.normal(size=steps).astype(np.float32),
                   ends & terminated, ends & (not terminated))


def cloud_episode(rng: np.random.Generator, steps: int) -> Episode:
    clouds = [rng.normal(size=(int(rng.integers(100, 400)), 4)).astype(np.float32)
              for _ in range(steps + 1)]
    ends = np.zeros(steps, bool)
    ends[-1] = True
    return Episode(clouds, rng.uniform(-1, 1, size=(steps, 2)).astype(np.float32),
                   rng.normal(size=steps).astype(np.float32), np.zeros(steps, bool), ends)


def assert_same_episodes(written: list[Episode], read: list[Episode]) -> None:
    """Bags carry observations, actions, rewards and end flags, not infos."""
    assert_episodes_equal(written, read, check_infos=False)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_vector_episodes_round_trip(tmp_path, storage):
    rng = np.random.default_rng(0)
    episodes = [vector_episode(rng, 12, terminated=True), vector_episode(rng, 7, terminated=False),
                vector_episode(rng, 1, terminated=True)]
    bag = write_bag(episodes, tmp_path / "bag", storage=storage, rate_hz=20.0)
    assert (bag / BAG_CONFIG_NAME).is_file()
    read, report = read_bag(bag)
    assert_same_episodes(episodes, read)
    assert report.gaps == [] and not any(report.out_of_order.values())


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_point_cloud_and_dict_episodes_round_trip(tmp_path, storage):
    rng = np.random.default_rng(1)
    clouds = [cloud_episode(rng, 6), cloud_episode(rng, 3)]
    assert_same_episodes(clouds, read_bag(write_bag(clouds, tmp_path / "clouds", storage=storage))[0])
    dict_episode = Episode({"joints": rng.normal(size=(5, 3)), "goal": rng.normal(size=(5, 2))},
                           rng.normal(size=(4, 3)), np.ones(4), np.zeros(4, bool), [0, 0, 0, 1])
    back, _ = read_bag(write_bag([dict_episode], tmp_path / "dict", storage=storage))
    assert_same_episodes([dict_episode], back)


def test_write_refuses_to_overwrite_and_leaves_nothing_on_failure(tmp_path):
    rng = np.random.default_rng(2)
    bag = write_bag([vector_episode(rng, 3, True)], tmp_path / "bag")
    with pytest.raises(FileExistsError):
        write_bag([vector_episode(rng, 3, True)], bag)
    image_obs = Episode(np.zeros((3, 4, 4), np.float32), np.zeros((2, 1)), np.zeros(2),
                        np.zeros(2, bool), [0, 1])
    with pytest.raises(ValueError, match="shape"):
        write_bag([image_obs], tmp_path / "images")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bag"]     # no partial bag left behind


def test_sqlite3_bag_has_the_rosbag2_schema(tmp_path):
    """What `ros2 bag` (rosbag2_storage_default_plugins) reads: topics + messages tables, CDR."""
    rng = np.random.default_rng(3)
    bag = write_bag([cloud_episode(rng, 4)], tmp_path / "bag", storage="sqlite3")
    metadata = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["storage_identifier"] == "sqlite3"
    (db,) = metadata["relative_file_paths"]
    with sqlite3.connect(bag / db) as conn:
        topics = dict(conn.execute("SELECT name, type FROM topics").fetchall())
        formats = {row[0] for row in conn.execute("SELECT serialization_format FROM topics")}
        clouds = conn.execute("SELECT COUNT(*) FROM messages JOIN topics ON topic_id = topics.id "
                              "WHERE topics.name = '/robokit/points'").fetchone()[0]
    assert topics["/robokit/points"] == "sensor_msgs/msg/PointCloud2"
    assert topics["/robokit/action"] == "std_msgs/msg/Float32MultiArray"
    assert formats == {"cdr"} and clouds == 5
    assert metadata["message_count"] == sum(t["message_count"] for t in metadata["topics_with_message_count"])


def test_mcap_bag_is_a_valid_mcap_file(tmp_path):
    bag = write_bag([cloud_episode(np.random.default_rng(4), 2)], tmp_path / "bag", storage="mcap")
    metadata = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert metadata["storage_identifier"] == "mcap"
    data = (bag / metadata["relative_file_paths"][0]).read_bytes()
    magic = b"\x89MCAP0\r\n"
    assert data.startswith(magic) and data.endswith(magic)   # MCAP spec: magic at both ends


@pytest.mark.ros
@pytest.mark.skipif(shutil.which("rosbag") is None, reason="Debian's rosbag tool is not installed")
def test_debian_rosbag_reads_our_bag_after_rosbags_convert(tmp_path):
    """The standard ROS 1 tools (`rosbag info`, rosbag's Python API with genpy) read the messages
    of a bag robokit wrote, after `rosbags-convert` turns the ROS 2 bag into a ROS 1 bag."""
    rng = np.random.default_rng(5)
    episode = cloud_episode(rng, 3)
    bag = write_bag([episode], tmp_path / "ros2bag", storage="mcap")
    ros1 = tmp_path / "converted.bag"
    # The console script sits beside this interpreter: `make test` runs .venv/bin/python
    # without activating the venv, so it is not on PATH.
    convert_tool = Path(sys.executable).with_name("rosbags-convert")
    assert convert_tool.is_file(), f"rosbags-convert missing beside {sys.executable}"
    subprocess.run([str(convert_tool), "--src", str(bag), "--dst", str(ros1)], check=True,
                   capture_output=True)
    info = subprocess.run(["rosbag", "info", str(ros1)], check=True, capture_output=True, text=True).stdout
    assert "/robokit/points" in info and "sensor_msgs/PointCloud2" in info
    script = textwrap.dedent(f"""
        import rosbag
        with rosbag.Bag({str(ros1)!r}) as bag:
            for _, msg, _ in bag.read_messages(topics=["/robokit/points"]):
                print(msg.width, msg.point_step, [f.name for f in msg.fields], len(msg.data))
    """)
    lines = subprocess.run([DEBIAN_PYTHON, "-c", script], check=True, capture_output=True,
                           text=True).stdout.splitlines()
    assert [int(line.split()[0]) for line in lines] == [len(c) for c in episode.observations]
    assert "['x', 'y', 'z', 'intensity']" in lines[0]


# ---------------------------------------------------------------------------------------------
# reading bags recorded elsewhere: ROS 1, jitter, gaps, out-of-order stamps

ROBOT_CONFIG = {
    "rate_hz": 10.0, "tolerance_ms": 30.0,
    "observations": [{"key": "points", "topic": "/velodyne_points", "type": "pointcloud2",
                      "fields": ["x", "y", "z"]}],
    "action": {"topic": "/cmd_vel", "type": "twist", "axes": ["vx", "wz"]},
}


def write_ros1_bag_with_rosbags(path: Path, cloud_stamps_ms: list[float], cmd_stamps_ms: list[float]) -> None:
    """A ROS 1 bag (rosbags writer): clouds whose first point's x is the stamp in s; twists vx = stamp."""
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_typestore

    from robokit.ros.backends import to_rosbags

    store = get_typestore(Stores.ROS1_NOETIC)
    t0 = 1_600_000_000 * 10**9
    with Writer(path) as writer:
        clouds = writer.add_connection("/velodyne_points", "sensor_msgs/msg/PointCloud2", typestore=store)
        cmds = writer.add_connection("/cmd_vel", "geometry_msgs/msg/Twist", typestore=store)
        events = [(ms, "cloud") for ms in cloud_stamps_ms] + [(ms, "cmd") for ms in cmd_stamps_ms]
        for ms, kind in sorted(events):
            stamp = t0 + round(ms * 1e6)
            if kind == "cloud":
                points = np.full((4, 3), ms / 1e3, np.float32)
                msg: object = convert.points_to_pointcloud2(points, stamp_ns=stamp)
                conn = clouds
            else:
                msg, conn = convert.array_to_twist([ms / 1e3, 0, 0, 0, 0, 1.0]), cmds
            writer.write(conn, stamp, store.serialize_ros1(to_rosbags(msg, store), msg.MSGTYPE))


def test_sync_matches_within_tolerance_and_reports_gaps(tmp_path):
    jitter = [0, 12, -9, 25, 4, -28, 7, 0, 3, -5, 11, 0]                  # all within 30 ms
    cloud_ms = [100.0 * i + j for i, j in enumerate(jitter)]
    cloud_ms = [t for i, t in enumerate(cloud_ms) if i not in (5, 6)]   # 200 ms of lost scans
    cmd_ms = [100.0 * i + 1 for i in range(12)]
    bag = tmp_path / "robot.bag"
    write_ros1_bag_with_rosbags(bag, cloud_ms, cmd_ms)
    episodes, report = read_bag(bag, parse_bag_config(ROBOT_CONFIG))
    # ticks 0..11; scans 5 and 6 missing -> episodes cover ticks 0-4 and 7-11, nothing filled in
    assert [len(e) for e in episodes] == [4, 4]
    assert len(report.gaps) == 1 and "/velodyne_points" in report.gaps[0]["reason"]
    assert report.gaps[0]["time_s"] == pytest.approx(0.4)
    assert report.missing_ticks["/velodyne_points"] == 2
    first = episodes[0]
    # nearest-stamp matching: observation t carries the scan stamped nearest to tick t
    np.testing.assert_allclose([c[0, 0] for c in first.observations],
                               [t / 1e3 for t in cloud_ms[:5]], rtol=1e-6)
    np.testing.assert_allclose(first.actions[:, 0], [(100 * i + 1) / 1e3 for i in range(4)], rtol=1e-6)
    np.testing.assert_array_equal(first.actions[:, 1], 1.0)
    assert first.truncated[-1] and not first.terminated.any()
    assert any("no reward topic" in note for note in report.notes)


def test_jitter_beyond_tolerance_is_a_gap_not_a_match(tmp_path):
    cloud_ms = [0.0, 100.0, 245.0, 300.0, 400.0]                        # 245 is 45 ms off its tick
    bag = tmp_path / "late.bag"
    write_ros1_bag_with_rosbags(bag, cloud_ms, [100.0 * i for i in range(5)])
    episodes, report = read_bag(bag, parse_bag_config(ROBOT_CONFIG))
    assert [len(e) for e in episodes] == [1, 1]          # ticks 0-1 and 3-4; tick 2 is a gap
    assert len(report.gaps) == 1
    assert report.missing_ticks["/velodyne_points"] == 1


@pytest.mark.ros
def test_ros1_bag_recorded_by_debian_rosbag_with_out_of_order_stamps(tmp_path):
    """A bag written by Debian's rosbag Python API (the recorder's own library): header stamps
    of two scans are swapped in arrival order, which the report names."""
    if not (Path(DEBIAN_PYTHON).exists() and Path("/usr/lib/python3/dist-packages/rosbag").is_dir()):
        pytest.skip("no system python with Debian's python3-rosbag (make system-deps installs it)")
    bag = tmp_path / "recorded.bag"
    script = textwrap.dedent(f"""
        import struct, rosbag, rospy
        from sensor_msgs.msg import PointCloud2, PointField
        from geometry_msgs.msg import Twist
        from std_msgs.msg import Header
        t0 = 1600000000.0
        order = [0, 1, 3, 2, 4, 5, 6, 7]      # scans 2 and 3 arrive swapped
        with rosbag.Bag({str(bag)!r}, "w") as bag:
            for k, i in enumerate(order):
                stamp = rospy.Time.from_sec(t0 + 0.1 * i)
                data = b"".join(struct.pack("<fff", 0.1 * i, 1.0, 2.0) for _ in range(3))
                cloud = PointCloud2(header=Header(stamp=stamp, frame_id="velodyne"), height=1, width=3,
                                    fields=[PointField(n, 4 * j, PointField.FLOAT32, 1) for j, n in enumerate("xyz")],
                                    is_bigendian=False, point_step=12, row_step=36, data=data, is_dense=True)
                arrival = rospy.Time.from_sec(t0 + 0.1 * k + 0.001)
                bag.write("/velodyne_points", cloud, arrival)
                cmd = Twist(); cmd.linear.x = 0.1 * k; cmd.angular.z = -0.5
                bag.write("/cmd_vel", cmd, rospy.Time.from_sec(t0 + 0.1 * k + 0.002))
    """)
    subprocess.run([DEBIAN_PYTHON, "-c", script], check=True, capture_output=True)
    config = {**ROBOT_CONFIG, "time_source": "header"}
    episodes, report = read_bag(bag, parse_bag_config(config))
    assert report.out_of_order["/velodyne_points"] == 1
    assert "/velodyne_points: message 3" in report.out_of_order_examples[0]
    # sorted by stamp, every tick has its scan: one episode of 7 steps, scans in stamp order
    assert [len(e) for e in episodes] == [7]
    np.testing.assert_allclose([c[0, 0] for c in episodes[0].observations],
                               [0.1 * i for i in range(8)], rtol=1e-6)
    # by arrival (log) time nothing is out of order, and each tick takes the scan that arrived then
    by_arrival, arrival_report = read_bag(bag, parse_bag_config({**ROBOT_CONFIG, "time_source": "log"}))
    assert arrival_report.out_of_order["/velodyne_points"] == 0
    np.testing.assert_allclose([c[0, 0] for c in by_arrival[0].observations],
                               [0.1 * i for i in (0, 1, 3, 2, 4, 5, 6, 7)], rtol=1e-6)


def test_bag_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match="b.yaml: missing key 'observations'"):
        parse_bag_config({"action": ROBOT_CONFIG["action"]}, "b.yaml")
    mixed = {**ROBOT_CONFIG, "observations": [*ROBOT_CONFIG["observations"],
                                              {"key": "j", "topic": "/j", "type": "joint_state"}]}
    with pytest.raises(ConfigError, match="only observation"):
        parse_bag_config(mixed)
    with pytest.raises(ConfigError, match="reward.type"):
        parse_bag_config({**ROBOT_CONFIG, "reward": {"topic": "/r", "type": "string"}})
    bag = tmp_path / "b.bag"
    write_ros1_bag_with_rosbags(bag, [0.0, 100.0], [0.0])
    wrong_topic = {**ROBOT_CONFIG, "action": {"topic": "/nope", "type": "twist"}}
    with pytest.raises(ConfigError, match=r"topic\(s\) \['/nope'\] not in the bag"):
        read_bag(bag, parse_bag_config(wrong_topic))


def test_cli_dataset_to_bag_and_back(tmp_path, capsys):
    from robokit.data import load_episodes, save_minari
    from robokit.ros.cli import main

    rng = np.random.default_rng(6)
    episodes = [vector_episode(rng, 6, True), vector_episode(rng, 4, False)]
    dataset = save_minari(episodes, tmp_path / "dataset")
    assert main(["dataset-to-bag", str(dataset), "--out", str(tmp_path / "bag"), "--storage", "sqlite3"]) == 0
    assert main(["bag-to-dataset", str(tmp_path / "bag"), "--out", str(tmp_path / "back")]) == 0
    assert "2 episode(s), 10 transition(s)" in capsys.readouterr().out
    assert_same_episodes(episodes, load_episodes(tmp_path / "back"))
    assert main(["bag-to-dataset", str(tmp_path / "bag"), "--out", str(tmp_path / "x"),
                 "--config", str(tmp_path / "missing.yaml")]) == 2
    assert "missing.yaml" in capsys.readouterr().err


def test_messages_module_names_types():
    assert m.ros1_type_name("sensor_msgs/msg/PointCloud2") == "sensor_msgs/PointCloud2"
    assert m.ros2_type_name("sensor_msgs/PointCloud2") == "sensor_msgs/msg/PointCloud2"
    assert m.Time.from_ns(1_500_000_001).to_ns() == 1_500_000_001


def test_image_topics_read_into_vector_free_episodes(tmp_path):
    """mono16 depth images + twists in a ROS 1 bag -> episodes of (T+1, H, W) float32 images."""
    from rosbags.rosbag1 import Writer
    from rosbags.typesys import Stores, get_typestore

    from robokit.ros.backends import to_rosbags

    store = get_typestore(Stores.ROS1_NOETIC)
    t0 = 1_600_000_000 * 10**9
    images = [np.full((3, 4), 100 * i, np.uint16) for i in range(4)]
    with Writer(tmp_path / "depth.bag") as writer:
        depth = writer.add_connection("/depth", "sensor_msgs/msg/Image", typestore=store)
        cmd = writer.add_connection("/cmd_vel", "geometry_msgs/msg/Twist", typestore=store)
        for i, image in enumerate(images):
            stamp = t0 + i * 10**8
            msg = convert.array_to_image(image, "16UC1", stamp_ns=stamp)
            writer.write(depth, stamp, store.serialize_ros1(to_rosbags(msg, store), msg.MSGTYPE))
            twist = convert.array_to_twist([0.1 * i, 0, 0, 0, 0, 0])
            writer.write(cmd, stamp, store.serialize_ros1(to_rosbags(twist, store), twist.MSGTYPE))
    config = parse_bag_config({"rate_hz": 10, "observations": [{"key": "depth", "topic": "/depth", "type": "image"}],
                               "action": {"topic": "/cmd_vel", "type": "twist", "axes": ["vx"]}})
    (episode,), _ = read_bag(tmp_path / "depth.bag", config)
    assert episode.observations.shape == (4, 3, 4) and episode.observations.dtype == np.float32
    np.testing.assert_array_equal(episode.observations, np.stack(images).astype(np.float32))
    np.testing.assert_allclose(episode.actions[:, 0], [0.0, 0.1, 0.2], rtol=1e-6)


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_truncated_or_missing_bag_is_a_clear_error(tmp_path, storage):
    from robokit.ros.bags import BagError

    bag = write_bag([vector_episode(np.random.default_rng(7), 5, True)], tmp_path / "bag", storage=storage)
    metadata = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    data_file = bag / metadata["relative_file_paths"][0]
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
    with pytest.raises(BagError, match="bag"):
        read_bag(bag)
    with pytest.raises(BagError, match="no such bag"):
        read_bag(tmp_path / "absent", parse_bag_config(ROBOT_CONFIG))


def test_cli_point_cloud_bag_to_npz_dataset_and_back(tmp_path, capsys):
    from robokit.data import load_episodes
    from robokit.ros.cli import main

    episodes = [cloud_episode(np.random.default_rng(8), 4), cloud_episode(np.random.default_rng(9), 2)]
    write_bag(episodes, tmp_path / "bag", storage="mcap")
    assert main(["bag-to-dataset", str(tmp_path / "bag"), "--out", str(tmp_path / "minari_dir")]) == 2
    assert "--out" in capsys.readouterr().err and not (tmp_path / "minari_dir").exists()
    assert main(["bag-to-dataset", str(tmp_path / "bag"), "--out", str(tmp_path / "clouds.npz")]) == 0
    assert_same_episodes(episodes, load_episodes(tmp_path / "clouds.npz"))
    assert main(["dataset-to-bag", str(tmp_path / "clouds.npz"), "--out", str(tmp_path / "again")]) == 0
    assert_same_episodes(episodes, read_bag(tmp_path / "again")[0])


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), drop=st.floats(0.0, 0.3), late=st.floats(0.0, 0.2))
def test_sync_invariants_on_random_jitter_and_losses(tmp_path_factory, seed, drop, late):
    """Against a brute-force count: every transition joins two ticks whose scans and command lie
    within tolerance of their ticks, and no valid transition is lost or invented."""
    rng = np.random.default_rng(seed)
    ticks, tolerance = 30, 30.0

    def stamps(fraction_dropped):
        jitter = rng.uniform(-25, 25, ticks)
        jitter[rng.random(ticks) < late] += rng.choice([-1, 1]) * 60.0      # beyond tolerance
        keep = rng.random(ticks) >= fraction_dropped
        keep[0] = keep[-1] = True                                          # fixes the grid's ends
        jitter[0] = jitter[-1] = 0.0
        return [100.0 * i + j for i, j in enumerate(jitter) if keep[i]]

    cloud_ms, cmd_ms = stamps(drop), stamps(drop / 2)
    bag = tmp_path_factory.mktemp("sync") / "random.bag"
    write_ros1_bag_with_rosbags(bag, cloud_ms, cmd_ms)
    episodes, _ = read_bag(bag, parse_bag_config(ROBOT_CONFIG))

    def matched(times):   # brute force: per tick, is the nearest stamp within tolerance?
        times = np.array(times)
        return [bool(np.abs(times - 100.0 * i).min() <= tolerance) for i in range(ticks)]
    obs_ok, act_ok = matched(cloud_ms), matched(cmd_ms)
    expected = sum(obs_ok[i] and act_ok[i] and obs_ok[i + 1] for i in range(ticks - 1))
    assert sum(len(e) for e in episodes) == expected
    for episode in episodes:
        scan_ms = np.array([c[0, 0] for c in episode.observations]) * 1e3
        tick_of = np.round(scan_ms / 100.0)
        assert np.all(np.abs(scan_ms - 100.0 * tick_of) <= tolerance + 1e-3)
        assert np.all(np.diff(tick_of) == 1), "an episode never spans a gap"
        command_ms = episode.actions[:, 0] * 1e3
        assert np.all(np.abs(command_ms - 100.0 * tick_of[:-1]) <= tolerance + 1e-3)
