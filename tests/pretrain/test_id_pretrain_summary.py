"""The ID-pretraining recipe's bookkeeping (benchmarks/id_pretrain.py): pairing with scratch, run order."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[2] / "benchmarks" / "id_pretrain.py"
_SPEC = importlib.util.spec_from_file_location("id_pretrain", _PATH)
bench = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(bench)


def _args(**overrides) -> argparse.Namespace:
    values = {"objectives": ["inverse_dynamics", "scratch", "state"], "corpus_sizes": [1, 10], "demos": [2, 5],
              "seeds": 2}
    return argparse.Namespace(**{**values, **overrides})


def test_paired_differences_pair_each_cell_with_scratch_by_hand() -> None:
    args = _args()
    success = {("inverse_dynamics", 10): [0.5, 0.6, 0.9, 1.0], ("scratch", None): [0.1, 0.3, 0.2, 0.4],
               ("state", None): [0.4, 1.0, 1.0, 1.0]}
    results = {}
    for (method, corpus), values in success.items():
        cells = [(d, s) for d in args.demos for s in range(args.seeds)]
        for (demos, seed), value in zip(cells, values, strict=True):
            results[bench.cell_key(method, corpus, demos, seed)] = {"success_rate": value}
    table = bench.paired_differences(args, results)
    # ID - scratch per cell: 0.4, 0.3, 0.7, 0.6 -> mean 0.5, t(0.975, 3) = 3.182
    mean, low, high, n = table[("inverse_dynamics", 10)]
    half = 3.182446 * np.std([0.4, 0.3, 0.7, 0.6], ddof=1) / 2
    assert (mean, n) == (pytest.approx(0.5), 4)
    assert (low, high) == (pytest.approx(0.5 - half, rel=1e-5), pytest.approx(0.5 + half, rel=1e-5))
    assert ("inverse_dynamics", 1) not in table  # no cells on that corpus: no row
    assert table[("state", None)][0] == pytest.approx(np.mean([0.3, 0.7, 0.8, 0.6]))
    assert ("scratch", None) not in table


def test_jobs_run_the_largest_corpus_first_with_the_baselines_after_its_first_objective() -> None:
    args = _args(objectives=["inverse_dynamics", "scratch", "state", "bc"])
    assert bench.jobs(args) == [("inverse_dynamics", 10), ("scratch", None), ("state", None), ("bc", 10),
                                ("inverse_dynamics", 1), ("bc", 1)]
