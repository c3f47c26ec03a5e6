"""``make demo`` stage: a short INTACT train + eval on a small procedural set.

Trains a standard and an INTACT PointNet (same budget) on a reduced procedural set,
scores both on the ModelNet-C suite (mCE relative to the standard model), draws the
teacher's saliency on one test cloud, and prints a small table. A reduced version of
``benchmarks/intact_result.py``: fewer objects, points, epochs and channels.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

DEMO_CONFIG = dict(
    epochs=16,
    warmup_epochs=3,
    width=0.5,
    num_points=128,
    train_per_class=12,
    test_per_class=6,
    batch_size=16,
    task_clouds=12,
    progress=False,
)


def run_demo(run_dir: Path) -> dict:
    """Train standard + INTACT, evaluate on ModelNet-C, write everything under ``run_dir``.

    Returns:
        headline numbers: clean / 50%-drop / jitter-0.05 accuracy (%) per method, INTACT's mCE
        relative to standard, and the paths of the result JSON and the saliency PNG.
    """
    import numpy as np
    import torch

    from robokit.intact.cli import draw_saliency
    from robokit.intact.evaluate import (
        build_suite,
        error_metrics,
        evaluate_sets,
        headline_corruptions,
        plot_heatmap,
        write_json,
    )
    from robokit.intact.saliency import teacher_saliency
    from robokit.intact.train import TrainConfig, load_dataset, train

    torch.set_num_threads(1)
    run_dir = Path(run_dir)
    base = TrainConfig(**DEMO_CONFIG)
    data = load_dataset(base)
    sets = build_suite(data.test_points, "modelnet-c", base.num_points, seed=0)
    results, trainers = {}, {}
    for method in ("standard", "intact"):
        run = train(dataclasses.replace(base, method=method, out=run_dir / method), data)
        trainers[method] = run["trainer"]
        results[method] = evaluate_sets(run["trainer"].model, sets, data.test_labels)
        plot_heatmap(
            results[method], run_dir / f"{method}_modelnet_c.png", title=f"{method} (demo)"
        )
    metrics = {m: error_metrics(results[m], results["standard"]) for m in results}
    drop, noise = headline_corruptions()["drop50"], headline_corruptions()["noise0.05"]
    summary = {
        m: {
            "clean": 100 * r["clean"],
            "drop50": 100 * r["accuracy"][drop[0]][drop[1]],
            "noise0.05": 100 * r["accuracy"][noise[0]][noise[1]],
            "mCE": metrics[m]["mCE"],
        }
        for m, r in results.items()
    }
    cloud = sets[("clean", -1)][0]
    saliency = teacher_saliency(trainers["intact"].teacher, torch.from_numpy(cloud[None]))[
        0
    ].numpy()
    png = draw_saliency(
        cloud,
        saliency,
        run_dir / "saliency.png",
        f"INTACT teacher saliency, test cloud 0 ({data.class_names[int(data.test_labels[0])]})",
    )
    json_path = write_json(
        {"config": DEMO_CONFIG, "summary": summary, "results": results, "metrics": metrics},
        run_dir / "intact_demo.json",
    )
    print(
        f"INTACT demo ({len(data.train_labels)} training clouds, {base.num_points} points, {base.epochs} epochs)"
    )
    print(f"{'method':<10}{'clean %':>9}{'drop50 %':>10}{'jitter.05 %':>13}{'mCE':>7}")
    for method, row in summary.items():
        print(
            f"{method:<10}{row['clean']:>9.1f}{row['drop50']:>10.1f}{row['noise0.05']:>13.1f}{row['mCE']:>7.3f}"
        )
    print(
        f"saliency of test cloud 0: min {np.min(saliency):.2f} max {np.max(saliency):.2f} -> {png}"
    )
    return {
        "standard_clean": summary["standard"]["clean"],
        "intact_clean": summary["intact"]["clean"],
        "standard_drop50": summary["standard"]["drop50"],
        "intact_drop50": summary["intact"]["drop50"],
        "standard_noise0.05": summary["standard"]["noise0.05"],
        "intact_noise0.05": summary["intact"]["noise0.05"],
        "intact_mCE": summary["intact"]["mCE"],
        "json": str(json_path),
        "saliency_png": str(png),
    }
