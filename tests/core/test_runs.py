"""The shared training-loop convention (robokit.core.runs): namespaces, layout, resume point."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import pytest

from robokit.core.logging import NAMESPACES, make_logger
from robokit.core.rundir import RunDirError
from robokit.core.runs import checkpoint_path, resume_point, save_step_checkpoint, start_run


@dataclass(frozen=True)
class Config:
    out: Path
    seed: int = 0
    resume: bool = False
    overwrite: bool = False
    logger: tuple[str, ...] = ("csv",)


def test_logger_refuses_a_metric_outside_the_namespaces(tmp_path):
    logger = make_logger(("csv",), tmp_path)
    logger.log({f"{ns}x": 1.0 for ns in NAMESPACES}, step=1)
    with pytest.raises(ValueError, match="metric 'loss' is outside the metric namespaces"):
        logger.log({"loss": 1.0}, step=2)


def test_checkpoint_layout_and_final(tmp_path):
    path = save_step_checkpoint(tmp_path, 7, {"step": 7}, final=True)
    assert path == checkpoint_path(tmp_path, 7) == tmp_path / "checkpoints" / "step_000000007.pt"
    assert (tmp_path / "final.pt").is_file()


def test_start_run_refuses_a_used_folder_and_resumes_from_the_newest_checkpoint(tmp_path, capsys):
    run = start_run(Config(tmp_path / "r"), "prog")
    for step in (1, 2, 3):
        run.logger.log({"train/x": float(step)}, step)
    save_step_checkpoint(run.out, 2, {"step": 2})
    run.logger.close()
    assert (run.out / "config.yaml").is_file()
    with pytest.raises(RunDirError):
        start_run(Config(tmp_path / "r"), "prog")
    resumed = start_run(Config(tmp_path / "r", resume=True), "prog")
    assert resumed.resumed is not None and resumed.resumed[1] == {"step": 2}
    assert "prog: resumed from" in capsys.readouterr().out
    with open(tmp_path / "r" / "metrics.csv", newline="") as handle:  # the row of step 3 is gone
        assert [row["step"] for row in csv.DictReader(handle)] == ["1", "2"]


def test_resume_point_without_a_checkpoint_drops_every_row(tmp_path, capsys):
    (tmp_path / "metrics.csv").write_text("step,train/x\n1,1.0\n")
    assert resume_point(tmp_path, "prog") is None
    assert "no intact checkpoint" in capsys.readouterr().out
    assert (tmp_path / "metrics.csv").read_text().strip() == "step,train/x"
