"""INTACT's targeting on a control policy's input: which parts of an observation the policy
acts on, measured by perturbation.

A SAC actor reads its encoder's features detached (DrQ's rule, :mod:`robokit.nets.encoders`),
so the loss-gradient saliency of :mod:`robokit.intact.saliency` does not reach its input. The
field's saliency for policies is perturbation-based instead (Greydanus et al. 2018,
"Visualizing and Understanding Atari Agents", ICML: ``S(i) = 1/2 ||pi(x) - pi(x')||^2`` with
``x'`` the input with region ``i`` perturbed). Here region ``g`` is a group of entries of one
observation key, set to a ``fill`` value (for a range scan: a bin emptied, as if every return in
it were dropped), and ``pi`` the deterministic action; all groups go through the policy in one
batch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

#: a batch of observations (a dict of (B, ...) arrays) -> (B, A) actions
BatchPolicy = Callable[[dict], np.ndarray]


def occlusion_saliency(policy: BatchPolicy, obs: Mapping[str, np.ndarray], key: str, groups: np.ndarray,
                       fill: np.ndarray) -> np.ndarray:
    """Perturbation saliency of each group of ``obs[key]``: (G,) float64 >= 0.

    Args:
        policy: batch of observations -> (B, A) deterministic actions.
        obs: one observation, a dict of unbatched arrays; ``obs[key]`` is a flat (D,) vector.
        key: the part to perturb.
        groups: (G, K) int indices into ``obs[key]``, one row per region.
        fill: (K,) the values a perturbed region takes (the same for every group).

    Returns:
        ``0.5 * ||pi(obs) - pi(obs with group g filled)||^2`` for every group ``g``.
    """
    groups = np.asarray(groups)
    if groups.ndim != 2 or np.asarray(fill).shape != (groups.shape[1],):
        raise ValueError(f"groups must be (G, K) and fill (K,); got {groups.shape} and {np.shape(fill)}")
    count = len(groups)
    vector = np.asarray(obs[key])
    perturbed = np.repeat(vector[None], count + 1, axis=0)
    perturbed[np.arange(1, count + 1)[:, None], groups] = fill  # row 0 stays clean
    batch = {name: perturbed if name == key else np.repeat(np.asarray(value)[None], count + 1, axis=0)
             for name, value in obs.items()}
    actions = np.asarray(policy(batch), np.float64)
    return 0.5 * ((actions[1:] - actions[:1]) ** 2).sum(axis=1)

