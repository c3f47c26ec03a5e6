"""A run folder (``--out``) is never reused by accident.

Every trainer calls :func:`check_run_dir` before it writes anything: a folder that already
holds files is refused unless the user asked to continue it (``--resume``) or to replace
it (``--overwrite``); :func:`clear_run_dir` then empties it for an overwriting run.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from robokit.core.config import ConfigError


class RunDirError(FileExistsError):
    """``--out`` holds a previous run and neither ``--resume`` nor ``--overwrite`` was given."""


def check_run_dir(out: str | os.PathLike, resume: bool = False, overwrite: bool = False,
                  resumable: bool = True) -> Path:
    """Refuse an ``out`` folder that holds files unless ``resume`` or ``overwrite``; return it.

    Args:
        resumable: whether the command has ``--resume`` (named in the message only if so).

    Raises:
        ConfigError: both ``resume`` and ``overwrite``, or ``overwrite`` of a folder that
            holds the working directory (never deleted).
        RunDirError: ``out`` is a file, or a non-empty folder without ``resume``/``overwrite``.
    """
    out = Path(out)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other: continue the run or replace it")
    if out.exists() and not out.is_dir():
        raise RunDirError(f"--out {out}: is a file, not a run folder")
    if overwrite and out.exists() and Path.cwd().resolve().is_relative_to(out.resolve()):
        raise ConfigError(f"--overwrite {out}: refusing to delete a folder that holds the working directory")
    if resume or overwrite or not out.is_dir():
        return out
    entries = sorted(p.name for p in out.iterdir())
    if entries:
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        options = "--resume to continue it or --overwrite to replace it" if resumable \
            else "--overwrite to replace it"
        raise RunDirError(f"--out {out} already holds files ({shown}); pass {options}, or choose another --out")
    return out


def clear_run_dir(out: str | os.PathLike) -> Path:
    """Delete everything in ``out`` (an ``--overwrite`` run); return the empty folder."""
    out = Path(out)
    if out.is_dir():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    return out
