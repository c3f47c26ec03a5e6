"""End to end on the three real KITTI scans: the detector overfits them (loss falls, AP rises)
through the real CLI, then eval-detection scores the checkpoint clean and corrupted.

A reduced version of docs/kitti_detection.md's overfit run: the ``cpu-tiny`` preset, 40 epochs
(about 15 s of CPU)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("spconv")

EPOCHS = 40


@pytest.fixture(scope="module")
def trained(shared_data, tmp_path_factory):
    import torch

    from robokit.detection.cli import train_main

    torch.set_num_threads(1)  # module fixtures run before conftest's per-test thread limit
    out = tmp_path_factory.mktemp("overfit")
    data = shared_data / "kitti" / "object"
    code = train_main(
        [
            "--data",
            str(data),
            "--out",
            str(out),
            "--preset",
            "cpu-tiny",
            "--epochs",
            str(EPOCHS),
            "--batch-size",
            "3",
            "--no-augment",
            "--checkpoint-every",
            str(EPOCHS),
        ]
    )
    assert code == 0
    return data, out, json.loads((out / "summary.json").read_text())


@pytest.mark.slow
def test_detector_overfits_three_real_scans(trained):
    from robokit.detection.dataset import KittiObjectDataset
    from robokit.detection.evaluate import evaluate_detector
    from robokit.detection.model import SecondDetector, preset_config

    data, out, summary = trained
    assert (out / "config.yaml").is_file() and (out / "metrics.csv").is_file()
    assert summary["last_epoch_loss"] < 0.1 * summary["first_epoch_loss"]
    ap = summary["ap"]
    # the moderate car of 000002 and the easy pedestrian of 000000 (the others are ignored by the rules)
    assert (
        summary["num_gt"]["Car"]["moderate"] == 1 and summary["num_gt"]["Pedestrian"]["easy"] == 1
    )
    trained_bev = (ap["Car"]["bev"]["moderate"] + ap["Pedestrian"]["bev"]["easy"]) / 2
    untrained, _ = evaluate_detector(
        SecondDetector(preset_config("cpu-tiny")), KittiObjectDataset(data), progress=False
    )
    untrained_bev = (
        untrained.ap["Car"]["bev"]["moderate"] + untrained.ap["Pedestrian"]["bev"]["easy"]
    ) / 2
    assert untrained_bev == 0.0
    assert trained_bev >= 50.0, ap


def _eval(checkpoint, data, json_path, *extra) -> int:
    from robokit.detection.cli import eval_main

    return eval_main(
        ["--checkpoint", str(checkpoint), "--data", str(data), "--json", str(json_path), *extra]
    )


@pytest.mark.slow
def test_eval_detection_cli_clean_and_corrupted(trained, tmp_path, capsys):

    data, out, _ = trained
    checkpoint = out / "final.pt"
    report_path = tmp_path / "clean.json"
    assert _eval(checkpoint, data, report_path, "--results-dir", str(tmp_path / "results")) == 0
    printed = capsys.readouterr().out
    assert "Pedestrian" in printed and "moderate" in printed
    report = json.loads(report_path.read_text())
    assert report["frames"] == 3 and report["corruption"] is None
    assert report["ap"]["Cyclist"]["3d"]["moderate"] is None  # no countable cyclist in these scans
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == [
        "000000.txt",
        "000001.txt",
        "000002.txt",
    ]
    # the result files are valid KITTI label lines with a score column
    from robokit.pointcloud.io import read_kitti_labels

    for path in (tmp_path / "results").iterdir():
        for obj in read_kitti_labels(path):
            assert obj.type in ("Car", "Pedestrian", "Cyclist") and 0.0 <= obj.score <= 1.0
    corrupted_path = tmp_path / "drop.json"
    assert (
        _eval(checkpoint, data, corrupted_path, "--corruption", "drop_points", "--severity", "5")
        == 0
    )
    corrupted = json.loads(corrupted_path.read_text())
    assert corrupted["corruption"] == "drop_points" and corrupted["severity"] == 5
    assert set(corrupted["ap"]) == {"Car", "Pedestrian", "Cyclist"}


def test_eval_detection_rejects_a_foreign_checkpoint(tmp_path, shared_data, capsys):
    from robokit.core.checkpoint import save_checkpoint
    from robokit.detection.cli import eval_main

    foreign = save_checkpoint(tmp_path / "agent.pt", {"policy": {}})
    assert eval_main(["--checkpoint", str(foreign), "--data", str(shared_data / "kitti" / "object")]) == 2
    assert "agent.pt: not a robokit detector checkpoint" in capsys.readouterr().err
    truncated = tmp_path / "cut.pt"
    truncated.write_bytes(b"PK\x03\x04broken")
    assert eval_main(["--checkpoint", str(truncated), "--data", str(shared_data / "kitti" / "object")]) == 2
    assert "cut.pt" in capsys.readouterr().err


def _tiny_run(data, out, epochs, **overrides):
    from robokit.detection.train import overfit_config, train_detector

    config = overfit_config(
        data,
        out,
        epochs=epochs,
        preset="cpu-tiny",
        max_frames=2,
        checkpoint_every=1,
        eval_at_end=False,
        **overrides,
    )
    return train_detector(config, progress=False)


def _weights(path):
    from robokit.core.checkpoint import load_checkpoint

    return load_checkpoint(path)["model"]


def test_one_seed_gives_identical_training_and_resume_continues_exactly(shared_data, tmp_path):
    import csv

    import torch

    from robokit.core.checkpoint import checkpoint_steps

    torch.set_num_threads(1)
    data = shared_data / "kitti" / "object"
    first = _tiny_run(data, tmp_path / "a", 3)
    second = _tiny_run(data, tmp_path / "b", 3)
    assert first["last_epoch_loss"] == second["last_epoch_loss"]
    a, b = _weights(tmp_path / "a" / "final.pt"), _weights(tmp_path / "b" / "final.pt")
    assert all(torch.equal(a[k], b[k]) for k in a)
    # one checkpoint per epoch under checkpoints/, named by optimiser step (2 frames, batch 3: 1 step/epoch)
    steps = [step for step, _ in checkpoint_steps(tmp_path / "b" / "checkpoints")]
    assert steps == [3, 2, 1]
    # interrupted after epoch 2 (the last checkpoint and final.pt never written) and resumed:
    # the same final weights, and metrics.csv holds each step once
    (tmp_path / "b" / "checkpoints" / "step_000000003.pt").unlink()
    (tmp_path / "b" / "final.pt").unlink()
    resumed = _tiny_run(data, tmp_path / "b", 3, resume=True)
    c = _weights(tmp_path / "b" / "final.pt")
    assert all(torch.equal(a[k], c[k]) for k in a), "resumed run diverged"
    assert resumed["last_epoch_loss"] == first["last_epoch_loss"]
    # it ran one epoch (the third), not three from scratch
    assert resumed["first_epoch_loss"] == resumed["last_epoch_loss"] != first["first_epoch_loss"]
    with open(tmp_path / "b" / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(float(r["step"])) for r in rows] == [1, 2, 3]
    assert {"losses/total", "losses/cls", "train/lr"} <= set(rows[0])


@pytest.mark.slow
def test_eval_detection_sweep_over_kitti_c(trained, tmp_path, capsys):
    from robokit.pointcloud.corruptions import SUITES

    data, out, _ = trained
    checkpoint = out / "final.pt"
    assert (
        _eval(checkpoint, data, tmp_path / "sweep.json", "--sweep", "--sweep-severities", "5") == 0
    )
    report = json.loads((tmp_path / "sweep.json").read_text())
    settings = [(row["corruption"], row["severity"]) for row in report["rows"]]
    assert settings == [(None, None)] + [(name, 5) for name in SUITES["kitti-c"]]
    printed = capsys.readouterr().out
    assert "drop_points" in printed and "AP|R40 (3d)" in printed
