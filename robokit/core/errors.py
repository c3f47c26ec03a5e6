"""Exception types shared across robokit that must import without torch (the CLI error
convention catches them in commands that never load torch)."""

from __future__ import annotations


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, truncated, of the wrong format, or holds Python objects."""


class UnsafeCheckpointError(CheckpointError):
    """A checkpoint file names Python objects (classes, functions): refused, never executed."""
