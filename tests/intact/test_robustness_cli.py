"""`robokit robustness` end to end on a tiny procedural set, and clear errors on bad inputs."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest

from robokit.cli import main as robokit_main
from robokit.pointcloud.procedural import PROCEDURAL_CLASSES

TINY_TRAIN = ["--epochs", "3", "--warmup-epochs", "1", "--width", "0.25", "--num-points", "64",
              "--train-per-class", "5", "--test-per-class", "2", "--dataset-points", "256",
              "--batch-size", "16", "--task-clouds", "8", "--no-progress"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Two tiny models (standard, intact) trained through the CLI."""
    root = tmp_path_factory.mktemp("robustness")
    for method in ("standard", "intact"):
        code = robokit_main(["robustness", "train", "--method", method, "--backbone", "pointnet",
                             "--dataset", "procedural", "--out", str(root / method), *TINY_TRAIN])
        assert code == 0
    return root


def test_train_eval_saliency_end_to_end(trained, capsys):
    root = trained
    assert (root / "intact" / "final.pt").is_file() and (root / "intact" / "config.yaml").is_file()
    ref_json = root / "standard.json"
    assert robokit_main(["robustness", "eval", "--checkpoint", str(root / "standard" / "final.pt"),
                         "--dataset", "procedural", "--suite", "modelnet-c", "--json", str(ref_json),
                         "--no-progress"]) == 0
    out_json = root / "intact.json"
    assert robokit_main(["robustness", "eval", "--checkpoint", str(root / "intact" / "final.pt"),
                         "--suite", "modelnet-c", "--json", str(out_json), "--reference", str(ref_json),
                         "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "dropout_global" in printed and "mCE =" in printed
    payload = json.loads(out_json.read_text())
    assert payload["method"] == "intact" and payload["num_test"] == 2 * len(PROCEDURAL_CLASSES)
    assert payload["protocol"] == "modelnet-c"
    assert set(payload["accuracy"]) == {"scale", "jitter", "rotate", "dropout_global", "dropout_local",
                                        "add_global", "add_local"}
    assert all(len(levels) == 5 for levels in payload["accuracy"].values())
    assert payload["metrics"]["mCE"] > 0
    assert out_json.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    reference = json.loads(ref_json.read_text())
    assert reference["metrics"] is None  # no reference for the reference itself

    png = root / "saliency.png"
    assert robokit_main(["robustness", "saliency", "--checkpoint", str(root / "intact" / "final.pt"),
                         "--sample", "3", "--out", str(png)]) == 0
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "INTACT teacher" in capsys.readouterr().out
    assert robokit_main(["robustness", "saliency", "--checkpoint", str(root / "standard" / "final.pt"),
                         "--sample", "0", "--out", str(root / "grad.png")]) == 0
    assert "gradient saliency" in capsys.readouterr().out


def test_eval_on_another_suite(trained, tmp_path):
    out = tmp_path / "m40c.json"
    assert robokit_main(["robustness", "eval", "--checkpoint", str(trained / "standard" / "final.pt"),
                         "--suite", "modelnet40-c", "--json", str(out), "--no-progress"]) == 0
    assert len(json.loads(out.read_text())["accuracy"]) >= 10


def test_truncated_checkpoint_gives_a_clear_error(trained, tmp_path, capsys):
    broken = tmp_path / "broken.pt"
    broken.write_bytes((trained / "standard" / "final.pt").read_bytes()[:500])
    code = robokit_main(["robustness", "eval", "--checkpoint", str(broken), "--json", str(tmp_path / "x.json")])
    assert code == 2
    err = capsys.readouterr().err
    assert str(broken) in err and "cannot read checkpoint" in err
    assert not (tmp_path / "x.json").exists()


def test_bad_reference_and_sample_index_give_clear_errors(trained, tmp_path, capsys):
    bad_ref = tmp_path / "ref.json"
    bad_ref.write_text('{"clean": 0.5')
    code = robokit_main(["robustness", "eval", "--checkpoint", str(trained / "standard" / "final.pt"),
                         "--reference", str(bad_ref), "--json", str(tmp_path / "y.json"), "--no-progress"])
    assert code == 2 and str(bad_ref) in capsys.readouterr().err
    code = robokit_main(["robustness", "saliency", "--checkpoint", str(trained / "intact" / "final.pt"),
                         "--sample", "999", "--out", str(tmp_path / "s.png")])
    assert code == 2 and "out of range" in capsys.readouterr().err


def test_dataset_with_nan_names_the_split_and_cloud(tmp_path, capsys):
    folder = tmp_path / "modelnet"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        data = rng.uniform(-1, 1, size=(6, 32, 3)).astype(np.float32)
        if split == "train":
            data[4, 7, 1] = np.nan
        with h5py.File(folder / f"ply_data_{split}0.h5", "w") as handle:
            handle["data"] = data
            handle["label"] = np.array([[0], [1], [0], [1], [0], [1]], dtype=np.int64)
        (folder / f"{split}_files.txt").write_text(f"ply_data_{split}0.h5\n")
    code = robokit_main(["robustness", "train", "--dataset", str(folder), "--out", str(tmp_path / "run"),
                         "--method", "standard", *TINY_TRAIN])
    assert code == 2
    err = capsys.readouterr().err
    assert "train" in err and ("4" in err) and ("NaN" in err or "nan" in err.lower())


def test_help_works(capsys):
    with pytest.raises(SystemExit) as exit_info:
        robokit_main(["robustness", "train", "--help"])
    assert exit_info.value.code == 0
    assert "--method" in capsys.readouterr().out


def test_train_and_eval_on_a_modelnet_layout_folder(tmp_path, capsys):
    """--dataset PATH: the procedural set written in the ModelNet40 HDF5 layout goes through unchanged."""
    from robokit.pointcloud.procedural import prepare_procedural

    folder = prepare_procedural(tmp_path / "shapes", n_train_per_class=5, n_test_per_class=1, num_points=256)
    run = tmp_path / "run"
    assert robokit_main(["robustness", "train", "--method", "curriculum", "--dataset", str(folder),
                         "--out", str(run), *TINY_TRAIN]) == 0
    out = tmp_path / "eval.json"
    assert robokit_main(["robustness", "eval", "--checkpoint", str(run / "final.pt"), "--dataset", str(folder),
                         "--json", str(out), "--no-progress"]) == 0
    payload = json.loads(out.read_text())
    assert payload["dataset"] == str(folder) and payload["num_test"] == len(PROCEDURAL_CLASSES)


def test_truncated_dataset_file_is_named(tmp_path, capsys):
    from robokit.pointcloud.procedural import prepare_procedural

    folder = prepare_procedural(tmp_path / "shapes", n_train_per_class=2, n_test_per_class=1, num_points=64)
    train_file = folder / "ply_data_train0.h5"
    train_file.write_bytes(train_file.read_bytes()[:4000])
    code = robokit_main(["robustness", "train", "--dataset", str(folder), "--out", str(tmp_path / "run"),
                         *TINY_TRAIN])
    assert code == 2
    assert str(train_file) in capsys.readouterr().err
    assert not (tmp_path / "run" / "final.pt").exists()
