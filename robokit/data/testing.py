"""Assertions for tests that move episodes through a format or transport and back."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robokit.data.episode import Episode


def assert_episodes_equal(expected: Sequence[Episode], got: Sequence[Episode], check_infos: bool = True) -> None:
    """Raise ``AssertionError`` naming the episode and field where two episode lists differ.

    Observations may be arrays, dicts of arrays or ragged lists of point clouds; with
    ``check_infos`` every info key of ``expected`` must be equal in ``got`` (extra keys in
    ``got`` are allowed).
    """
    assert len(expected) == len(got), f"{len(expected)} episodes expected, got {len(got)}"
    for index, (a, b) in enumerate(zip(expected, got, strict=True)):
        where = f"episode {index}"
        assert len(a) == len(b), f"{where}: {len(a)} steps expected, got {len(b)}"
        _assert_observations_equal(a.observations, b.observations, f"{where} observations")
        for name in ("actions", "rewards", "terminated", "truncated"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=f"{where} {name}")
        if check_infos:
            for key, value in a.infos.items():
                assert key in b.infos, f"{where}: infos['{key}'] missing"
                np.testing.assert_array_equal(value, b.infos[key], err_msg=f"{where} infos['{key}']")


def _assert_observations_equal(a, b, where: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(a)} vs {sorted(b) if isinstance(b, dict) else type(b).__name__}"
        for key in a:
            np.testing.assert_array_equal(a[key], b[key], err_msg=f"{where}['{key}']")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), f"{where}: ragged lengths differ"
        for step, (x, y) in enumerate(zip(a, b, strict=True)):
            np.testing.assert_array_equal(x, y, err_msg=f"{where}[{step}]")
    else:
        np.testing.assert_array_equal(a, b, err_msg=where)
