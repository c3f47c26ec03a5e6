"""INTACT against its baselines under ModelNet-C's exact protocol, for PointNet, DGCNN and sparse conv.

For every backbone and seed, trains standard / adversarial (PGD) / curriculum / INTACT with one
``TrainConfig`` that differs only in ``--method`` (same backbone, optimiser, epochs, batches), then
scores each model on ONE fixed corrupted copy of the test set (procedural, or ``--dataset FOLDER``) built by ModelNet-C's
protocol (:mod:`robokit.intact.protocol`): every test cloud is corrupted at ModelNet-C's 1,024
points with the 7 corruptions x 5 levels and the model gets what survives (variable size; thinned
by ``num_points / 1024`` when the model's input size is smaller). mCE / RmCE use ModelNet-C's
formulas and its DGCNN reference accuracies (``jiawei-ren/ModelNet-C``,
``modelnetc_utils/modelnetc_utils/eval.py``, ``DGCNN_OA``); ``mCE_std_dgcnn`` is the same
metric for the DGCNN runs against robokit's own standard-trained DGCNN of the same seed (same clouds).

Each number is a mean over seeds with a 95% interval (Student t). The last stdout line is the
benchmark JSON: ``robokit`` is INTACT's mCE averaged over backbones, ``peers`` the baselines'
(lower is better), ``ratio`` = best baseline's mCE / INTACT's (above 1 when INTACT wins);
``ratios`` gives it per backbone. Per-run results go to ``OUT/runs.json`` as they finish (a
rerun skips finished runs), the summary to ``OUT/summary.json``.

    python benchmarks/intact_modelnet_c.py            # full recipe (docs/intact.md), ~25-40 min on one core
    python benchmarks/intact_modelnet_c.py --quick    # smoke version, 1 seed, tiny budget, < 3 min
    python benchmarks/intact_modelnet_c.py --dataset SIM_OBJECTS --backbones pointnet   # simulated LiDAR scans
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from robokit.intact.evaluate import DGCNN_MODELNET_C, error_metrics, evaluate_sets, write_json
from robokit.intact.protocol import PROTOCOLS, build_suite, mean_ci95
from robokit.intact.train import METHODS, TrainConfig, load_dataset, train

BACKBONES = ("pointnet", "dgcnn", "sparse")
BASELINES = tuple(m for m in METHODS if m != "intact")
#: per-backbone size of the CPU recipe (input points, channel width, DGCNN's k, epochs, training objects
#: per class, learning rate): PointNet is ~10x cheaper per step than the other two, so it gets more data;
#: DGCNN runs at 128 input points (its kNN graphs cost ~N^2) with a 3x learning rate to learn in 10 epochs
FULL_SIZE = {"pointnet": {"num_points": 256, "width": 0.5, "dgcnn_k": 20, "epochs": 10, "train_per_class": 16},
             "dgcnn": {"num_points": 128, "width": 0.125, "dgcnn_k": 10, "epochs": 10, "train_per_class": 12,
                       "lr": 3e-3},
             "sparse": {"num_points": 256, "width": 0.25, "dgcnn_k": 20, "epochs": 10, "train_per_class": 12}}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 seed, tiny budget (smoke test)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--backbones", nargs="+", choices=BACKBONES, default=list(BACKBONES))
    parser.add_argument("--epochs", type=int, default=None, help="override every backbone's epochs")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--num-points", type=int, default=None,
                        help="override every backbone's model input size (1024 = ModelNet-C exactly)")
    parser.add_argument("--contrast", action="store_true",
                        help="also score the saved standard models' drop-global accuracy under both protocols")
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                        help="train only these (the summary uses every finished run in --out)")
    parser.add_argument("--train-per-class", type=int, default=None, help="override every backbone's")
    parser.add_argument("--test-per-class", type=int, default=4)
    parser.add_argument("--protocol", choices=PROTOCOLS, default="modelnet-c")
    parser.add_argument("--dataset", default="procedural",
                        help="'procedural' or a ModelNet40-layout HDF5 folder, e.g. the simulated LiDAR object scans "
                             "of `robokit sim-lidar make-objects` (every cloud of the folder is used: "
                             "--train-per-class / --test-per-class apply to the procedural set only)")
    parser.add_argument("--out", type=Path, default=Path("runs/intact_modelnet_c"))
    parser.add_argument("--baselines-from", type=Path, default=None,
                        help="runs.json of an earlier run: reuse its standard/adversarial/curriculum runs when "
                             "every setting the baselines use is equal (to re-measure INTACT alone after a change)")
    return parser.parse_args(argv)


def base_config(args: argparse.Namespace, backbone: str) -> TrainConfig:
    """The shared TrainConfig of one backbone (``method`` and ``seed`` are set per run)."""
    if args.quick:
        return TrainConfig(epochs=3, warmup_epochs=1, backbone=backbone, width=0.125, dgcnn_k=8, num_points=128,
                           train_per_class=6, test_per_class=3, progress=False, dataset=args.dataset)
    size = dict(FULL_SIZE[backbone])
    overrides = (("epochs", args.epochs), ("train_per_class", args.train_per_class), ("num_points", args.num_points))
    size.update({k: v for k, v in overrides if v})
    return TrainConfig(warmup_epochs=min(3, size["epochs"] - 1), backbone=backbone, test_per_class=args.test_per_class,
                       batch_size=args.batch_size, progress=False, dataset=args.dataset, **size)


def score(model, sets: dict, labels: np.ndarray) -> dict:
    """Clean accuracy, accuracy per corruption and level, and mCE / RmCE against ModelNet-C's DGCNN."""
    result = evaluate_sets(model, sets, labels)
    metrics = error_metrics(result, DGCNN_MODELNET_C)
    return {"suite": result, "mCE": metrics["mCE"], "RmCE": metrics["RmCE"], "CE": metrics["CE"]}


def run_backbone(args, backbone: str, seeds: list[int], done: dict, save) -> None:
    """Train and score every method x seed of one backbone that ``done`` does not hold yet."""
    base = base_config(args, backbone)
    data = load_dataset(base)
    sets = None
    for method in args.methods:  # method-major: the baselines of every seed finish before INTACT starts
        for seed in seeds:
            key = f"{backbone}/{method}/seed{seed}"
            if key in done:
                continue
            if sets is None:  # one fixed corrupted test set per backbone (its input size), eval seed 0
                sets = build_suite(data.test_points, base.num_points, seed=0, protocol=args.protocol)
            cfg = dataclasses.replace(base, method=method, seed=seed,
                                      out=args.out / backbone / method / f"seed{seed}", overwrite=True)
            started, cpu = time.perf_counter(), time.process_time()
            result = train(cfg, data)
            train_s = time.perf_counter() - started
            record = score(result["trainer"].model, sets, data.test_labels)
            done[key] = {"backbone": backbone, "method": method, "seed": seed, "train_seconds": train_s,
                         "cpu_seconds": time.process_time() - cpu, "final_level": result["final_level"], **record}
            print(f"  {key:<28} clean {100 * record['suite']['clean']:5.1f}  mCE {record['mCE']:.3f}  "
                  f"RmCE {record['RmCE']:.3f}  level {result['final_level']}  train {train_s:5.1f} s", flush=True)
            save()


#: TrainConfig fields only INTACT reads (the baselines do not depend on them)
INTACT_ONLY = {"meta_every", "meta_tasks", "task_classes", "task_clouds", "snapshots", "meta_rule", "adapt_steps",
               "adapt_teacher", "drop_candidates", "attack_steps", "saliency_target"}


def baseline_settings(config_key: str) -> dict:
    """The settings a baseline run depends on, from a stored per-backbone configuration key."""
    config, protocol = json.loads(config_key)
    return {k: v for k, v in config.items() if k not in INTACT_ONLY | {"method", "seed", "out"}} | {
        "protocol": protocol}


def reuse_baselines(source: Path, done: dict, backbones: list[str], seeds: list[int]) -> int:
    """Copy the baseline runs of ``source`` (a runs.json) into ``done`` where their settings match."""
    earlier = json.loads(source.read_text())
    copied = 0
    for backbone in backbones:
        theirs, ours = earlier.get("_config", {}).get(backbone), done["_config"][backbone]
        if theirs is None or baseline_settings(theirs) != baseline_settings(ours):
            print(f"{backbone}: baselines in {source} were run with other settings; not reused", flush=True)
            continue
        for seed in seeds:
            for method in BASELINES:
                key = f"{backbone}/{method}/seed{seed}"
                if key in earlier and key not in done:
                    done[key] = {**earlier[key], "reused_from": str(source)}
                    copied += 1
    return copied


def add_std_dgcnn_reference(done: dict) -> None:
    """mCE / RmCE of every DGCNN run against robokit's standard DGCNN of the same seed (same clouds).

    Only DGCNN runs: the other backbones see other input sizes, so other (thinned) clouds.
    """
    for record in done.values():
        if not isinstance(record, dict) or record.get("backbone") != "dgcnn":
            continue
        reference = done.get(f"dgcnn/standard/seed{record['seed']}")
        if reference is not None:
            metrics = error_metrics(record["suite"], reference["suite"])
            record["mCE_std_dgcnn"], record["RmCE_std_dgcnn"] = metrics["mCE"], metrics["RmCE"]


def summarise(done: dict, backbones: list[str], seeds: list[int]) -> dict:
    """Per backbone and method: mean and 95% interval over seeds of every headline number."""
    summary: dict = {}
    for backbone in backbones:
        rows = {}
        for method in METHODS:
            runs = [done[k] for s in seeds if (k := f"{backbone}/{method}/seed{s}") in done]
            if not runs:
                continue
            row = {key: mean_ci95([r[key] for r in runs]) for key in
                   ("mCE", "RmCE", "mCE_std_dgcnn", "train_seconds") if all(r.get(key) is not None for r in runs)}
            row["clean"] = mean_ci95([r["suite"]["clean"] for r in runs])
            row["OA"] = {name: float(np.mean([np.mean(list(r["suite"]["accuracy"][name].values())) for r in runs]))
                         for name in runs[0]["suite"]["accuracy"]}
            rows[method] = row
        if "intact" in rows and all(m in rows for m in BASELINES):
            rows["goal"] = goal_check(rows)
        summary[backbone] = rows
    return summary


def goal_check(rows: dict) -> dict:
    """INTACT's mCE interval entirely below every baseline's, and clean accuracy within 1 point of standard."""
    intact = rows["intact"]
    best = min(BASELINES, key=lambda m: rows[m]["mCE"]["mean"])
    below = all(intact["mCE"]["high"] < rows[m]["mCE"]["low"] for m in BASELINES)
    clean_gap = 100 * (rows["standard"]["clean"]["mean"] - intact["clean"]["mean"])
    return {"best_baseline": best, "ratio": rows[best]["mCE"]["mean"] / intact["mCE"]["mean"],
            "mCE_intervals_separate": below, "clean_gap_points": clean_gap,
            "met": bool(below and clean_gap <= 1.0)}


def print_table(summary: dict) -> None:
    print(f"\n{'backbone':<9}{'method':<12}{'clean %':>16}{'mCE':>18}{'RmCE':>18}{'mCE vs std DGCNN':>20}"
          f"{'train s':>9}")
    for backbone, rows in summary.items():
        for method in METHODS:
            if method not in rows:
                continue
            row = rows[method]
            clean = f"{100 * row['clean']['mean']:.1f} ± {100 * row['clean']['ci95']:.1f}"
            cells = [f"{row[k]['mean']:.3f} ± {row[k]['ci95']:.3f}" if k in row else "-"
                     for k in ("mCE", "RmCE", "mCE_std_dgcnn")]
            seconds = row.get("train_seconds", {}).get("mean", float("nan"))
            print(f"{backbone:<9}{method:<12}{clean:>16}{cells[0]:>18}{cells[1]:>18}{cells[2]:>20}{seconds:>9.1f}")
        if "goal" in rows:
            g = rows["goal"]
            print(f"{'':<9}goal: ratio {g['ratio']:.3f} (best baseline {g['best_baseline']}), intervals separate "
                  f"{g['mCE_intervals_separate']}, clean gap {g['clean_gap_points']:+.1f} pts -> "
                  f"{'MET' if g['met'] else 'not met'}")


def protocol_contrast(args, backbone: str, seeds: list[int]) -> dict:
    """Drop-global accuracy of the saved standard models under both protocols (the old one hid it).

    Returns {protocol: [clean, level 0..4] accuracies averaged over seeds}.
    """
    from robokit.intact.evaluate import load_classifier

    base = base_config(args, backbone)
    data = load_dataset(base)
    rows: dict[str, list] = {p: [] for p in PROTOCOLS}
    for seed in seeds:
        checkpoint = args.out / backbone / "standard" / f"seed{seed}" / "model.pt"
        if not checkpoint.is_file():
            continue
        model, _ = load_classifier(checkpoint)
        for protocol in PROTOCOLS:
            sets = build_suite(data.test_points, base.num_points, seed=0, protocol=protocol)
            result = evaluate_sets(model, {k: v for k, v in sets.items() if k[0] in ("clean", "dropout_global")},
                                   data.test_labels)
            rows[protocol].append([result["clean"], *result["accuracy"]["dropout_global"].values()])
    return {p: np.mean(v, axis=0).tolist() for p, v in rows.items() if v}


def describe(cfg: TrainConfig) -> str:
    """One backbone's budget in words."""
    k = f" k {cfg.dgcnn_k}" if cfg.backbone == "dgcnn" else ""
    data = (f"{cfg.train_per_class}/{cfg.test_per_class} train/test per class" if cfg.dataset == "procedural"
            else "every cloud of the folder")
    return f"{cfg.backbone} width {cfg.width}{k}, {cfg.num_points} pts, {cfg.epochs} epochs, batch {cfg.batch_size}, {data}"


def benchmark_line(summary: dict, seeds: list[int], args, seconds: float) -> dict:
    """The one JSON line: INTACT's mCE and the baselines', averaged over backbones (lower is better)."""
    backbones = [b for b, rows in summary.items() if "goal" in rows]
    mean = {m: float(np.mean([summary[b][m]["mCE"]["mean"] for b in backbones])) for m in METHODS}
    peers = {m: round(mean[m], 4) for m in BASELINES}
    sizes = ", ".join(describe(base_config(args, b)) for b in backbones)
    notes = (f"ModelNet-C protocol ({args.protocol}), mCE vs ModelNet-C's DGCNN reference, {args.dataset} set; "
             f"{len(seeds)} seed(s); {sizes}; " +
             "; ".join(f"{b}: ratio {summary[b]['goal']['ratio']:.3f}, goal {'met' if summary[b]['goal']['met'] else 'not met'}"
                       for b in backbones) + f"; {seconds / 60:.1f} min" +
             ("; QUICK smoke run, not the result" if args.quick else ""))
    return {"benchmark": "intact_modelnet_c", "unit": "mCE", "higher_is_better": False,
            "robokit": round(mean["intact"], 4), "peers": peers,
            "ratio": round(min(mean[m] for m in BASELINES) / mean["intact"], 4),
            "ratios": {b: round(summary[b]["goal"]["ratio"], 4) for b in backbones}, "notes": notes}


def main(argv=None) -> None:
    torch.set_num_threads(1)
    args = parse_args(argv)
    seeds = args.seeds[:1] if args.quick else args.seeds
    out = args.out = args.out / ("quick" if args.quick else "full")
    out.mkdir(parents=True, exist_ok=True)
    runs_file = out / "runs.json"
    done = json.loads(runs_file.read_text()) if runs_file.is_file() and not args.quick else {}
    configs = done.setdefault("_config", {})
    for backbone in args.backbones:  # a backbone's finished runs are reused only under the same configuration
        key = json.dumps([dataclasses.asdict(base_config(args, backbone)), args.protocol], default=str)
        if configs.setdefault(backbone, key) != key:
            raise SystemExit(f"{runs_file} holds {backbone} runs of another configuration; pick another --out")

    def save() -> None:
        write_json(done, runs_file)

    if args.baselines_from is not None:
        print(f"reused {reuse_baselines(args.baselines_from, done, args.backbones, seeds)} baseline runs "
              f"from {args.baselines_from}", flush=True)
        save()
    started = time.perf_counter()
    for backbone in args.backbones:
        print(f"{backbone}: {dataclasses.asdict(base_config(args, backbone))}", flush=True)
        run_backbone(args, backbone, seeds, done, save)
    add_std_dgcnn_reference(done)
    save()
    summary = summarise(done, args.backbones, seeds)
    write_json({"seeds": seeds, "protocol": args.protocol, "summary": summary,
                "configs": {b: dataclasses.asdict(base_config(args, b)) for b in args.backbones}},
               out / "summary.json")
    print_table(summary)
    if args.contrast:
        contrast = {b: protocol_contrast(args, b, seeds) for b in args.backbones}
        write_json({"drop_global_by_protocol": contrast}, out / "protocol_contrast.json")
        for backbone, by_protocol in contrast.items():
            for protocol, accs in by_protocol.items():
                print(f"{backbone} standard, {protocol:<10}: clean {100 * accs[0]:.1f}, drop-global 25..75%: " +
                      " ".join(f"{100 * a:.1f}" for a in accs[1:]))
    print(json.dumps(benchmark_line(summary, seeds, args, time.perf_counter() - started)))


if __name__ == "__main__":
    main()
