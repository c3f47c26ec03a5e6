"""``robokit sim-lidar``: the success paths (bad input is in tests/test_cli_bad_input.py)."""

from __future__ import annotations

import numpy as np
import pytest

from robokit.cli import main
from robokit.pointcloud.io import load_modelnet_h5, read_kitti_velodyne, read_shape_names

pytest.importorskip("mujoco")

SCENE = ('<mujoco><worldbody><geom type="plane" size="5 5 .1"/><geom type="box" pos="6 0 1" size=".5 5 1"/>'
         '<body name="robot" pos="0 0 1"><geom type="sphere" size=".3"/></body></worldbody></mujoco>')


def test_scan_writes_kitti_and_organised_clouds(tmp_path, capsys):
    model = tmp_path / "scene.xml"
    model.write_text(SCENE)
    assert main(["sim-lidar", "scan", "--model", str(model), "--body", "robot", "--pattern", "vlp16",
                 "--out", str(tmp_path / "s.bin")]) == 0
    cloud = read_kitti_velodyne(tmp_path / "s.bin")
    assert cloud.shape[1] == 4 and len(cloud) > 1000
    assert np.linalg.norm(cloud[:, :3], axis=1).min() > 0.3  # its own sphere is excluded
    assert main(["sim-lidar", "scan", "--model", str(model), "--body", "robot", "--pattern", "solid_state",
                 "--beams", "10", "--azimuth-steps", "20", "--organised", "--out", str(tmp_path / "g.npy")]) == 0
    assert np.load(tmp_path / "g.npy", allow_pickle=False).shape == (10, 20, 4)
    assert "returns of" in capsys.readouterr().out


def test_make_objects_then_overwrite_leaves_no_staging(tmp_path):
    meshes = tmp_path / "meshes"
    meshes.mkdir()
    (meshes / "tetra.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 3 2\nf 1 2 4\nf 1 4 3\nf 2 3 4\n")
    args = ["sim-lidar", "make-objects", "--no-robosuite", "--meshes", str(meshes), "--out", str(tmp_path / "o"),
            "--train-per-class", "2", "--test-per-class", "1", "--num-points", "128", "--azimuth-steps", "512",
            "--no-progress"]
    assert main(args) == 0
    assert read_shape_names(tmp_path / "o") == ["tetra"]
    assert load_modelnet_h5(tmp_path / "o", "train")[0].shape == (2, 128, 3)
    assert main(args) == 2  # occupied
    assert main(args + ["--overwrite", "--seed", "1"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meshes", "o"]  # no staging folder left behind
