"""benchmarks/robofume.py's pair names and per-seed rows (no training: a hand-made results dict)."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "robofume.py"
_SPEC = importlib.util.spec_from_file_location("robofume_benchmark", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def _args(**kwargs) -> argparse.Namespace:
    base = {"pairs": None, "seeds": None, "pretrain_steps": None, "online_steps": None, "variants": None,
            "eval_episodes": None, "privileged_proprio": False}
    return argparse.Namespace(**{**base, **kwargs})


def test_push_names_the_track_pair_and_a_full_id_still_picks_v0():
    b = bench.with_overrides(bench.budget(False), _args(pairs=["Push", "Drawer"], online_steps=600))
    assert b["pairs"] == ("robokit/PushBackForth-v1", "robokit/DrawerOpenClose-v0") and b["eval_every"] == 200
    old = bench.with_overrides(bench.budget(False), _args(pairs=["robokit/PushBackForth-v0"]))
    assert old["pairs"] == ("robokit/PushBackForth-v0",)


def _finetune(curve, successes):
    return {"curve": curve, "hard_resets": 1, "sub_episodes": 14, "forward_attempts": 7,
            "forward_true_successes": successes, "reward_fp_rate": 0.0, "reward_fn_rate": 0.0,
            "final_forward_success": curve[-1][1], "initial_forward_success": curve[0][1]}


def test_per_seed_keeps_every_seeds_curve_where_the_table_averages():
    seed = {0: 0.2, 1: 0.6}
    results = {"robokit/PushBackForth-v1": {
        s: {"reward": {}, "pretrained": {"robofume": {"eval/forward_success": p}, "bc": {"eval/forward_success": 0.0}},
            "finetune": {"robofume_oracle": _finetune([(0, p), (600, p / 2)], s)}} for s, p in seed.items()}}
    rows = bench.per_seed(results)
    assert [(r["seed"], r["pretrained_forward_success"]) for r in rows] == [(0, 0.2), (1, 0.6)]
    assert rows[1]["finetune"]["robofume_oracle"]["curve"] == [(0, 0.6), (600, 0.3)]
    assert rows[1]["finetune"]["robofume_oracle"]["forward_true_successes"] == 1
    table = bench.aggregate(results)["robokit/PushBackForth-v1"]
    assert table["robofume_oracle"]["final"] == [0.2, 0.1]  # mean, std of 0.1 and 0.3


def test_the_loops_confusion_is_pooled_over_seeds():
    """The online confusion table sums each seed's per-step counts (rates of the sums, not means)."""
    runs = [{"reward_confusion": {"tp": 2, "fp": 1, "tn": 9, "fn": 8}},
            {"reward_confusion": {"tp": 0, "fp": 3, "tn": 7, "fn": 0}}]
    pooled = bench.pooled_confusion(runs)
    assert (pooled["tp"], pooled["fp"], pooled["tn"], pooled["fn"]) == (2, 4, 16, 8)
    assert pooled["fp_rate"] == 0.2 and pooled["fn_rate"] == 0.8 and pooled["precision"] == 0.333
    assert bench.pooled_confusion([{"reward_fp_rate": 0.0}]) is None  # results cached before the counts
