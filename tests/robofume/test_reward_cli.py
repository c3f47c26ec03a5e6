"""``robokit robofume reward train|eval``: train/eval on labelled frames, the one CLI error convention."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from robokit.robofume.reward_cli import METRICS_FILE, load_frames, reward_main, split_frames

INSTRUCTIONS = np.array(["open the drawer", "close the drawer"])


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def write_frames(path, n: int = 24, size: int = 32, instructions=INSTRUCTIONS) -> None:
    """Labelled frames in the failures.npz layout: success iff a bright square is drawn."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 60, (n, size, size, 3), dtype=np.uint8)
    labels = np.arange(n) % 2
    images[labels == 1, 8:24, 8:24, 1] = 250
    np.savez(path, images=images, instructions=instructions[(np.arange(n) // 2) % len(instructions)], labels=labels)


def train_args(data, out, *extra):
    return ["train", "--data", str(data), "--out", str(out), "--kind", "cnn", "--epochs", "15", "--lr", "1e-3",
            "--augment-pad", "0", *extra]


def test_train_then_eval(tmp_path, capsys):
    write_frames(tmp_path / "frames.npz")
    assert reward_main(train_args(tmp_path / "frames.npz", tmp_path / "model")) == 0
    out = capsys.readouterr().out
    assert "held-out" in out and "FP rate" in out
    metrics = json.loads((tmp_path / "model" / METRICS_FILE).read_text())
    assert metrics["heldout_table"]["n"] == 8 and metrics["train"]["n_pos"] == 8
    assert reward_main(["eval", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "frames.npz"),
                        "--json", str(tmp_path / "table.json")]) == 0
    table = json.loads((tmp_path / "table.json").read_text())
    assert table["n"] == 24 and table["accuracy"] >= 0.9


def test_split_is_stratified_and_disjoint(tmp_path):
    write_frames(tmp_path / "frames.npz", n=20)
    frames = load_frames(tmp_path / "frames.npz")
    train, held = split_frames(frames, 0.3, seed=0)
    assert held[2].sum() == 3 and (held[2] == 0).sum() == 3 and len(train[2]) == 14


def _fails(argv, capsys, match: str) -> None:
    assert reward_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("robokit robofume reward: error: ") and match in err, err


def test_bad_input_one_line_exit_2_nothing_written(tmp_path, capsys):
    write_frames(tmp_path / "frames.npz")
    write_frames(tmp_path / "big.npz", size=64)
    write_frames(tmp_path / "other.npz", instructions=np.array(["open the door"]))
    assert reward_main(train_args(tmp_path / "frames.npz", tmp_path / "model")) == 0
    capsys.readouterr()
    written = tmp_path / "table.json"
    _fails(["eval", "--model", str(tmp_path / "missing"), "--data", str(tmp_path / "frames.npz"),
            "--json", str(written)], capsys, "missing: no such reward model directory")
    _fails(["eval", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "big.npz"), "--json", str(written)],
           capsys, "images of shape (64, 64, 3)")
    _fails(["eval", "--model", str(tmp_path / "model"), "--data", str(tmp_path / "other.npz"),
            "--json", str(written)], capsys, "unknown instruction 'open the door'")
    _fails(train_args(tmp_path / "nothing.npz", tmp_path / "model2"), capsys, "nothing.npz: no such file")
    _fails(train_args(tmp_path / "frames.npz", tmp_path / "model"), capsys, "already exists")
    np.savez(tmp_path / "nolabels.npz", images=np.zeros((2, 32, 32, 3), np.uint8), instructions=INSTRUCTIONS)
    _fails(train_args(tmp_path / "nolabels.npz", tmp_path / "model3"), capsys, "key 'labels' missing")
    assert not written.exists() and not (tmp_path / "model2").exists() and not (tmp_path / "model3").exists()


def test_make_data_directory_gives_labelled_frames(tmp_path):
    """A real `make-data` directory (rfenv's PushBackForth-v0, MuJoCo, tiny counts): its failure
    frames as negatives, the last frame of each target demo as a positive with the demo's instruction."""
    pytest.importorskip("mujoco")
    from robokit.robofume.data import make_robofume_data

    make_robofume_data("robokit/PushBackForth-v0", tmp_path / "data", prior_tasks_demos=0, target_demos=1,
                       failures=2, seed=0, progress=False)
    images, texts, labels = load_frames(tmp_path / "data")
    assert images.shape == (4, 64, 64, 3) and images.dtype == np.uint8
    assert labels.tolist() == [0, 0, 1, 1]
    assert texts[2:] == ["push the block to the green zone", "push the block back to the start zone"]
    assert len(load_frames(tmp_path / "data", final_frames=2)[2]) == 6


def test_wired_as_robokit_robofume_reward(tmp_path, capsys):
    """`robokit robofume reward` reaches reward_main (it pointed at a missing function before)."""
    from robokit.cli import main

    assert main(["robofume", "reward", "eval", "--model", str(tmp_path / "none"), "--data", str(tmp_path / "x.npz")]) == 2
    assert "robokit robofume reward: error: " in capsys.readouterr().err
