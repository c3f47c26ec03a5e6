"""A linear probe that checks a hidden-context env really hides its context in the first frame.

For each context, reset the env ``per_context`` times (seeds from :func:`episode_seeds`), keep the
first frame average-pooled to ``(64 / pool)^2 x 3`` features, fit a ridge classifier (least
squares on one-hot labels, closed form) on even resets and test it on odd ones. With the goal
hidden the accuracy should stay near chance (1/K); with ``show_goal=True`` (the goal drawn) the
same probe reads the context, which shows that the probe can detect a leak.
"""

from __future__ import annotations

import math

import numpy as np

from robokit.pretrain.demos import episode_seeds


def first_frame_features(env_id: str, show_goal: bool, per_context: int, seed: int = 0,
                         pool: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """``(features (N, F) float32 in [0, 1], contexts (N,) int64)``, N = K * per_context,
    F = (H / pool) * (W / pool) * 3: each first frame average-pooled over pool x pool pixels."""
    import gymnasium as gym

    import robokit.envs  # noqa: F401  (registers the ids)

    env = gym.make(env_id, show_goal=show_goal)
    try:
        contexts = env.unwrapped.num_contexts
        features, labels = [], []
        for context in range(contexts):
            for index in range(per_context):
                frame = env.reset(seed=episode_seeds(seed, context, index)[0], options={"context": context})[0]
                height, width, _ = frame.shape
                pooled = frame.reshape(height // pool, pool, width // pool, pool, 3).mean(axis=(1, 3))
                features.append((pooled / 255.0).ravel())
                labels.append(context)
    finally:
        env.close()
    return np.asarray(features, np.float32), np.asarray(labels, np.int64)


def ridge_probe_accuracy(features: np.ndarray, labels: np.ndarray, alpha: float = 1.0) -> float:
    """Held-out accuracy of a ridge classifier trained on even rows and tested on odd rows.

    Ridge regression of the one-hot labels on the centred features (dual form, (n, n) solve),
    predicting the label with the largest score. Shapes: features (N, F), labels (N,) ints.
    """
    train = np.arange(len(labels)) % 2 == 0
    classes = np.unique(labels)
    x, y = features[train].astype(np.float64), (labels[train, None] == classes[None]).astype(np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc = x - x_mean
    weights = xc.T @ np.linalg.solve(xc @ xc.T + alpha * np.eye(len(xc)), y - y_mean)
    scores = (features[~train] - x_mean) @ weights + y_mean
    return float((classes[scores.argmax(axis=1)] == labels[~train]).mean())


def chance_bound(num_classes: int, tested: int, sigmas: float = 3.0) -> float:
    """Chance accuracy 1/K plus ``sigmas`` binomial standard deviations over ``tested`` rows."""
    chance = 1.0 / num_classes
    return chance + sigmas * math.sqrt(chance * (1 - chance) / tested)


def context_probe(env_id: str, show_goal: bool = False, per_context: int = 16, seed: int = 0) -> dict[str, float]:
    """The probe's held-out accuracy on first frames, with chance (1/K) and the 3-sigma bound."""
    features, labels = first_frame_features(env_id, show_goal, per_context, seed)
    contexts = len(np.unique(labels))
    tested = int((np.arange(len(labels)) % 2 == 1).sum())
    return {"accuracy": ridge_probe_accuracy(features, labels), "chance": 1.0 / contexts,
            "bound": chance_bound(contexts, tested), "tested": tested}
