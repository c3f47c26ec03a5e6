"""Corruption-robustness metrics of ModelNet-C: CE, RCE, mCE, RmCE (and mOA).

For corruption ``i`` with overall accuracy ``OA_i`` averaged over its severity levels:

    CE_i  = (1 - OA_i) / (1 - OA_i^ref)
    RCE_i = (OA_clean - OA_i) / (OA_clean^ref - OA_i^ref)
    mCE   = mean_i CE_i,   RmCE = mean_i RCE_i,   mOA = mean_i OA_i

``ref`` is a reference model. On real ModelNet40 (ModelNet-C) it is DGCNN, whose published
accuracies are in :data:`DGCNN_MODELNET_C_OA` (Ren, Pan and Liu, "Benchmarking and Analyzing
Point Cloud Classification under Corruptions", 2022, Table 2 and the ModelNet-C repository's
evaluation utility). On any other data (e.g. robokit's procedural shapes) there are no published
figures, and the reference must be a model evaluated on the same data, typically robokit's
standard-trained model: build it with :func:`reference_from_accuracies`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = [
    "DGCNN_MODELNET_C_OA",
    "Reference",
    "reference_from_accuracies",
    "corruption_errors",
]

#: DGCNN overall accuracy on ModelNet-C, per corruption averaged over its 5 levels, and clean
DGCNN_MODELNET_C_OA: dict[str, float] = {
    "clean": 0.926,
    "scale": 0.906,
    "jitter": 0.684,
    "rotate": 0.785,
    "dropout_global": 0.752,
    "dropout_local": 0.793,
    "add_global": 0.705,
    "add_local": 0.725,
}

#: a reference: "clean" -> accuracy, corruption name -> accuracy averaged over levels
Reference = Mapping[str, float]


def _mean_accuracy(name: str, per_level: float | Sequence[float]) -> float:
    values = np.atleast_1d(np.asarray(per_level, dtype=np.float64))
    if values.size == 0 or not np.all((values >= 0) & (values <= 1)):
        raise ValueError(f"accuracies for {name!r} must be in [0, 1], got {values.tolist()}")
    return float(values.mean())


def reference_from_accuracies(
    clean_accuracy: float, accuracies: Mapping[str, float | Sequence[float]]
) -> dict[str, float]:
    """Turn a model's clean accuracy and per-level accuracies into a reference mapping."""
    reference = {"clean": _mean_accuracy("clean", clean_accuracy)}
    reference.update({name: _mean_accuracy(name, acc) for name, acc in accuracies.items()})
    return reference


def corruption_errors(
    clean_accuracy: float,
    accuracies: Mapping[str, float | Sequence[float]],
    reference: Reference = DGCNN_MODELNET_C_OA,
) -> dict[str, object]:
    """Compute CE / RCE per corruption and their means.

    Args:
        clean_accuracy: the evaluated model's accuracy on clean data, in [0, 1].
        accuracies: corruption name -> accuracy per severity level (a sequence) or already averaged.
        reference: accuracies of the reference model with the same names plus "clean".

    Returns:
        ``{"per_corruption": {name: {"OA", "CE", "RCE"}}, "mCE", "RmCE", "mOA", "clean_OA"}``.

    Raises:
        KeyError: a corruption missing from the reference; ValueError: a zero denominator
        (reference accuracy 1.0, or a reference without any drop under that corruption).
    """
    if not accuracies:
        raise ValueError("no corruption accuracies given")
    clean = _mean_accuracy("clean", clean_accuracy)
    ref_clean = reference["clean"]
    per_corruption: dict[str, dict[str, float]] = {}
    for name, per_level in accuracies.items():
        if name not in reference:
            raise KeyError(
                f"reference has no accuracy for corruption {name!r}; has {sorted(reference)}"
            )
        overall, ref = _mean_accuracy(name, per_level), float(reference[name])
        if ref >= 1.0 or ref_clean == ref:
            raise ValueError(
                f"reference accuracy for {name!r} ({ref}) gives a zero denominator "
                f"(needs < 1 and != reference clean {ref_clean})"
            )
        per_corruption[name] = {
            "OA": overall,
            "CE": (1.0 - overall) / (1.0 - ref),
            "RCE": (clean - overall) / (ref_clean - ref),
        }
    column = {key: [row[key] for row in per_corruption.values()] for key in ("OA", "CE", "RCE")}
    return {
        "per_corruption": per_corruption,
        "mCE": float(np.mean(column["CE"])),
        "RmCE": float(np.mean(column["RCE"])),
        "mOA": float(np.mean(column["OA"])),
        "clean_OA": clean,
    }
