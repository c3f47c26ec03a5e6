"""A sum tree (segment tree of sums) for proportional sampling, with numba kernels.

The tree is an array of ``2 * size`` float64, where ``size`` is the capacity
rounded up to a power of two: node ``i`` has children ``2i`` and ``2i+1``,
leaves live at ``size + slot`` and node 1 holds the total. Setting a leaf and
finding the leaf for a cumulative mass are both O(log capacity).
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True)
def _set_leaves(tree, size, slots, values):
    for k in range(slots.shape[0]):
        node = slots[k] + size
        tree[node] = values[k]
        node //= 2
        while node >= 1:
            tree[node] = tree[2 * node] + tree[2 * node + 1]
            node //= 2


@numba.njit(cache=True)
def _find(tree, size, targets, capacity):
    out = np.empty(targets.shape[0], np.int64)
    for k in range(targets.shape[0]):
        mass = targets[k]
        node = 1
        while node < size:
            left = tree[2 * node]
            if mass < left or tree[2 * node + 1] <= 0.0:
                node = 2 * node
            else:
                mass -= left
                node = 2 * node + 1
        slot = node - size
        # float round-off can land on an empty leaf: step back to the nearest filled one
        while slot > 0 and (slot >= capacity or tree[slot + size] <= 0.0):
            slot -= 1
        out[k] = slot
    return out


class SumTree:
    """Priorities of ``capacity`` slots with O(log n) update and proportional lookup."""

    def __init__(self, capacity: int):
        self.capacity = int(capacity)
        self.size = 1 << max(0, (self.capacity - 1).bit_length())
        self.tree = np.zeros(2 * self.size, np.float64)

    def set(self, slots: np.ndarray, values: np.ndarray) -> None:
        """Set leaves ``slots`` (K,) to ``values`` (K,) (non-negative)."""
        values = np.asarray(values, np.float64).reshape(-1)
        if np.any(values < 0):
            raise ValueError("sum tree values must be non-negative")
        _set_leaves(self.tree, self.size, np.asarray(slots, np.int64).reshape(-1), values)

    def get(self, slots: np.ndarray) -> np.ndarray:
        return self.tree[np.asarray(slots, np.int64) + self.size]

    def total(self) -> float:
        return float(self.tree[1])

    def leaves(self) -> np.ndarray:
        return self.tree[self.size:self.size + self.capacity]

    def find(self, targets: np.ndarray) -> np.ndarray:
        """Slot whose cumulative interval contains each mass in ``targets`` (B,) -> (B,) int64."""
        return _find(self.tree, self.size, np.asarray(targets, np.float64).reshape(-1), self.capacity)
