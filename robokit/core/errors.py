"""Exception types shared across robokit that must import without torch (the CLI error
convention catches them in commands that never load torch)."""

from __future__ import annotations


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, of the wrong format, or holds Python objects."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint file names Python objects (classes, functions): refused, never executed."""


class ObservationError(ValueError):
    """An observation that does not fit the agent's observation spec (wrong shape or keys, a
    float image out of [0, 255], a NaN, an empty point cloud); the message names the key.

    A ``ValueError``, so every robokit command reports it as its one-line bad-input error."""
