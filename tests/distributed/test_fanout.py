"""Fan-out of evaluation episodes, collection and robustness suites: Ray gives the same numbers."""

from __future__ import annotations

import numpy as np
import pytest

from robokit.distributed.options import DistributedOptions
from tests.distributed.conftest import ENV_ID

RAY2 = DistributedOptions("ray", workers=2)
pytestmark = pytest.mark.slow  # each Ray fan-out starts 2 worker processes (~10 s on a busy 2-core machine)


@pytest.mark.parametrize("deterministic", [True, False])
def test_eval_episodes_equal_single_and_ray(ray_local, sac_checkpoint, deterministic):
    from robokit.trainers.cli import evaluate_checkpoint

    single = evaluate_checkpoint(sac_checkpoint, 5, ENV_ID, seed=3, deterministic=deterministic)
    on_ray = evaluate_checkpoint(sac_checkpoint, 5, ENV_ID, seed=3, deterministic=deterministic, options=RAY2)
    assert single == on_ray
    assert single["eval/return_std"] > 0  # five different episodes, not one repeated


@pytest.mark.parametrize("policy", ["random", "stochastic checkpoint"])
def test_collect_equal_single_and_ray(ray_local, sac_checkpoint, policy):
    """Episode k is one Ray task with main's per-episode seeding: reset seed + k, actions seeded by
    (seed, k) (random) or the agent's stream reseeded with seed + k (stochastic checkpoint)."""
    from robokit.data.collect import collect_episodes

    kwargs = {} if policy == "random" else {"policy": "checkpoint", "checkpoint": str(sac_checkpoint),
                                            "deterministic": False}
    single = collect_episodes(ENV_ID, 3, seed=5, max_steps=20, progress=False, **kwargs)
    on_ray = collect_episodes(ENV_ID, 3, seed=5, max_steps=20, progress=False, options=RAY2, **kwargs)
    assert [len(ep) for ep in on_ray] == [20, 20, 20]
    for a, b in zip(single, on_ray, strict=True):
        np.testing.assert_array_equal(a.observations, b.observations)
        np.testing.assert_array_equal(a.actions, b.actions)
        np.testing.assert_array_equal(a.rewards, b.rewards)
    assert not np.array_equal(single[0].actions, single[1].actions)  # each episode has its own stream


def test_robustness_suite_equal_single_and_ray(ray_local, tmp_path):
    """`robokit robustness eval` on a tiny procedural model: the same JSON with and without Ray."""
    import json

    from robokit.cli import main as robokit_main

    model = tmp_path / "standard"
    assert robokit_main(["robustness", "train", "--method", "standard", "--backbone", "pointnet", "--dataset",
                         "procedural", "--out", str(model), "--epochs", "1", "--num-points", "64",
                         "--train-per-class", "3", "--test-per-class", "3", "--dataset-points", "128",
                         "--batch-size", "16", "--no-progress"]) == 0
    reports = {}
    for name, extra in (("single", []), ("ray", ["--distributed", "ray", "--workers", "2"])):
        reports[name] = tmp_path / f"{name}.json"
        assert robokit_main(["robustness", "eval", "--checkpoint", str(model / "final.pt"), "--json",
                             str(reports[name]), "--no-progress", *extra]) == 0
    single, on_ray = (json.loads(reports[k].read_text()) for k in ("single", "ray"))
    assert single == on_ray
    assert len(single["accuracy"]) == 7 and all(len(levels) == 5 for levels in single["accuracy"].values())
    assert (tmp_path / "ray.png").stat().st_size > 0


def test_degrade_tracking_equal_single_and_ray(ray_local, shared_data, tmp_path):
    """`robokit kitti degrade-tracking` on a real KITTI sequence: the same table with and without Ray."""
    import json

    from robokit.cli import main as robokit_main

    tracking = shared_data / "kitti" / "tracking"
    common = ["kitti", "degrade-tracking", "--detections", str(tracking / "detections" / "pointrcnn_Car"),
              "--labels", str(tracking / "training" / "label_02"), "--seqs", "0003", "--kinds", "miss,jitter",
              "--rates", "0,0.3"]
    tables = {}
    for name, extra in (("single", []), ("ray", ["--distributed", "ray", "--workers", "2"])):
        assert robokit_main([*common, "--json", str(tmp_path / f"{name}.json"), *extra]) == 0
        tables[name] = json.loads((tmp_path / f"{name}.json").read_text())
    assert tables["single"] == tables["ray"]
    rows = tables["single"]["rows"]
    assert [(r["kind"], r["rate"]) for r in rows] == [("miss", 0.0), ("miss", 0.3), ("jitter", 0.0), ("jitter", 0.3)]
    assert rows[1]["mota"] < rows[0]["mota"]


def test_eval_detection_sweep_equal_single_and_ray(ray_local, shared_data, tmp_path):
    """`robokit kitti eval-detection --sweep` of a detector trained here on the three real KITTI
    scans (cpu-tiny, 40 epochs as in tests/detection: the clean AP is non-zero): the same rows with
    and without Ray, timings aside."""
    import json

    import torch

    pytest.importorskip("spconv")
    from robokit.detection.cli import eval_main, train_main

    torch.set_num_threads(1)
    data, out = shared_data / "kitti" / "object", tmp_path / "detector"
    assert train_main(["--data", str(data), "--out", str(out), "--preset", "cpu-tiny", "--epochs", "40",
                       "--batch-size", "3", "--no-augment", "--checkpoint-every", "40"]) == 0
    reports = {}
    for name, extra in (("single", []), ("ray", ["--distributed", "ray", "--workers", "2"])):
        path = tmp_path / f"{name}.json"
        assert eval_main(["--checkpoint", str(out / "final.pt"), "--data", str(data), "--json", str(path),
                          "--sweep", "--sweep-severities", "1", "5", *extra]) == 0
        rows = json.loads(path.read_text())["rows"]
        reports[name] = [{k: v for k, v in row.items() if k not in ("seconds", "frames_per_second")} for row in rows]
    assert reports["single"] == reports["ray"]
    clean = reports["single"][0]
    assert clean["corruption"] is None and len(reports["single"]) > 1
    bev = [ap for levels in clean["ap"].values() for ap in levels["bev"].values() if ap is not None]
    assert max(bev) > 0.0  # a detector that finds something, so equal rows mean equal numbers
