"""Errors raised by the data layer.

Every error names where the bad value is: the file (when there is one), the key
and the index, so a user can find it without a debugger.
"""

from __future__ import annotations

from collections.abc import Sized

import numpy as np


class DataError(ValueError):
    """Bad dataset content or layout: names file, key and index where known."""


class ReplayNotReady(RuntimeError):
    """Sampling was asked for before the buffer holds enough data (empty, or warm-up not over)."""


def where(source: str | None, key: str | None = None, index: int | tuple | None = None) -> str:
    """A short location string such as ``file.hdf5: key 'rewards' index 12``."""
    parts = []
    if source:
        parts.append(f"{source}:")
    if key is not None:
        parts.append(f"key '{key}'")
    if index is not None:
        parts.append(f"index {index}")
    return " ".join(parts) if parts else "<input>"


def check_finite(array: np.ndarray, key: str, source: str | None = None) -> None:
    """Raise :class:`DataError` naming the first NaN/inf entry of a floating ``array``."""
    if not np.issubdtype(array.dtype, np.floating):
        return
    finite = np.isfinite(array)
    if finite.all():
        return
    bad = np.argwhere(~finite)[0]
    index = tuple(int(i) for i in bad) if bad.size > 1 else int(bad[0])
    value = array[tuple(bad)]
    raise DataError(f"{where(source, key, index)}: non-finite value {value}")


def check_length(array: Sized, expected: int, key: str, source: str | None = None) -> None:
    """Raise :class:`DataError` if ``len(array) != expected``."""
    if len(array) != expected:
        raise DataError(f"{where(source, key)}: length {len(array)}, expected {expected}")


def check_batch_size(batch_size: int) -> None:
    """Raise ``ValueError`` unless ``batch_size`` is a positive integer (``sample(0)`` is a bug)."""
    if isinstance(batch_size, bool) or not isinstance(batch_size, int | np.integer) or batch_size <= 0:
        raise ValueError(f"batch size must be a positive integer, got {batch_size!r}")
