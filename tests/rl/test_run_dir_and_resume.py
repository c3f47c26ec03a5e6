"""A run folder is never reused by accident; --resume says what it does and survives damage."""

from __future__ import annotations

import csv
import dataclasses
from pathlib import Path

import pytest

from robokit.core.rundir import RunDirError
from robokit.trainers.trainer import config_class_for, train, truncate_metrics

ENV_ID = "robokit/ArmReach-v0"


def bc_config(dataset: Path, out: Path, offline_steps: int, **extra):
    from robokit.algos import ALGOS

    agent_cls, _ = ALGOS.get("bc")
    return config_class_for("bc")(env=ENV_ID, dataset=dataset, offline_steps=offline_steps, online_steps=0,
                                  out=out, logger=("csv",), eval_every=0, eval_episodes=1, log_every=10,
                                  checkpoint_every=20, keep_checkpoints=2, progress=False,
                                  agent=agent_cls(hidden_dims=(16, 16), batch_size=16), **extra)


def steps_of(path: Path, key: str | None = None) -> list[float]:
    """Steps of the rows of ``metrics.csv`` (only those with a value for ``key`` when given)."""
    with open(path, newline="") as handle:
        return [float(row["step"]) for row in csv.DictReader(handle) if key is None or row.get(key)]


def test_occupied_out_is_refused_then_overwritten_on_request(arm_dataset, tmp_path):
    out = tmp_path / "run"
    train("bc", bc_config(arm_dataset, out, 40))
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(RunDirError, match="--resume to continue it or --overwrite"):
        train("bc", bc_config(arm_dataset, out, 20))
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before, "the refused run touched the old one"
    train("bc", bc_config(arm_dataset, out, 20, overwrite=True))
    assert max(steps_of(out / "metrics.csv")) == 20, "rows of the old run survived --overwrite"
    assert sorted(p.name for p in (out / "checkpoints").glob("step_*.pt")) == ["step_000000020.pt"]


def test_resume_without_checkpoint_says_so_and_drops_stale_rows(arm_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.csv").write_text("step,losses/x\n10,1.0\n20,2.0\n")
    train("bc", bc_config(arm_dataset, out, 20, resume=True))
    assert "no intact checkpoint" in capsys.readouterr().out
    assert steps_of(out / "metrics.csv").count(10.0) == 1, "metric rows duplicated"


def test_resume_falls_back_past_a_damaged_newest_checkpoint(arm_dataset, tmp_path, capsys):
    out = tmp_path / "run"
    train("bc", bc_config(arm_dataset, out, 60))
    ckpts = out / "checkpoints"
    assert sorted(p.name for p in ckpts.glob("step_*.pt")) == ["step_000000040.pt", "step_000000060.pt"]
    newest = ckpts / "step_000000060.pt"
    newest.write_bytes(newest.read_bytes()[: newest.stat().st_size // 2])  # cut short by a full disk
    summary = train("bc", bc_config(arm_dataset, out, 80, resume=True))
    captured = capsys.readouterr()
    assert summary["resumed_from"].endswith("step_000000040.pt")
    assert "skipping damaged checkpoint" in captured.err and "step_000000060.pt" in captured.err
    assert (ckpts / "step_000000060.pt.corrupt").exists()
    steps = steps_of(out / "metrics.csv", "losses/actor")
    assert steps == [10, 20, 30, 40, 50, 60, 70, 80], "rows after the resumed step were kept"


def test_half_written_last_metrics_row_is_dropped_and_a_damaged_middle_row_is_named(tmp_path, capsys):
    path = tmp_path / "metrics.csv"
    path.write_text("step,a,b\n10,1,2\n20,3,4\n30,5")  # the kill cut the last row short
    truncate_metrics(path, 25)
    assert steps_of(path) == [10.0, 20.0] and "half-written" in capsys.readouterr().out
    path.write_text("step,a,b\n10,1,2\nxx,3\n30,5,6\n")
    with pytest.raises(ValueError, match=r"metrics.csv: line 3"):
        truncate_metrics(path, 25)


def test_counts_are_validated_at_the_config_boundary():
    from robokit.algos import ALGOS
    from robokit.core.config import ConfigError

    cls = config_class_for("sac")
    for field, value in (("online_steps", -1), ("eval_episodes", 0), ("offline_fraction", 1.5)):
        with pytest.raises(ConfigError, match=f"--{field.replace('_', '-')}"):
            cls(**{field: value})
    sac_cls, _ = ALGOS.get("sac")
    for value in (0, -5):
        with pytest.raises(ConfigError, match="--agent.batch-size"):
            sac_cls(batch_size=value)
    assert dataclasses.replace(cls(), online_steps=0).online_steps == 0


def test_sampling_zero_or_negative_rows_is_refused():
    import numpy as np

    from robokit.data.replay import ReplayBuffer

    buffer = ReplayBuffer(8, (3,), 2)
    buffer.add(np.zeros(3), np.zeros(2), 0.0, np.zeros(3), False, False)
    for rows in (0, -5):
        with pytest.raises(ValueError, match="batch size must be a positive integer"):
            buffer.sample(rows)
