"""Atomic file writes: write to a temporary file beside the target, fsync, rename.

A process killed mid-write leaves the previous file intact, because
``os.replace`` on one filesystem is atomic on POSIX. The temporary file it leaves
behind (``.<name>.<pid>.<random>.tmp``) is removed by the next save or load of the
same destination, once its writer process is gone (:func:`remove_stale_temporaries`).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

TMP_SUFFIX = ".tmp"


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path``.

    Use for writers that want a file name (h5py, torch.save, numpy.savez).
    On any exception the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target)
    fd, tmp_name = tempfile.mkstemp(prefix=temporary_prefix(target), suffix=TMP_SUFFIX, dir=target.parent)
    os.close(fd)
    _apply_umask_permissions(tmp_name)
    tmp = Path(tmp_name)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, target)
        _fsync_dir(target.parent)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb", **open_kwargs: Any) -> Iterator[IO]:
    """Open a temporary file for writing (``open_kwargs`` go to ``open``, e.g. ``newline=""``);
    rename it onto ``path`` when closed cleanly."""
    if not any(flag in mode for flag in "wx"):
        raise ValueError(f"atomic_open is for writing, got mode {mode!r}")
    with atomic_path(path) as tmp, open(tmp, mode, **open_kwargs) as handle:
        yield handle


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Delete temporary files (or folders) that killed writers of ``path`` left beside it; return them.

    A temporary file is stale when the process id in its name (``.<name>.<pid>.<random>.tmp``)
    is no longer running on this host; one whose name carries no process id (written
    before robokit tagged them) is stale too. Files of live writers are kept.
    """
    target = Path(path)
    prefix = f".{target.name}."
    removed = []
    if not target.parent.is_dir():
        return removed
    for candidate in target.parent.glob(f"{glob.escape(prefix)}*{TMP_SUFFIX}"):
        writer = candidate.name[len(prefix):].split(".", 1)[0]
        if writer.isdigit() and _process_alive(int(writer)):
            continue
        if candidate.is_dir() and not candidate.is_symlink():  # a directory writer's (atomic_directory)
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
        removed.append(candidate)
    return removed


def temporary_prefix(path: str | os.PathLike) -> str:
    """The name prefix of this process's temporary files for ``path``: ``.<name>.<pid>.``."""
    return f".{Path(path).name}.{os.getpid()}."


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by someone else
        return True
    return True


def _apply_umask_permissions(path: str) -> None:
    """Give the temporary file the mode a plain ``open()`` would (mkstemp makes it 0600)."""
    mask = os.umask(0)
    os.umask(mask)
    os.chmod(path, 0o666 & ~mask)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
