"""Linear probes: does a hidden-context env hide its context, does an encoder see the state?

:func:`context_probe`: for each context, reset the env ``per_context`` times (seeds from :func:`episode_seeds`), keep the
first frame average-pooled to ``(64 / pool)^2 x 3`` features, fit a ridge classifier (least
squares on one-hot labels, closed form) on even resets and test it on odd ones. With the goal
hidden the accuracy should stay near chance (1/K); with ``show_goal=True`` (the goal drawn) the
same probe reads the context, which shows that the probe can detect a leak.

:func:`state_probe_r2`: a ridge regression from frozen embeddings to the privileged state (e.g. the
point mass's position), fitted on one set of frames and scored (R^2) on another; the cheap check
that a pretrained encoder's embeddings follow the object before any policy is fitted on them.
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


def ridge_fit(x: np.ndarray, y: np.ndarray, alpha: float = 1.0):
    """Ridge regression of ``y`` (N, T) on ``x`` (N, F) with intercepts (centred data, closed form).

    Solves the (F, F) primal system when F <= N, else the (N, N) dual one (the same weights).
    Returns ``predict(x_new (M, F)) -> (M, T)``.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    x_mean, y_mean = x.mean(axis=0), y.mean(axis=0)
    xc, yc = x - x_mean, y - y_mean
    if xc.shape[1] <= xc.shape[0]:
        weights = np.linalg.solve(xc.T @ xc + alpha * np.eye(xc.shape[1]), xc.T @ yc)
    else:
        weights = xc.T @ np.linalg.solve(xc @ xc.T + alpha * np.eye(len(xc)), yc)
    return lambda new: (np.asarray(new, np.float64) - x_mean) @ weights + y_mean


def ridge_probe_accuracy(features: np.ndarray, labels: np.ndarray, alpha: float = 1.0) -> float:
    """Held-out accuracy of a ridge classifier trained on even rows and tested on odd rows.

    Ridge regression of the one-hot labels on the centred features (:func:`ridge_fit`),
    predicting the label with the largest score. Shapes: features (N, F), labels (N,) ints.
    """
    train = np.arange(len(labels)) % 2 == 0
    classes = np.unique(labels)
    predict = ridge_fit(features[train], (labels[train, None] == classes[None]).astype(np.float64), alpha)
    scores = predict(features[~train])
    return float((classes[scores.argmax(axis=1)] == labels[~train]).mean())


def r2_score(predicted: np.ndarray, target: np.ndarray) -> float:
    """Coefficient of determination ``1 - SS_res / SS_tot`` per column of (N, T), averaged over the T columns
    (1: perfect, 0: no better than the targets' mean, negative: worse)."""
    predicted, target = np.asarray(predicted, np.float64), np.asarray(target, np.float64)
    residual = ((target - predicted) ** 2).sum(axis=0)
    total = ((target - target.mean(axis=0)) ** 2).sum(axis=0)
    return float(np.mean(1.0 - residual / np.maximum(total, 1e-12)))


def state_probe_r2(train_embeddings: np.ndarray, train_targets: np.ndarray, test_embeddings: np.ndarray,
                   test_targets: np.ndarray, alpha: float = 1e-3) -> float:
    """Held-out R^2 (:func:`r2_score`) of a ridge probe embeddings (N, E) -> targets (N, T), fitted on the
    train rows and scored on the test rows."""
    predict = ridge_fit(train_embeddings, train_targets, alpha)
    return r2_score(predict(test_embeddings), test_targets)


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


def embedding_probe(encoder, train_frames: np.ndarray, train_targets: np.ndarray, test_frames: np.ndarray,
                    test_targets: np.ndarray, alpha: float = 1.0, fine_alpha: float = 1e-6) -> dict[str, float]:
    """How well a frozen encoder's embeddings follow the state, before any policy is fitted on them.

    Encodes uint8 frames (N, H, W, C) with ``encoder`` (eval mode, no gradients), fits
    :func:`state_probe_r2` from the train embeddings to ``train_targets`` (N, T) (e.g. the point
    mass's xy) and scores it on the test frames. Returns

    - ``r2``: held-out R^2 of the ridge at ``alpha`` (1): embedding directions that vary by much
      less than ``sqrt(alpha / N)`` over the N train frames are shrunk away, so this counts what a
      head at its usual initial scale can read;
    - ``r2_any_scale``: the same at ``fine_alpha`` (1e-6): the position information present at any
      scale, however small the variation that carries it;
    - ``embedding_std``: the per-dimension std of the test embeddings over frames, averaged.
    """
    from robokit.pretrain.finetune import encode_frames

    train = encode_frames(encoder, train_frames).numpy()
    test = encode_frames(encoder, test_frames).numpy()
    return {"r2": state_probe_r2(train, train_targets, test, test_targets, alpha),
            "r2_any_scale": state_probe_r2(train, train_targets, test, test_targets, fine_alpha),
            "embedding_std": float(test.std(axis=0).mean())}
