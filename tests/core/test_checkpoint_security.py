"""A crafted checkpoint never runs code: every command that loads one refuses it.

The malicious file is a real pickle whose object's ``__reduce__`` calls ``exec`` to write a
marker file when unpickled without ``weights_only``; the first test proves it does exactly
that, the others that no robokit loader lets it run.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from robokit.cli import main
from robokit.core.checkpoint import UnsafeCheckpointError, load_checkpoint, save_checkpoint

REPO = Path(__file__).resolve().parents[2]
RUNNER_YAML = REPO / "ros_bridge" / "config" / "example.yaml"


class _Payload:
    """Unpickling this calls ``exec(code)``: the classic arbitrary-code checkpoint."""

    def __init__(self, marker: Path) -> None:
        self.code = f"open({str(marker)!r}, 'w').write('code ran')"

    def __reduce__(self):
        return (exec, (self.code,))


def write_malicious_checkpoint(path: Path, marker: Path) -> Path:
    """A file that looks like a robokit checkpoint and plants ``marker`` when fully unpickled."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"robokit_checkpoint": 1, "agent": _Payload(marker), "model": _Payload(marker)}, path)
    return path


@pytest.fixture
def evil(tmp_path: Path) -> tuple[Path, Path]:
    marker = tmp_path / "MARKER"
    return write_malicious_checkpoint(tmp_path / "evil.pt", marker), marker


def test_the_payload_really_runs_code_without_weights_only(evil) -> None:
    path, marker = evil
    torch.load(path, weights_only=False)  # what robokit did before: runs the payload
    assert marker.read_text() == "code ran"


def test_load_checkpoint_refuses_it_without_running_it(evil) -> None:
    path, marker = evil
    with pytest.raises(UnsafeCheckpointError, match="refused"):
        load_checkpoint(path)
    assert not marker.exists()


def test_plain_data_round_trips_under_weights_only(tmp_path: Path) -> None:
    import numpy as np

    state = {"weights": torch.ones(2), "array": np.arange(3), "scalar": np.float64(1.5),
             "rng": np.random.default_rng(0).bit_generator.state, "path": tmp_path, "nested": [{"a": (1, "b")}]}
    loaded = load_checkpoint(save_checkpoint(tmp_path / "ok.pt", state))
    assert torch.equal(loaded["array"], torch.arange(3)) and loaded["scalar"] == 1.5
    assert loaded["rng"] == state["rng"] and loaded["path"] == str(tmp_path)
    assert loaded["nested"] == [{"a": (1, "b")}]


def test_save_refuses_python_objects_naming_the_key(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match=r"state.nested\[0\]"):
        save_checkpoint(tmp_path / "x.pt", {"nested": [object()]})
    assert not (tmp_path / "x.pt").exists()


def _commands(tmp: Path, evil_path: Path) -> dict[str, list[str]]:
    planted = tmp / "run"
    write_malicious_checkpoint(planted / "checkpoints" / "step_000000100.pt", tmp / "MARKER")
    (planted / "metrics.csv").write_text("step\n")
    return {
        "eval": ["eval", "--checkpoint", str(evil_path)],
        "robustness eval": ["robustness", "eval", "--checkpoint", str(evil_path)],
        "robustness saliency": ["robustness", "saliency", "--checkpoint", str(evil_path)],
        "kitti eval-detection": ["kitti", "eval-detection", "--checkpoint", str(evil_path), "--data", str(tmp)],
        "collect --policy checkpoint": ["collect", "--env", "robokit/ArmReach-v0", "--episodes", "1",
                                        "--policy", "checkpoint", "--checkpoint", str(evil_path),
                                        "--out", str(tmp / "collected")],
        "train --init-from": ["train", "--algo", "sac", "--online-steps", "10", "--no-progress",
                              "--init-from", str(evil_path), "--out", str(tmp / "fresh")],
        "train --resume": ["train", "--algo", "sac", "--online-steps", "10", "--no-progress", "--resume",
                           "--out", str(planted)],
        "ros run --checkpoint": ["ros", "run", "--config", str(RUNNER_YAML), "--checkpoint", str(evil_path),
                                 "--transport", "rosbridge", "--port", "1"],
    }


COMMANDS = ["eval", "robustness eval", "robustness saliency", "kitti eval-detection",
            "collect --policy checkpoint", "train --init-from", "train --resume", "ros run --checkpoint"]


@pytest.mark.parametrize("name", COMMANDS)
def test_no_command_executes_a_crafted_checkpoint(name: str, evil, tmp_path: Path, capsys) -> None:
    if name == "kitti eval-detection" and importlib.util.find_spec("spconv") is None:
        pytest.skip("the detector needs spconv (the lidar extra)")
    evil_path, marker = evil
    code = main(_commands(tmp_path, evil_path)[name])
    err = capsys.readouterr().err
    assert not marker.exists(), f"{name}: the checkpoint's code ran"
    assert code == 2, err
    assert "refused: the file holds Python objects" in err and "Traceback" not in err
