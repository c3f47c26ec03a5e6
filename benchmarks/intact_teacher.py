"""INTACT's teacher: first-order MAML vs Reptile, adapted vs un-adapted, on a held-out student.

Per seed:

1. train ``--students`` PointNet classifiers (standard training, procedural set) and keep each one's
   per-epoch snapshots: the task models the teacher meta-learns over;
2. meta-learn one teacher per outer rule (``fomaml`` and ``reptile``, same initialisation, same
   task stream: ``--outer-steps`` steps of 2 tasks = 4 classes x (clean | drop | noise | displace at
   U(0.2, 1)) x a task model), exactly as :class:`robokit.intact.hooks.CurriculumHooks` does in training;
3. train a *held-out* student (another seed, never a task model) and score saliency on test clouds:
   for each family, the teacher adapts (``--adapt-steps`` Adam steps, as before targeting a batch) to the
   held-out student's gradient saliency on 8 support clouds corrupted by that family, then ranks the
   points of the other test clouds. **Saliency quality** = the held-out student's cross-entropy after
   removing the top ``--drop`` fraction of points by that ranking (refilled to N), minus its clean
   cross-entropy: higher = the teacher found points the student depends on. Reference rows: the
   un-adapted (meta-learned) teacher, a random ranking, and the student's own gradient saliency.

The last stdout line is the benchmark JSON object (``ratio`` = adapted FOMAML gain / un-adapted FOMAML gain).

    python benchmarks/intact_teacher.py            # docs/intact.md's comparison (3 seeds)
    python benchmarks/intact_teacher.py --quick    # 1 seed, tiny budget (smoke test)
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import time

import numpy as np
import torch

from robokit.intact.attacks import resample_to
from robokit.intact.hooks import CurriculumHooks
from robokit.intact.meta import MetaConfig
from robokit.intact.saliency import point_cloud_saliency_map
from robokit.intact.train import (
    ClassificationTask,
    RobustTrainer,
    TrainConfig,
    intact_config,
    load_dataset,
    subsample_batch,
)

FAMILIES = ("clean", "drop", "noise", "displace")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 seed, tiny budget (smoke test)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--students", type=int, default=2, help="task-model students per seed")
    parser.add_argument("--epochs", type=int, default=8, help="epochs of every student")
    parser.add_argument("--outer-steps", type=int, default=200)
    parser.add_argument("--adapt-steps", type=int, default=4)
    parser.add_argument("--inner-lr", type=float, default=MetaConfig().inner_lr)
    parser.add_argument("--target", choices=["gradient", "removal"], default="gradient",
                        help="the teacher's saliency target (TrainConfig.saliency_target)")
    parser.add_argument("--drop", type=float, default=0.2, help="fraction of top-ranked points removed")
    return parser.parse_args()


def student_config(args: argparse.Namespace, seed: int) -> TrainConfig:
    return TrainConfig(method="standard", seed=seed, epochs=args.epochs, width=0.5, num_points=256,
                       train_per_class=20, test_per_class=10, batch_size=32, progress=False,
                       adapt_steps=args.adapt_steps)


def train_student(cfg: TrainConfig, data) -> tuple[torch.nn.Module, list[torch.nn.Module]]:
    """The trained student and a frozen copy after every epoch."""
    trainer = RobustTrainer(cfg, len(data.class_names))
    snapshots = []
    for _ in range(cfg.epochs):
        trainer.train_epoch(data)
        trainer.end_epoch(data)
        snapshots.append(copy.deepcopy(trainer.model).eval())
    return trainer.model.eval(), snapshots


def drop_ranked(clouds: np.ndarray, scores: list[np.ndarray], fraction: float, rng) -> np.ndarray:
    """Remove each cloud's top ``fraction`` points by ``scores``; refill to N with survivors."""
    k = int(round(fraction * clouds.shape[1]))
    out = []
    for cloud, score in zip(clouds, scores, strict=True):
        keep = np.argsort(-score)[k:]
        out.append(resample_to(cloud[keep], len(cloud), rng))
    return np.stack(out).astype(np.float32)


def quality(task, model, clouds, labels, scores, fraction, rng) -> float:
    """Mean cross-entropy increase of ``model`` after dropping the top-scored points."""
    clean = task.losses(model, list(clouds), labels).mean()
    return float(task.losses(model, list(drop_ranked(clouds, scores, fraction, rng)), labels).mean() - clean)


def run_seed(args: argparse.Namespace, seed: int) -> dict:
    torch.manual_seed(seed)
    base = student_config(args, 100 * seed)
    data = load_dataset(base)
    pool = []
    for i in range(args.students):
        model, snaps = train_student(student_config(args, 100 * seed + 1 + i), data)
        pool += [model, *snaps[:-1]]
    held_out, _ = train_student(student_config(args, 100 * seed + 99), data)
    task = ClassificationTask(base)
    task.attach(data)
    rng_eval = np.random.default_rng(seed)
    clouds = subsample_batch(data.test_points, base.num_points, rng_eval)
    labels = list(data.test_labels)
    support_rows = rng_eval.choice(len(clouds), size=8, replace=False)
    query_rows = np.setdiff1d(np.arange(len(clouds)), support_rows)
    query, query_labels = clouds[query_rows], [labels[i] for i in query_rows]
    out: dict[str, float] = {}
    frac = args.drop
    out["random"] = quality(task, held_out, query, query_labels,
                            list(np.random.default_rng(seed + 7).random(query.shape[:2])), frac, np.random.default_rng(1))
    grads = task.point_grads(held_out, list(query), query_labels)
    own = [np.linalg.norm(g, axis=1) for g in grads]
    out["own_gradient"] = quality(task, held_out, query, query_labels, own, frac, np.random.default_rng(1))
    removal = [point_cloud_saliency_map(c, g) for c, g in zip(query, grads, strict=True)]
    out["own_removal_map"] = quality(task, held_out, query, query_labels, removal, frac, np.random.default_rng(1))
    for rule in ("fomaml", "reptile"):
        cfg = TrainConfig(method="intact", seed=seed, num_points=base.num_points, meta_rule=rule,
                          adapt_steps=args.adapt_steps, saliency_target=args.target)
        config = intact_config(cfg)
        config = dataclasses.replace(config, meta=dataclasses.replace(config.meta, inner_lr=args.inner_lr))
        hooks = CurriculumHooks(task, config)
        hooks.snapshots = pool[1:]
        rng = np.random.default_rng(seed)
        started = time.perf_counter()
        logs = [hooks.meta.outer_step([hooks.sample_task(pool[0], rng) for _ in range(2)])
                for _ in range(args.outer_steps)]
        out[f"{rule}_meta_seconds"] = time.perf_counter() - started
        out[f"{rule}_query_loss_after_last20"] = float(np.mean([m["losses/teacher_query_after"] for m in logs[-20:]]))
        unadapted = hooks.teacher_scores(hooks.teacher, list(query))
        out[f"{rule}_unadapted"] = quality(task, held_out, query, query_labels, unadapted, frac,
                                           np.random.default_rng(1))
        adapted_gains = []
        for family in FAMILIES:
            points, target = hooks.saliency_targets(held_out, list(clouds[support_rows]),
                                                    [labels[i] for i in support_rows], family, 0.6, rng)
            adapted = hooks.meta.adapt(points, target)
            adapted_gains.append(quality(task, held_out, query, query_labels,
                                         hooks.teacher_scores(adapted, list(query)), frac, np.random.default_rng(1)))
            out[f"{rule}_adapted_{family}"] = adapted_gains[-1]
        out[f"{rule}_adapted"] = float(np.mean(adapted_gains))
    out["held_out_clean_loss"] = float(task.losses(held_out, list(query), query_labels).mean())
    return out


def main() -> None:
    args = parse_args()
    if args.quick:
        args.seeds, args.students, args.epochs, args.outer_steps = [0], 1, 2, 5
    torch.set_num_threads(1)
    started = time.perf_counter()
    runs = []
    for seed in args.seeds:
        runs.append(run_seed(args, seed))
        print(json.dumps({"seed": seed, **{k: round(v, 4) for k, v in runs[-1].items()}}), flush=True)
    keys = ["random", "own_gradient", "own_removal_map", "fomaml_unadapted", "fomaml_adapted", "reptile_unadapted", "reptile_adapted"]
    summary = {k: (float(np.mean([r[k] for r in runs])), float(np.std([r[k] for r in runs]))) for k in keys}
    for k, (mean, std) in summary.items():
        print(f"{k:>18}: loss increase {mean:.3f} +- {std:.3f}")
    print(json.dumps({
        "benchmark": "intact_teacher", "unit": "cross-entropy increase", "higher_is_better": True,
        "robokit": round(summary["fomaml_adapted"][0], 4),
        "peers": {k: round(v[0], 4) for k, v in summary.items() if k != "fomaml_adapted"},
        "ratio": round(summary["fomaml_adapted"][0] / max(summary["fomaml_unadapted"][0], 1e-9), 4),
        "notes": f"top {args.drop:.0%} dropped on a held-out PointNet; seeds {args.seeds}; {args.students} task "
                 f"students x {args.epochs} epochs; {args.outer_steps} outer steps x 2 tasks; "
                 f"{args.adapt_steps} adapt steps (Adam {args.inner_lr:g}); target {args.target}; {time.perf_counter() - started:.0f} s",
    }))


if __name__ == "__main__":
    main()
