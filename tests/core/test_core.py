"""Registry, seeding, configs, loggers, optional imports and import-time lightness."""

from __future__ import annotations

import csv
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from robokit.core.config import load_config, parse, save_config
from robokit.core.logging import CSVLogger, make_logger
from robokit.core.registry import Registry, build
from robokit.core.seeding import make_seeds, restore_rng_state, rng_state, seed_everything
from robokit.optional import MissingOptionalDependency, require


def test_registry_rejects_duplicates_and_resolves_lazy_entries() -> None:
    registry: Registry = Registry("widget")

    @registry.register("linear")
    def linear(x: float) -> float:
        return 2 * x

    registry.register("sqrt", "math:sqrt")
    assert build(registry, "linear", 3) == 6
    assert registry.get("sqrt")(9.0) == 3.0
    assert registry.names() == ["linear", "sqrt"]
    with pytest.raises(KeyError, match="already registered"):
        registry.register("linear", linear)
    with pytest.raises(KeyError, match="unknown widget 'nope'; known: linear, sqrt"):
        registry.get("nope")


def test_same_seed_same_streams_and_state_restores() -> None:
    a, b = seed_everything(7), make_seeds(7)
    assert a.np_rng.random() == b.np_rng.random()
    assert torch.equal(torch.rand(4, generator=a.torch_gen), torch.rand(4, generator=b.torch_gen))
    assert a.child(1).np_rng.random() != a.child(2).np_rng.random()
    saved = rng_state(a)
    first = (a.np_rng.random(3), torch.rand(3, generator=a.torch_gen))
    restore_rng_state(a, saved)
    np.testing.assert_array_equal(a.np_rng.random(3), first[0])
    assert torch.equal(torch.rand(3, generator=a.torch_gen), first[1])


@dataclasses.dataclass(frozen=True)
class Inner:
    width: int = 64


@dataclasses.dataclass(frozen=True)
class Outer:
    """A test config."""

    lr: float = 3e-4
    name: str = "x"
    run_dir: Path = Path("runs")
    hidden: tuple[int, ...] = (256, 256)
    inner: Inner = Inner()


def test_config_cli_parse_save_and_load(tmp_path: Path) -> None:
    config = parse(Outer, ["--lr", "0.01", "--hidden", "32", "32", "32", "--inner.width", "8"])
    assert config == Outer(lr=0.01, hidden=(32, 32, 32), inner=Inner(8))
    path = save_config(config, tmp_path)
    assert load_config(Outer, path) == config
    path.write_text(path.read_text() + "typo_key: 1\n")
    with pytest.raises(ValueError, match="unknown config keys.*typo_key"):
        load_config(Outer, path)


def test_csv_logger_grows_columns_and_resumes(tmp_path: Path) -> None:
    logger = CSVLogger(tmp_path)
    logger.log({"train/return": 1.0}, step=1)
    logger.log({"train/return": 2.0, "eval/return": 5.0}, step=2)
    resumed = CSVLogger(tmp_path)
    resumed.log({"train/return": 3.0}, step=3)
    with open(tmp_path / "metrics.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["step"] for row in rows] == ["1", "2", "3"]
    assert rows[1]["eval/return"] == "5.0" and rows[0]["eval/return"] == ""


def test_make_logger_writes_config_and_wandb_offline(tmp_path: Path) -> None:
    pytest.importorskip("wandb")
    with make_logger(("csv", "wandb"), tmp_path, Outer()) as logger:
        logger.log({"losses/critic": torch.tensor(0.5)}, step=10)
    assert (tmp_path / "config.yaml").is_file()
    assert list((tmp_path / "wandb").glob("offline-run-*")), "no offline wandb run written"
    with pytest.raises(ValueError, match="unknown logger"):
        make_logger(("tensorboardx",), tmp_path)


def test_missing_optional_stack_names_the_extra() -> None:
    with pytest.raises(MissingOptionalDependency, match=r"\.\[lidar\]"):
        require("spconv_that_does_not_exist.pytorch", "lidar")


HEAVY = ["mujoco", "spconv", "open3d", "rospy", "roslibpy", "rosbags", "wandb", "ray", "robosuite",
         "torchrl", "stable_baselines3", "minari"]


@pytest.mark.parametrize("module", ["robokit", "robokit.cli", "robokit.data", "robokit.algos",
                                    "robokit.pointcloud", "robokit.intact", "robokit.detection",
                                    "robokit.tracking", "robokit.lidar", "robokit.ros"])
def test_import_pulls_in_no_heavy_optional_stack(module: str) -> None:
    code = f"import sys, json, {module}; print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))"
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                       text=True).stdout)
    assert loaded == [], f"import {module} loaded heavy optional modules: {loaded}"
