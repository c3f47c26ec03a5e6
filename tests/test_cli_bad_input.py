"""Probe every command with bad input: exit code 2, one line naming the input, no traceback,
nothing written.

One parametrised test per command over a table of bad inputs. Commands run in-process
through ``robokit.cli.main`` (fast); two subprocess checks pin the real exit code, the
absent traceback, and ``--debug``.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from robokit.cli import main
from robokit.core.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[1]
RUNNER_YAML = REPO / "ros_bridge" / "config" / "example.yaml"
HAS_SPCONV = importlib.util.find_spec("spconv") is not None

Case = Callable[[Path, dict], tuple[list[str], str]]


class _Payload:
    def __reduce__(self):
        return (exec, ("raise SystemExit('code ran')",))


@pytest.fixture(scope="module")
def fx(tmp_path_factory, shared_data_or_none) -> dict:
    """Bad (and a few good) inputs, built once, outside each test's watched folder."""
    from robokit.algos import make_agent, save_agent

    root = tmp_path_factory.mktemp("bad_inputs")
    torch.save({"robokit_checkpoint": 1, "agent": _Payload()}, root / "evil.pt")
    save_checkpoint(root / "noagent.pt", {"weights": torch.zeros(2)})
    (root / "garbage.pt").write_bytes(b"not a zip archive at all")
    save_agent(make_agent("sac", 5, 2), root / "agent5.pt")
    minari = {}
    for name, meta in {"list": [], "nokey": {"total_episodes": 1}, "type": {
            "dataset_id": "x-v0", "minari_version": "0.5", "data_format": "hdf5", "observation_space": 5,
            "action_space": "{}", "total_episodes": 1, "total_steps": 1}}.items():
        (root / f"minari_{name}" / "data").mkdir(parents=True)
        (root / f"minari_{name}" / "data" / "metadata.json").write_text(json.dumps(meta))
        minari[name] = root / f"minari_{name}"
    fixtures = {"root": root, "minari": minari}
    if HAS_SPCONV:
        from dataclasses import asdict

        from robokit.detection.model import SecondDetector, preset_config

        config = preset_config("cpu-tiny")
        fixtures["detector"] = save_checkpoint(root / "detector.pt", {
            "model": SecondDetector(config).state_dict(), "detector_config": asdict(config)})
    if HAS_SPCONV and shared_data_or_none is not None:
        kitti = root / "kitti_bad_label"
        shutil.copytree(shared_data_or_none / "kitti" / "object", kitti)
        with open(kitti / "training" / "label_2" / "000001.txt", "a") as handle:
            handle.write("Car 0.0 0 garbage\n")
        fixtures["kitti_bad_label"] = kitti
    return fixtures


@pytest.fixture(scope="module")
def shared_data_or_none() -> Path | None:
    from tests.conftest import SHARED_DATA

    return SHARED_DATA if SHARED_DATA.is_dir() else None


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in folder.rglob("*")}


def assert_bad_input(argv: list[str], needle: str, watched: Path, capsys) -> None:
    """``robokit argv`` exits 2 with one error line containing ``needle``; ``watched`` is unchanged."""
    before = snapshot(watched)
    code = main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if ": error: " in line]
    assert code == 2, f"exit {code}; stderr:\n{err[-3000:]}"
    assert "Traceback" not in err, err[-3000:]
    assert len(errors) == 1 and errors[0] == lines[-1], f"not one error line at the end:\n{err[-3000:]}"
    assert errors[0].startswith("robokit ")
    assert needle in errors[0], f"{needle!r} not named in: {errors[0]}"
    assert snapshot(watched) == before, "a refused command wrote files"


def occupied(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.csv").write_text("step\n1\n")
    return folder


TRAIN: dict[str, Case] = {
    "no --algo": lambda t, f: ([], "--algo is required"),
    "unknown algo": lambda t, f: (["--algo", "nope"], "unknown --algo 'nope'"),
    "zero batch": lambda t, f: (["--algo", "sac", "--agent.batch-size", "0"], "--agent.batch-size"),
    "negative batch": lambda t, f: (["--algo", "sac", "--agent.batch-size", "-5"], "--agent.batch-size"),
    "negative steps": lambda t, f: (["--algo", "sac", "--online-steps", "-1"], "--online-steps"),
    "zero eval episodes": lambda t, f: (["--algo", "sac", "--eval-episodes", "0"], "--eval-episodes"),
    "fraction above 1": lambda t, f: (["--algo", "rlpd", "--offline-fraction", "1.5"], "--offline-fraction"),
    "zero utd": lambda t, f: (["--algo", "rlpd", "--agent.utd-ratio", "0"], "--agent.utd-ratio"),
    "unknown env": lambda t, f: (["--algo", "sac", "--env", "NoSuchEnv-v0", "--out", str(t / "r")],
                                 "NoSuchEnv-v0"),
    "missing dataset": lambda t, f: (["--algo", "bc", "--dataset", str(t / "nope"), "--offline-steps", "5",
                                      "--out", str(t / "r")], str(t / "nope")),
    "occupied out": lambda t, f: (["--algo", "sac", "--out", str(occupied(t / "run"))], "--overwrite"),
    "resume and overwrite": lambda t, f: (["--algo", "sac", "--resume", "--overwrite", "--out", str(t / "r")],
                                          "--resume and --overwrite"),
    "init from agentless": lambda t, f: (["--algo", "sac", "--init-from", str(f["root"] / "noagent.pt"),
                                          "--out", str(t / "r")], "noagent.pt"),
    "init from garbage": lambda t, f: (["--algo", "sac", "--init-from", str(f["root"] / "garbage.pt"),
                                        "--out", str(t / "r")], "garbage.pt"),
}

EVAL: dict[str, Case] = {
    "missing checkpoint": lambda t, f: (["--checkpoint", str(t / "nope.pt")], "nope.pt"),
    "agentless checkpoint": lambda t, f: (["--checkpoint", str(f["root"] / "noagent.pt")], "'agent'"),
    "garbage checkpoint": lambda t, f: (["--checkpoint", str(f["root"] / "garbage.pt")], "garbage.pt"),
    "crafted checkpoint": lambda t, f: (["--checkpoint", str(f["root"] / "evil.pt")], "refused"),
    "zero episodes": lambda t, f: (["--checkpoint", str(f["root"] / "agent5.pt"), "--episodes", "0"],
                                   "--episodes"),
    "no env stored": lambda t, f: (["--checkpoint", str(f["root"] / "agent5.pt")], "pass --env"),
    "unknown env": lambda t, f: (["--checkpoint", str(f["root"] / "agent5.pt"), "--env", "NoSuchEnv-v0"],
                                 "NoSuchEnv-v0"),
    "observation mismatch": lambda t, f: (["--checkpoint", str(f["root"] / "agent5.pt"), "--env",
                                           "robokit/ArmReach-v0"], "expects observations"),
}

COLLECT: dict[str, Case] = {
    "unknown env": lambda t, f: (["--env", "NoSuchEnv-v9", "--out", str(t / "d")], "NoSuchEnv-v9"),
    "zero episodes": lambda t, f: (["--episodes", "0", "--out", str(t / "d")], "--episodes"),
    "zero max steps": lambda t, f: (["--max-steps", "0", "--out", str(t / "d")], "--max-steps"),
    "checkpoint policy without file": lambda t, f: (["--policy", "checkpoint", "--out", str(t / "d")],
                                                    "--checkpoint"),
    "agentless checkpoint": lambda t, f: (["--policy", "checkpoint", "--checkpoint",
                                           str(f["root"] / "noagent.pt"), "--out", str(t / "d")], "'agent'"),
    "existing out": lambda t, f: (["--episodes", "1", "--out", str(occupied(t / "d"))], "--overwrite"),
    "out under a file": lambda t, f: (["--env", "robokit/ArmReach-v0", "--episodes", "1", "--out",
                                       str(_file(t / "plain") / "sub")], "plain"),
}

DATASET: dict[str, Case] = {
    "info missing": lambda t, f: (["info", str(t / "nope")], "nope"),
    "metadata not an object": lambda t, f: (["info", str(f["minari"]["list"])], "metadata.json"),
    "metadata missing key": lambda t, f: (["info", str(f["minari"]["nokey"])], "key 'dataset_id'"),
    "metadata wrong type": lambda t, f: (["info", str(f["minari"]["type"])], "key 'observation_space'"),
    "convert missing source": lambda t, f: (["convert", str(t / "nope"), str(t / "out.npz")], "nope"),
}

ROBUSTNESS: dict[str, Case] = {
    "zero epochs": lambda t, f: (["train", "--epochs", "0", "--out", str(t / "r")], "--epochs"),
    "zero batch": lambda t, f: (["train", "--batch-size", "0", "--out", str(t / "r")], "--batch-size"),
    "fraction above 1": lambda t, f: (["train", "--val-fraction", "2", "--out", str(t / "r")],
                                      "--val-fraction"),
    "tiny dataset": lambda t, f: (["train", "--train-per-class", "1", "--dataset-points", "64",
                                   "--out", str(t / "r")], "validation split"),
    "missing dataset folder": lambda t, f: (["train", "--dataset", str(t / "nope"), "--out", str(t / "r")],
                                            "nope"),
    "occupied out": lambda t, f: (["train", "--out", str(occupied(t / "run"))], "--overwrite"),
    "eval missing checkpoint": lambda t, f: (["eval", "--checkpoint", str(t / "nope.pt")], "nope.pt"),
    "eval foreign checkpoint": lambda t, f: (["eval", "--checkpoint", str(f["root"] / "noagent.pt")],
                                             "noagent.pt"),
    "eval crafted checkpoint": lambda t, f: (["eval", "--checkpoint", str(f["root"] / "evil.pt")], "refused"),
    "saliency garbage checkpoint": lambda t, f: (["saliency", "--checkpoint", str(f["root"] / "garbage.pt"),
                                                  "--out", str(t / "s.png")], "garbage.pt"),
}

KITTI: dict[str, Case] = {
    "eval-detection missing checkpoint": lambda t, f: (["eval-detection", "--checkpoint", str(t / "no.pt"),
                                                        "--data", str(t)], "no.pt"),
    "eval-detection foreign checkpoint": lambda t, f: (["eval-detection", "--checkpoint",
                                                        str(f["root"] / "noagent.pt"), "--data", str(t)],
                                                       "not a robokit detector checkpoint"),
    "eval-detection missing data": lambda t, f: (["eval-detection", "--checkpoint", str(_detector(f)),
                                                  "--data", str(t / "nodata")], "nodata"),
    "eval-detection malformed label": lambda t, f: (["eval-detection", "--checkpoint",
                                                     str(_detector(f)), "--data",
                                                     str(_kitti_bad_label(f)), "--json", str(t / "r.json")],
                                                    "000001.txt:8"),
    "eval-detection zero severity": lambda t, f: (["eval-detection", "--checkpoint", str(_detector(f)),
                                                   "--data", str(t), "--severity", "0"], "--severity"),
    "train-detector zero epochs": lambda t, f: (["train-detector", "--data", str(t), "--out", str(t / "r"),
                                                 "--epochs", "0"], "--epochs"),
    "train-detector occupied out": lambda t, f: (["train-detector", "--data", str(t / "nodata"), "--out",
                                                  str(occupied(t / "run"))], "--overwrite"),
    "track missing detections": lambda t, f: (["track", "--detections", str(t / "nodets"), "--out",
                                               str(t / "o")], "nodets"),
    "eval-tracking missing labels": lambda t, f: (["eval-tracking", "--labels", str(t / "nolabels"),
                                                   "--results", str(t)], "nolabels"),
    "track malformed size correction": lambda t, f: (["track", "--detections", str(t), "--out", str(t / "o"),
                                                      "--size-correction", str(_file(t / "sizes.json"))],
                                                     "sizes.json"),
    "fit-size-correction missing labels": lambda t, f: (["fit-size-correction", "--detections", str(t),
                                                         "--labels", str(t / "nolabels"), "--out",
                                                         str(t / "sizes.json")], "nolabels"),
}

ROS: dict[str, Case] = {
    "bag-to-dataset missing bag": lambda t, f: (["bag-to-dataset", str(t / "nobag"), "--out", str(t / "d.npz")],
                                                "nobag"),
    "dataset-to-bag missing dataset": lambda t, f: (["dataset-to-bag", str(t / "nodata"), "--out",
                                                     str(t / "bag")], "nodata"),
    "run missing config": lambda t, f: (["run", "--config", str(t / "none.yaml"), "--duration-s", "0.1"],
                                        "none.yaml"),
    "dataset-to-bag zero rate": lambda t, f: (["dataset-to-bag", str(t / "nodata"), "--out", str(t / "bag"),
                                               "--rate-hz", "0"], "--rate-hz"),
    "run zero threads": lambda t, f: (["run", "--config", str(RUNNER_YAML), "--torch-threads", "0"],
                                      "--torch-threads"),
    "bag-to-clouds missing bag": lambda t, f: (["bag-to-clouds", str(t / "nobag"), "--topic", "/points",
                                                "--out", str(t / "clouds")], "nobag"),
    "run agentless checkpoint": lambda t, f: (["run", "--config", str(RUNNER_YAML), "--checkpoint",
                                               str(f["root"] / "noagent.pt"), "--transport", "rosbridge"],
                                              "'agent'"),
}

SIM_LIDAR: dict[str, Case] = {
    "scan sensor on a missing body": lambda t, f: (["scan", "--model", str(_mjcf(t)), "--body", "roof_lidar",
                                                    "--out", str(t / "s.bin")], "'roof_lidar'"),
    "scan zero beams": lambda t, f: (["scan", "--model", str(_mjcf(t)), "--body", "robot", "--pattern",
                                      "solid_state", "--beams", "0", "--out", str(t / "s.bin")], "solid_state"),
    "scan zero azimuth steps": lambda t, f: (["scan", "--model", str(_mjcf(t)), "--body", "robot",
                                              "--azimuth-steps", "0", "--out", str(t / "s.bin")], "azimuth_steps"),
    "scan missing model": lambda t, f: (["scan", "--model", str(t / "none.xml"), "--out", str(t / "s.bin")],
                                        "none.xml"),
    "scan existing out": lambda t, f: (["scan", "--model", str(_mjcf(t)), "--body", "robot", "--out",
                                        str(_file(t / "old.bin"))], "--overwrite"),
    "make-objects broken mesh": lambda t, f: (["make-objects", "--no-robosuite", "--meshes", str(_meshes(t)),
                                               "--out", str(t / "objs"), "--no-progress"], "broken.stl"),
    "make-objects empty mesh folder": lambda t, f: (["make-objects", "--no-robosuite", "--meshes",
                                                     str(_folder(t / "empty")), "--out", str(t / "o")],
                                                    "no .obj or .stl"),
    "make-scenes zero beams": lambda t, f: (["make-scenes", "--pattern", "solid_state", "--beams", "0", "--out",
                                             str(t / "scenes")], "solid_state"),
    "make-scenes occupied out": lambda t, f: (["make-scenes", "--frames", "1", "--out",
                                               str(occupied(t / "run"))], "--overwrite"),
}

DEMO: dict[str, Case] = {
    "out under a file": lambda t, f: (["--out", str(_file(t / "plain")), "--stages", "data"], "plain"),
}


def _detector(fx: dict) -> Path:
    return _needs(fx, "detector", "the detector needs spconv (the lidar extra)")["detector"]


def _kitti_bad_label(fx: dict) -> Path:
    return _needs(fx, "kitti_bad_label", "needs spconv and the real KITTI samples in ../shared/data")[
        "kitti_bad_label"]


def _mjcf(folder: Path) -> Path:
    path = folder / "scene.xml"
    path.write_text('<mujoco><worldbody><geom type="plane" size="5 5 .1"/>'
                    '<body name="robot" pos="0 0 1"><geom type="sphere" size=".1"/></body></worldbody></mujoco>')
    return path


def _meshes(folder: Path) -> Path:
    """A mesh folder whose second file is not an STL."""
    meshes = _folder(folder / "meshes")
    (meshes / "a_cube.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nv 0 0 1\nf 1 2 3\nf 1 2 4\nf 1 3 4\nf 2 3 4\n")
    (meshes / "broken.stl").write_text("solid nothing\nnot a facet\n")
    return meshes


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("a file, not a folder")
    return path


def _needs(fx: dict, key: str, reason: str) -> dict:
    if key not in fx:
        pytest.skip(reason)
    return fx


def command_test(prefix: list[str], table: dict[str, Case]):
    """One parametrised test over ``table``: each case runs ``robokit *prefix *argv``."""
    @pytest.mark.parametrize("name", sorted(table))
    def test(name: str, tmp_path: Path, fx: dict, capsys) -> None:
        argv, needle = table[name](tmp_path, fx)
        assert_bad_input(prefix + argv, needle, tmp_path, capsys)

    return test


test_train_bad_input = command_test(["train"], TRAIN)
test_eval_bad_input = command_test(["eval"], EVAL)
test_collect_bad_input = command_test(["collect"], COLLECT)
test_dataset_bad_input = command_test(["dataset"], DATASET)
test_robustness_bad_input = command_test(["robustness"], ROBUSTNESS)
test_kitti_bad_input = command_test(["kitti"], KITTI)
test_ros_bad_input = command_test(["ros"], ROS)
test_demo_bad_input = command_test(["demo"], DEMO)
test_sim_lidar_bad_input = command_test(["sim-lidar"], SIM_LIDAR)


def _subprocess(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "robokit", *args], capture_output=True, text=True,
                          timeout=300, cwd=REPO)


def test_real_process_exit_code_and_no_traceback(tmp_path):
    result = _subprocess("eval", "--checkpoint", str(tmp_path / "nope.pt"))
    assert result.returncode == 2
    assert result.stderr.strip() == f"robokit eval: error: {tmp_path / 'nope.pt'}: no such checkpoint file"


def test_debug_flag_shows_the_traceback(tmp_path):
    result = _subprocess("eval", "--checkpoint", str(tmp_path / "nope.pt"), "--debug")
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "CheckpointError" in result.stderr


def test_the_error_convention_imports_no_torch():
    """Commands that never need torch (dataset, kitti tracking, ros bags) stay quick to start."""
    code = ("import sys, robokit.core.cli_errors, robokit.data.cli, robokit.tracking.cli, robokit.ros.cli; "
            "print('torch' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert result.stdout.strip() == "False", result.stderr[-2000:]
