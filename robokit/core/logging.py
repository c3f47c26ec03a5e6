"""Logging adapters: console (with a progress bar), CSV, and wandb (offline by default).

All loggers share one interface::

    logger.log({"train/return": 12.3, "losses/critic": 0.4}, step=1000)
    logger.close()

:func:`make_logger` builds a :class:`MultiLogger` from names such as
``("console", "csv", "wandb")`` and writes the run's config beside its outputs. Its metric
names must start with one of :data:`NAMESPACES` (``train/``, ``eval/``, ``losses/``,
``curriculum/``); see :mod:`robokit.core.runs` for the whole training-loop convention.
"""

from __future__ import annotations

import csv
import io
import math
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from robokit.core.atomic import atomic_open, atomic_write_text
from robokit.core.config import save_config, to_dict

METRICS_FILE = "metrics.csv"
#: every logged metric name starts with one of these
NAMESPACES = ("train/", "eval/", "losses/", "curriculum/")


class Logger:
    """Base class: receives scalar metrics at integer steps."""

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> Logger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ConsoleLogger(Logger):
    """Prints a compact line of metrics every ``every`` steps (or every call if 0)."""

    def __init__(self, every: int = 0, stream: Any = None, keys: Iterable[str] | None = None) -> None:
        self.every = every
        self.stream = stream or sys.stdout
        self.keys = tuple(keys) if keys else None
        self._last = -math.inf

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        if self.every and step - self._last < self.every:
            return
        self._last = step
        shown = {k: v for k, v in metrics.items() if self.keys is None or k in self.keys}
        body = "  ".join(f"{k}={_fmt(v)}" for k, v in sorted(shown.items()))
        print(f"[step {step:>8}] {body}", file=self.stream, flush=True)


class CSVLogger(Logger):
    """Appends rows to ``metrics.csv``: one row per ``log`` call, columns grow as keys appear.

    When a new key arrives the file is rewritten (atomically) with the wider header, so
    the CSV always parses with a plain reader. Rows are flushed at once, so a killed run
    keeps every metric logged before the kill; resuming appends.
    """

    def __init__(self, run_dir: str | os.PathLike, name: str = METRICS_FILE) -> None:
        self.path = Path(run_dir) / name
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._rows: list[dict[str, Any]] = []
        self._columns: list[str] = ["step"]
        if self.path.exists():
            with open(self.path, newline="") as handle:
                reader = csv.DictReader(handle)
                self._columns = list(reader.fieldnames or ["step"])
                self._rows = list(reader)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        row = {"step": step, **{k: _scalar(v) for k, v in metrics.items()}}
        new_columns = [k for k in row if k not in self._columns]
        self._rows.append(row)
        if new_columns:
            self._columns.extend(new_columns)
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as handle:
                csv.DictWriter(handle, self._columns).writerow(row)

    def _rewrite(self) -> None:
        """Write every row under the wider header to a temporary file, then rename it onto
        ``metrics.csv``: a kill during the rewrite leaves the previous file whole."""
        with atomic_open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, self._columns)
            writer.writeheader()
            writer.writerows(self._rows)


class WandbLogger(Logger):
    """wandb run in offline mode unless ``WANDB_MODE`` says otherwise (no account needed)."""

    def __init__(self, run_dir: str | os.PathLike, config: Mapping[str, Any] | None = None,
                 project: str = "robokit", name: str | None = None) -> None:
        from robokit.optional import require

        os.environ.setdefault("WANDB_MODE", "offline")
        os.environ.setdefault("WANDB_SILENT", "true")
        wandb = require("wandb", "logging")
        self._run = wandb.init(project=project, name=name, dir=str(run_dir),
                               config=dict(config or {}), reinit=True)

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        self._run.log({k: _scalar(v) for k, v in metrics.items()}, step=step)

    def close(self) -> None:
        self._run.finish()


class MultiLogger(Logger):
    """Fans metrics out to several loggers; with ``namespaces``, refuses a name outside them."""

    def __init__(self, loggers: Iterable[Logger], namespaces: tuple[str, ...] | None = None) -> None:
        self.loggers = list(loggers)
        self.namespaces = namespaces

    def log(self, metrics: Mapping[str, float], step: int) -> None:
        if self.namespaces is not None:
            check_namespaces(metrics, self.namespaces)
        for logger in self.loggers:
            logger.log(metrics, step)

    def close(self) -> None:
        for logger in self.loggers:
            logger.close()


def make_logger(kinds: Iterable[str], run_dir: str | os.PathLike, config: Any = None,
                console_every: int = 0) -> MultiLogger:
    """Build loggers by name (``console``, ``csv``, ``wandb``) and save ``config`` in ``run_dir``.

    The result refuses metric names outside :data:`NAMESPACES`.
    """
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    if config is not None:
        save_config(config, run_dir)
    loggers: list[Logger] = []
    for kind in kinds:
        if kind == "console":
            loggers.append(ConsoleLogger(every=console_every))
        elif kind == "csv":
            loggers.append(CSVLogger(run_dir))
        elif kind == "wandb":
            loggers.append(WandbLogger(run_dir, to_dict(config) if config is not None else None))
        elif kind != "none":
            raise ValueError(f"unknown logger '{kind}'; choose from console, csv, wandb, none")
    return MultiLogger(loggers, NAMESPACES)


def check_namespaces(metrics: Mapping[str, Any], namespaces: tuple[str, ...] = NAMESPACES) -> None:
    """Raise ValueError naming the first metric whose name starts with none of ``namespaces``."""
    for key in metrics:
        if not key.startswith(namespaces):
            raise ValueError(f"metric {key!r} is outside the metric namespaces {', '.join(namespaces)}")


def truncate_metrics(path: Path, step: int) -> None:
    """Drop metric rows logged after ``step`` (written after the checkpoint a run resumes from).

    A last row cut short by a kill is dropped too; a damaged row before it raises.

    Raises:
        ValueError: naming the file and line of a row whose step is not a number.
    """
    if not path.exists():
        return
    with open(path, newline="") as handle:
        lines = handle.read().splitlines(keepends=True)
    reader = csv.DictReader(lines)
    columns = list(reader.fieldnames or [])
    rows = []
    for row in reader:
        try:
            row_step = float(row.get("step") or "")
        except ValueError:
            row_step = None
        if row_step is None or None in row.values():
            if reader.line_num == len(lines) and not lines[-1].endswith("\n"):
                print(f"robokit: dropping the half-written last row of {path} (line {reader.line_num})")
                break
            raise ValueError(f"{path}: line {reader.line_num}: damaged metrics row (step {row.get('step')!r})")
        if row_step <= step:
            rows.append(row)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def _scalar(value: Any) -> float:
    return float(value.item()) if hasattr(value, "item") else float(value)


def _fmt(value: Any) -> str:
    value = _scalar(value)
    return f"{value:.4g}"
