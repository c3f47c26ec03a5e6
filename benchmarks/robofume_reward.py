"""RoboFuME's reward-model table (the paper's Table II, reduced): VLM classifier vs small CNN.

For each seed, the labelled frames are split (stratified by label, ``--holdout`` held out), a
"vlm" (tiny CLIP built from a config, random initial weights: no pretrained weights can be
downloaded here) and a "cnn" are fitted on the rest with the same budget, and each model's
confusion table (FP rate, FN rate, accuracy, precision) on the held-out frames is recorded.

Frames come from ``--data``: a ``robokit robofume make-data`` directory (failures.npz + demo
datasets; positives are the last ``--final-frames`` frames of each demo) or an .npz of labelled
frames; ``--test-data`` (same forms, e.g. a make-data directory of another seed) is then the
held-out set and all of ``--data`` trains. Without ``--data`` the recipe renders its own frames from ``robokit/ArmReach-v0`` (64x64,
top camera) with two instructions on the same frames: "touch the green goal" (success: fingertip
within 5 cm of the goal, the env's own success) and "keep away from the green goal" (success:
farther than 12 cm). Positives of the first are the last frames of scripted reaches; its
negatives are frames of random-action episodes (failures).

Outputs: ``--out``/results.json; the last stdout line is the benchmark JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("PYOPENGL_PLATFORM", "egl")

TOUCH = "touch the green goal"
AWAY = "keep away from the green goal"
METRICS = ("fp_rate", "fn_rate", "accuracy", "precision")


def arm_reach_frames(episodes: int, seed: int, final_frames: int = 1) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Labelled 64x64 frames of ``robokit/ArmReach-v0``: scripted reaches (last frames) and
    random-action failures (2 frames each), each frame under both instructions (module docstring)."""
    from robokit.envs import make_env

    env = make_env("robokit/ArmReach-v0", render_mode="rgb_array", width=64, height=64)
    rng = np.random.default_rng(seed)
    images, distances = [], []
    for episode in range(episodes):
        env.reset(seed=seed * 100_000 + episode)
        scripted = episode % 2 == 0
        frames: list[tuple[np.ndarray, float]] = []
        for _ in range(50):
            action = env.unwrapped.scripted_action() if scripted else rng.uniform(-1, 1, 2)
            _, _, terminated, truncated, info = env.step(np.clip(action, -1, 1))
            frames.append((env.render().copy(), float(info["distance"])))
            if terminated or truncated:
                break
        picks = frames[-final_frames:] if scripted else [frames[i] for i in rng.choice(len(frames), 2, replace=False)]
        for image, distance in picks:
            images.append(image)
            distances.append(distance)
    env.close()
    touch = np.asarray(distances) < 0.05
    away = np.asarray(distances) > 0.12
    stacked = np.stack(images)
    return (np.concatenate([stacked, stacked]), [TOUCH] * len(stacked) + [AWAY] * len(stacked),
            np.concatenate([touch, away]).astype(np.int64))


def with_paired_negatives(frames, directory: Path):
    """``frames`` plus each positive again as a negative of its pair's other instruction (the
    ``make-data`` manifest's forward/backward): in a reset-free pair the backward task undoes the
    forward one, so a frame showing one's success shows the other's failure. A diagnostic of the
    data recipe (not the paper's: it uses about 30 failure observations)."""
    from robokit.robofume.data import load_robofume_data

    manifest = load_robofume_data(directory).manifest
    other = {manifest["forward"]: manifest["backward"], manifest["backward"]: manifest["forward"]}
    images, texts, labels = frames
    swap = np.flatnonzero((labels == 1) & np.isin(texts, list(other)))
    return (np.concatenate([images, images[swap]]), list(texts) + [other[texts[i]] for i in swap],
            np.concatenate([labels, np.zeros(len(swap), labels.dtype)]))


def run_seed(frames, kind: str, seed: int, args: argparse.Namespace, test=None) -> dict:
    """Fit ``kind`` on the seed's training split (all of ``frames`` when a separate ``test`` set is
    given); its held-out confusion table and timings."""
    from robokit.robofume.reward import (
        build_success_model,
        by_label,
        confusion_table,
        fit_success_model,
    )
    from robokit.robofume.reward_cli import split_frames

    train, held = (frames, test) if test is not None else split_frames(frames, args.holdout, seed)
    options: dict = {"image_size": tuple(frames[0].shape[1:3]), "instructions": sorted(set(frames[1])), "seed": seed}
    if kind == "vlm":
        options.update(tiny={"patch_size": args.vlm_patch}, center_frames=not args.vlm_no_center)
    model = build_success_model(kind, **options)
    if kind == "vlm" and args.vlm_freeze_text:  # diagnostic: the yes/no prompt embeddings stay apart
        for parameter in [*model.clip.text_model.parameters(), *model.clip.text_projection.parameters()]:
            parameter.requires_grad_(False)
    start = time.perf_counter()
    fit = fit_success_model(model, *by_label(*train), epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                            seed=seed, augment_pad=args.augment_pad)
    seconds = time.perf_counter() - start
    table = confusion_table(model, *held)
    return {"seed": seed, "kind": kind, "fit_seconds": round(seconds, 1), "loss_first": fit["loss_first"],
            "loss_last": fit["loss_last"], "train_accuracy": fit["train_accuracy"], "n_train": len(train[2]),
            "heldout": table}


def summarise(runs: list[dict]) -> dict:
    """Mean and sample std over seeds of each Table II figure (NaN rates skipped)."""
    out = {}
    for metric in METRICS:
        values = np.array([run["heldout"][metric] for run in runs], float)
        values = values[~np.isnan(values)]
        out[metric] = {"mean": float(values.mean()) if len(values) else float("nan"),
                       "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0}
    return out


def main(argv: list[str] | None = None) -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=None, help="make-data directory or labelled .npz")
    parser.add_argument("--test-data", type=Path, default=None,
                        help="a separate held-out set (same forms as --data); then all of --data trains")
    parser.add_argument("--final-frames", type=int, default=1)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--holdout", type=float, default=0.3)
    parser.add_argument("--episodes", type=int, default=80, help="ArmReach episodes without --data")
    parser.add_argument("--kinds", nargs="+", default=["vlm", "cnn"])
    parser.add_argument("--augment-pad", type=int, default=None,
                        help="DrQ random-shift pixels (0: off; default: 4 per 64 pixels, none under 64)")
    parser.add_argument("--vlm-patch", type=int, default=8, help="patch size of the tiny CLIP's vision tower")
    parser.add_argument("--vlm-freeze-text", action="store_true", help="diagnostic: train the vision side only")
    parser.add_argument("--vlm-no-center", action="store_true",
                        help="diagnostic: the tiny CLIP on uncentred frames (before the fix: constant)")
    parser.add_argument("--paired-negatives", action="store_true",
                        help="diagnostic (make-data --data): each positive is also a negative of the pair's other instruction")
    parser.add_argument("--quick", action="store_true", help="2 seeds, 10 epochs, 24 ArmReach episodes")
    parser.add_argument("--out", type=Path, default=Path("runs/robofume_reward"))
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.epochs, args.episodes = 2, 10, 24
    torch.set_num_threads(int(os.environ.get("ROBOKIT_TORCH_THREADS", "1")))
    if args.data is None:
        frames, source = arm_reach_frames(args.episodes, seed=0, final_frames=args.final_frames), "ArmReach-v0 frames"
    else:
        from robokit.robofume.reward_cli import load_frames

        frames, source = load_frames(args.data, args.final_frames), str(args.data)
        if args.paired_negatives:
            frames, source = with_paired_negatives(frames, args.data), source + " + paired negatives"
    test = None
    if args.test_data is not None:
        from robokit.robofume.reward_cli import load_frames

        test = load_frames(args.test_data, args.final_frames)
        source += f" (held out: {args.test_data}, {len(test[2])} frames, {int(test[2].sum())} positive)"
    print(f"{source}: {len(frames[2])} frames, {int(frames[2].sum())} positive, "
          f"instructions {sorted(set(frames[1]))}", flush=True)
    results: dict = {"source": source, "n_frames": len(frames[2]), "n_positive": int(frames[2].sum()),
                     "args": {k: str(v) for k, v in vars(args).items()}, "runs": [], "summary": {}}
    for kind in args.kinds:
        runs = [run_seed(frames, kind, seed, args, test) for seed in range(args.seeds)]
        for run in runs:
            print(json.dumps(run), flush=True)
        results["runs"] += runs
        results["summary"][kind] = summarise(runs)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=1))
    print(json.dumps({"benchmark": "robofume_reward", "unit": "held-out Table II figures (mean over seeds)",
                      "higher_is_better": None, "robokit": results["summary"], "peers": {}, "ratio": None,
                      "bound": None, "notes": f"{source}; {args.seeds} seeds x {args.epochs} epochs; "
                                              "tiny CLIP from a config (random init), no pretrained weights"}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
