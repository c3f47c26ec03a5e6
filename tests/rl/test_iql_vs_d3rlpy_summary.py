"""The IQL-vs-d3rlpy benchmark's seed bookkeeping (benchmarks/iql_vs_d3rlpy.py): intervals, pairing, merging."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "iql_vs_d3rlpy.py"
_SPEC = importlib.util.spec_from_file_location("iql_vs_d3rlpy", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def _runs(robokit, d3rlpy, seeds):
    return [{"learner": name, "seed": seed, "updates_per_s": 50.0, "return": value}
            for name, values in (("robokit", robokit), ("d3rlpy", d3rlpy))
            for seed, value in zip(seeds, values, strict=True)]


def test_paired_difference_by_hand():
    # differences 10, -20, 30: mean 6.67, std (ddof 1) 25.17, t(0.975, 2) = 4.303
    pair = bench.paired_difference([110.0, 80.0, 130.0], [100.0, 100.0, 100.0])
    assert pair["differences"] == [10.0, -20.0, 30.0]
    assert pair["mean"] == pytest.approx(20 / 3)
    assert pair["ci95"] == pytest.approx(4.302653 * np.std([10, -20, 30], ddof=1) / np.sqrt(3), rel=1e-5)
    assert (pair["robokit_wins"], pair["d3rlpy_wins"]) == (2, 1)
    # |+-10 +-20 +-30| over the 8 sign patterns: 20, 40, 60, 0, 0, 60, 40, 20; >= 20 in 6 of 8
    assert pair["sign_flip_p"] == pytest.approx(0.75)


def test_all_seeds_won_by_one_side_gives_the_smallest_sign_flip_p():
    pair = bench.paired_difference([5.0, 6, 7, 8, 9], [1.0, 1, 1, 1, 1])
    assert pair["sign_flip_p"] == pytest.approx(2 / 32)
    assert pair["low"] > 0


def test_summary_pairs_seeds_in_order_whatever_the_run_order():
    runs = _runs([1.0, 2.0], [3.0, 5.0], [1, 0])  # seed 1 listed first
    summary = bench.summarize(runs)
    assert summary["robokit"]["seeds"] == [0, 1] and summary["robokit"]["returns"] == [2.0, 1.0]
    assert summary["paired"]["differences"] == [-3.0, -2.0]
    assert "paired" not in bench.summarize(_runs([1.0], [2.0], [0])[:1])  # robokit alone: no pairing


def test_combine_merges_per_seed_files(tmp_path, capsys):
    args = {"quick": False, "threads": 1, "official": True, "robokit_policy": "gaussian", "dataset": None,
            "updates": None, "eval_episodes": None}
    data = {"transitions": 30000, "reward_scale": 3.5}
    for seed, (mine, peer) in enumerate([(200.0, 180.0), (250.0, 260.0), (300.0, 240.0)]):
        (tmp_path / f"s{seed}.json").write_text(json.dumps(
            {"runs": _runs([mine], [peer], [seed]), "summary": {}, "data": data, "args": args}))
    out = tmp_path / "all.json"
    assert bench.main(["--combine", *[str(tmp_path / f"s{s}.json") for s in range(3)], "--out", str(out)]) == 0
    merged = json.loads(out.read_text())
    assert merged["summary"]["robokit"]["returns"] == [200.0, 250.0, 300.0]
    assert merged["summary"]["paired"]["differences"] == [20.0, -10.0, 60.0]
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["benchmark"] == "iql_vs_d3rlpy" and "seeds [0, 1, 2]" in line["notes"]
    assert line["paired_return_difference"]["robokit_wins"] == 2


def test_combine_refuses_a_file_that_is_not_a_benchmark_output(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"summary": {}}')
    out = tmp_path / "all.json"
    assert bench.main(["--combine", str(bad), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "runs" in err
    assert not out.exists()


def test_summary_text_prints_both_learners_and_the_pairing():
    """The training path printed this summary and crashed on the 'paired' entry (no updates/s)."""
    text = bench.summary_text(bench.summarize(_runs([200.0, 250.0], [180.0, 260.0], [0, 1])))
    lines = text.splitlines()
    assert lines[0].startswith("robokit") and lines[1].startswith("d3rlpy")
    assert lines[2].startswith("paired robokit - d3rlpy: 5.0") and "wins 1:1" in lines[2]
