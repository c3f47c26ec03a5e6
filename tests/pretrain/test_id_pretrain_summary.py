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
              "seeds": 2, "pretrain_seed": 0}
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


def test_pretraining_seeds_are_kept_apart_and_paired_per_seed_and_pooled_by_hand() -> None:
    """--pretrain-seed N > 0 marks its cells (seed 0's keys stay the first run's); the baselines' cells are
    shared; per pretraining seed the paired differences to scratch, pooled by averaging each cell over
    the seeds' encoders first, and the interval over the per-seed means."""
    args = _args(corpus_sizes=[10])
    assert bench.cell_key("inverse_dynamics", 10, 2, 0) == "inverse_dynamics|corpus10|demos2|seed0"
    assert bench.cell_key("inverse_dynamics", 10, 2, 0, 2) == "inverse_dynamics|corpus10|demos2|seed0|pseed2"
    assert bench.cell_key("scratch", None, 2, 0, 2) == bench.cell_key("scratch", None, 2, 0)
    assert bench.probe_key("untrained", 10, 2) == bench.probe_key("untrained", 10)
    cells = [(d, s) for d in args.demos for s in range(args.seeds)]
    success = {("scratch", 0): [0.1, 0.3, 0.2, 0.4], ("inverse_dynamics", 0): [0.5, 0.6, 0.9, 1.0],
               ("inverse_dynamics", 1): [0.2, 0.3, 0.2, 0.6], ("inverse_dynamics", 2): [0.1, 0.5, 0.5, 0.4]}
    results = {bench.cell_key(method, None if method == "scratch" else 10, d, s, pseed): {"success_rate": value}
               for (method, pseed), values in success.items() for (d, s), value in zip(cells, values, strict=True)}
    assert bench.pretrain_seeds(results, "inverse_dynamics", 10) == [0, 1, 2]
    entry = bench.pretrain_seed_differences(args, results)[("inverse_dynamics", 10)]
    per_seed = {0: [0.4, 0.3, 0.7, 0.6], 1: [0.1, 0.0, 0.0, 0.2], 2: [0.0, 0.2, 0.3, 0.0]}
    for pseed, diffs in per_seed.items():
        assert entry["per_seed"][pseed][0] == pytest.approx(np.mean(diffs)) and entry["per_seed"][pseed][3] == 4
    pooled = np.mean(list(per_seed.values()), axis=0)  # per cell: 0.1667, 0.1667, 0.3333, 0.2667
    half = 3.182446 * np.std(pooled, ddof=1) / 2
    mean, low, high, n = entry["pooled"]
    assert (mean, n) == (pytest.approx(pooled.mean()), 4)
    assert (low, high) == (pytest.approx(pooled.mean() - half, rel=1e-5), pytest.approx(pooled.mean() + half, rel=1e-5))
    means = [np.mean(v) for v in per_seed.values()]
    assert entry["across_seeds"][0] == pytest.approx(np.mean(means)) and entry["across_seeds"][3] == 3
    args.pretrain_seed = 1  # the usual table, for one pretraining seed's encoders
    assert bench.paired_differences(args, results)[("inverse_dynamics", 10)][0] == pytest.approx(0.075)
    del results[bench.cell_key("inverse_dynamics", 10, 2, 0, 1)], results[bench.cell_key("inverse_dynamics", 10, 2, 0, 2)]
    assert bench.pretrain_seed_differences(args, results)[("inverse_dynamics", 10)]["pooled"][3] == 3  # shared cells only


def test_the_recipe_takes_the_number_of_contexts_from_the_env(monkeypatch) -> None:
    """PushHidden-v0 has 8 target zones: the recipe's default K must be 8 (context 7 held out), not the point
    mass's 12 (whose held-out context 11 does not exist there); a K beyond the env's is refused."""
    def parse(*argv: str) -> argparse.Namespace:
        monkeypatch.setattr("sys.argv", ["id_pretrain.py", *argv])
        return bench.parse()

    assert parse().contexts == 12
    assert parse("--env", "robokit/PushHidden-v0").contexts == 8
    assert parse("--env", "robokit/PushHidden-v0", "--contexts", "5").contexts == 5
    for bad in (["--env", "robokit/PushHidden-v0", "--contexts", "12"], ["--env", "robokit/NoSuch-v0"]):
        with pytest.raises(SystemExit) as exit_info:
            parse(*bad)
        assert exit_info.value.code == 2


@pytest.mark.parametrize("env_id", ["robokit/PointMassGoal-v0", "robokit/PushHidden-v0"])
def test_the_state_probe_targets_are_the_drawn_bodies_positions(env_id: str) -> None:
    """The probe regresses the xy of every body in the frame, read from the env's privileged state: the point
    mass's xy; for PushHidden the pusher's and the puck's (the first two state dims alone would leave the
    puck out). Checked against the simulator's joint positions (slide joints: qpos is the bodies' xy)."""
    from robokit.envs.hidden_context import FAMILIES

    env = FAMILIES[env_id](context=1)
    states, qpos = [], []
    _, info = env.reset(seed=3)
    for _ in range(4):
        states.append(info["state"])
        qpos.append(env.data.qpos.copy())
        _, _, _, _, info = env.step(np.array([0.5, -0.3], np.float32))
    env.close()
    targets = bench.probe_targets(env_id, np.stack(states))
    np.testing.assert_allclose(targets, np.stack(qpos), atol=1e-6)


def test_id_minus_another_objective_pairs_the_same_corpus_pretraining_seed_and_cell_by_hand() -> None:
    """baseline="bc": ID minus BC per pretraining seed on the same (demos, seed) cells; pooled, the cell's
    mean over ID's encoders minus its mean over BC's; BC itself is not compared with itself."""
    args = _args(objectives=["inverse_dynamics", "bc"], corpus_sizes=[10])
    cells = [(d, s) for d in args.demos for s in range(args.seeds)]
    success = {("inverse_dynamics", 0): [0.5, 0.6, 0.9, 1.0], ("inverse_dynamics", 1): [0.2, 0.3, 0.2, 0.6],
               ("bc", 0): [0.4, 0.6, 0.7, 1.0], ("bc", 1): [0.3, 0.1, 0.2, 0.2],
               ("scratch", 0): [0.0, 0.0, 0.0, 0.0]}
    results = {bench.cell_key(method, None if method == "scratch" else 10, d, s, pseed): {"success_rate": value}
               for (method, pseed), values in success.items() for (d, s), value in zip(cells, values, strict=True)}
    results[bench.cell_key("bc", 1, 2, 0, 1)] = {"success_rate": 0.9}  # another corpus: never paired with corpus 10
    table = bench.pretrain_seed_differences(args, results, baseline="bc")
    assert list(table) == [("inverse_dynamics", 10)]
    entry = table[("inverse_dynamics", 10)]
    per_seed = {0: [0.1, 0.0, 0.2, 0.0], 1: [-0.1, 0.2, 0.0, 0.4]}
    for pseed, diffs in per_seed.items():
        assert entry["per_seed"][pseed][0] == pytest.approx(np.mean(diffs)) and entry["per_seed"][pseed][3] == 4
    pooled = np.mean(list(per_seed.values()), axis=0)  # 0.0, 0.1, 0.1, 0.2
    half = 3.182446 * np.std(pooled, ddof=1) / 2
    mean, low, high, n = entry["pooled"]
    assert (mean, n) == (pytest.approx(0.1), 4)
    assert (low, high) == (pytest.approx(0.1 - half, rel=1e-5), pytest.approx(0.1 + half, rel=1e-5))
    # the pooled mean is ID's mean minus BC's over the encoders, the same as the two differences to scratch
    to_scratch = bench.pretrain_seed_differences(args, results)
    assert mean == pytest.approx(to_scratch[("inverse_dynamics", 10)]["pooled"][0]
                                 - to_scratch[("bc", 10)]["pooled"][0])
