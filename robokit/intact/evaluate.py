"""Robustness evaluation: accuracy per corruption x severity, CE / RCE / mCE / RmCE, heatmap.

Protocol: ModelNet-C's (:mod:`robokit.intact.protocol`). Each test cloud is brought to
ModelNet-C's 1,024 points, corrupted with :func:`robokit.pointcloud.corruptions.corrupt`, and the
model gets what survives: a 50% global drop leaves 512 points, add_local adds 100..500. A
model with a smaller input size n gets every cloud thinned by n / 1024 (so its clean clouds
have n points and relative densities are ModelNet-C's). The old protocol, which resampled
every corrupted cloud back to n points and so hid any global drop, stays available as
``protocol="resample"``. The random stream of a (corruption, severity) pair depends only on
the seed, the suite position and the severity, so every model is scored on the very same
corrupted clouds.

Metrics follow ModelNet-C (Ren et al., 2022), with error ``E = 1 - accuracy``::

    CE_c  = sum_s E_{c,s} / sum_s E^ref_{c,s}                         mCE  = mean_c CE_c
    RCE_c = sum_s (E_{c,s} - E_clean) / sum_s (E^ref_{c,s} - E^ref_clean)   RmCE = mean_c RCE_c

The reference is ModelNet-C's DGCNN on ModelNet40 (published per-corruption mean
accuracies, :data:`DGCNN_MODELNET_C`) or, on any other data, a robokit result JSON
(typically the standard-trained model's). When the reference loses nothing under a
corruption (its RCE denominator is 0) that corruption's RCE is infinite and is left out
of RmCE (listed under ``RmCE_excluded``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from robokit.intact.train import CHECKPOINT_KIND
from robokit.pointcloud.corruptions.metrics import DGCNN_MODELNET_C_OA

#: the mCE reference on real ModelNet40: one table, kept with the other ModelNet-C metrics
DGCNN_MODELNET_C = DGCNN_MODELNET_C_OA


def headline_corruptions() -> dict[str, tuple[str, int]]:
    """The issue's headline conditions as (ModelNet-C corruption, level), read from its tables."""
    from robokit.pointcloud.corruptions import modelnet_c

    return {
        "drop50": ("dropout_global", modelnet_c.DROPOUT_GLOBAL_RATE.index(0.5)),
        "noise0.02": ("jitter", modelnet_c.JITTER_SIGMA.index(0.02)),
        "noise0.05": ("jitter", modelnet_c.JITTER_SIGMA.index(0.05)),
    }


def corrupt_set(
    points: np.ndarray, name: str | None, severity: int, num_points: int, rng: np.random.Generator
) -> np.ndarray:
    """The old ("resample") protocol for one corruption: (N,P,3) -> (N,num_points,3), every cloud
    corrupted then resampled to ``num_points`` (a random global drop is invisible by construction)."""
    from robokit.intact.protocol import corrupt_clouds

    return np.stack(corrupt_clouds(points, name, severity, num_points, rng, protocol="resample"))


def build_suite(
    points: np.ndarray,
    suite: str,
    num_points: int,
    seed: int = 0,
    progress: bool = False,
    protocol: str = "modelnet-c",
) -> dict[tuple[str, int], list[np.ndarray]]:
    """All corrupted copies of a test set: {(name, severity): clouds}; ("clean", -1) included.

    ``protocol`` "modelnet-c" (default) gives the variable-size survivors of ModelNet-C's protocol,
    "resample" the old fixed-size clouds; see :mod:`robokit.intact.protocol`.
    """
    from robokit.intact import protocol as protocols

    return protocols.build_suite(points, num_points, seed=seed, suite=suite, protocol=protocol, progress=progress)


def evaluate_sets(
    model: nn.Module, sets: Mapping[tuple[str, int], Sequence[np.ndarray]], labels: np.ndarray
) -> dict:
    """Accuracy on prepared sets (clouds of any sizes) -> {"clean": acc, "accuracy": {name: {severity: acc}}}."""
    from robokit.intact.protocol import accuracy_clouds

    return suite_result(list(sets), [accuracy_clouds(model, clouds, labels) for clouds in sets.values()])


def suite_result(keys: Sequence[tuple[str | None, int]], accuracies: Sequence[float]) -> dict:
    """{"clean": acc, "accuracy": {name: {severity: acc}}} of per-pair accuracies (clean: None or "clean")."""
    result: dict = {"clean": None, "accuracy": {}}
    for (name, severity), acc in zip(keys, accuracies, strict=True):
        if name in (None, "clean"):
            result["clean"] = acc
        else:
            result["accuracy"].setdefault(name, {})[int(severity)] = acc
    return result


#: what a suite worker holds: (model in eval mode, clean clouds as the protocol corrupts them,
#: labels (N,), num_points, protocol); see :func:`suite_inputs`
SuiteWorker = tuple


def suite_inputs(model: nn.Module, points: np.ndarray, labels: np.ndarray, num_points: int, seed: int,
                 protocol: str) -> SuiteWorker:
    """A :data:`SuiteWorker` for test clouds (N,P,3): under "modelnet-c" brought to 1,024 points first."""
    from robokit.intact.protocol import modelnet_c_base

    base = modelnet_c_base(points, seed) if protocol == "modelnet-c" else points
    return model, base, labels, int(num_points), protocol


def pair_accuracy(worker: SuiteWorker, item: tuple[int, str | None, int, int]) -> float:
    """Accuracy on one pair (position, name, severity, seed) of a suite: corrupt, classify."""
    from robokit.intact.protocol import accuracy_clouds, corrupt_clouds, pair_rng

    model, base, labels, num_points, protocol = worker
    position, name, severity, seed = item
    rng = pair_rng(seed, position, severity)
    return accuracy_clouds(model, corrupt_clouds(base, name, severity, num_points, rng, protocol), labels)


def evaluate_suite(setup: Callable[..., SuiteWorker], setup_args: tuple, suite: str, seed: int = 0,
                   options: Any = None, progress: bool = False) -> dict:
    """:func:`evaluate_sets` of :func:`build_suite`, one task per pair, optionally fanned out over Ray.

    ``setup(*setup_args)`` gives each worker its :data:`SuiteWorker`; ``options``
    (:class:`robokit.distributed.options.DistributedOptions`) says where the pairs run. Each
    pair's stream comes from :func:`robokit.intact.protocol.pair_rng`, so the result is the same
    in one process and on Ray.
    """
    from tqdm import tqdm

    from robokit.distributed.fanout import fan_out
    from robokit.intact.protocol import suite_pairs

    pairs = suite_pairs(suite)
    items = [(position, name, severity, seed) for position, (name, severity) in enumerate(pairs)]
    with tqdm(total=len(items), desc=f"evaluating ({suite})", disable=not progress, leave=False) as bar:
        accuracies = fan_out(setup, setup_args, pair_accuracy, items, options, progress=lambda _: bar.update(1))
    return suite_result(pairs, accuracies)


def error_metrics(result: Mapping, reference: Mapping) -> dict:
    """CE/RCE per corruption and mCE/RmCE of ``result`` against ``reference``.

    ``reference`` is either a result of :func:`evaluate_sets` (per-severity accuracies) or a
    flat {"clean": acc, name: mean accuracy over levels} such as :data:`DGCNN_MODELNET_C`.
    Corruptions missing from the reference are skipped; a zero reference error gives inf.
    """
    ce, rce = {}, {}
    ref_clean_err = 1.0 - float(reference["clean"])
    clean_err = 1.0 - float(result["clean"])
    for name, by_level in result["accuracy"].items():
        errors = np.array([1.0 - a for a in by_level.values()])
        ref_errors = _reference_errors(reference, name, len(errors))
        if ref_errors is None:
            continue
        ce[name] = _ratio(errors.sum(), ref_errors.sum())
        rce[name] = _ratio((errors - clean_err).sum(), (ref_errors - ref_clean_err).sum())
    finite_rce = [v for v in rce.values() if np.isfinite(v)]
    return {
        "CE": ce,
        "RCE": rce,
        "mCE": float(np.mean(list(ce.values()))) if ce else None,
        "RmCE": float(np.mean(finite_rce)) if finite_rce else None,
        "RmCE_excluded": sorted(name for name, v in rce.items() if not np.isfinite(v)),
    }


def _reference_errors(reference: Mapping, name: str, levels: int) -> np.ndarray | None:
    if "accuracy" in reference:
        by_level = reference["accuracy"].get(name)
        return None if by_level is None else np.array([1.0 - float(a) for a in by_level.values()])
    if name not in reference:
        return None
    return np.full(levels, 1.0 - float(reference[name]))


def _ratio(numerator: float, denominator: float) -> float:
    if abs(denominator) < 1e-12:
        return float("inf") if abs(numerator) > 1e-12 else 1.0
    return float(numerator / denominator)


def format_table(result: Mapping, metrics: Mapping | None = None) -> str:
    """Readable table: one row per corruption, accuracy (%) per severity, CE and RCE."""
    levels = sorted({int(s) for by_level in result["accuracy"].values() for s in by_level})
    width = max([10] + [len(n) for n in result["accuracy"]])
    header = f"{'corruption':<{width}} " + " ".join(f"{'s' + str(s):>6}" for s in levels)
    header += f" {'mean':>6} {'CE':>6} {'RCE':>6}"
    lines = [header, "-" * len(header), f"{'clean':<{width}} {100 * result['clean']:>6.1f}"]
    for name, by_level in result["accuracy"].items():
        cells = " ".join(
            f"{100 * by_level[s]:>6.1f}" if s in by_level else f"{'':>6}" for s in levels
        )
        ce = _fmt((metrics or {}).get("CE", {}).get(name))
        rce = _fmt((metrics or {}).get("RCE", {}).get(name))
        lines.append(
            f"{name:<{width}} {cells} {100 * np.mean(list(by_level.values())):>6.1f} {ce:>6} {rce:>6}"
        )
    if metrics and metrics.get("mCE") is not None:
        lines.append(f"mCE = {metrics['mCE']:.3f}   RmCE = {metrics['RmCE']:.3f}")
    return "\n".join(lines)


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.3f}"


def new_figure(**kwargs):
    """A matplotlib figure on the non-interactive Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.figure(**kwargs)


def save_png(fig, path: str | os.PathLike, dpi: int = 110) -> Path:
    """Write ``fig`` to ``path`` as PNG atomically and close it."""
    import matplotlib.pyplot as plt

    from robokit.core.atomic import atomic_path

    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        plt.close(fig)
    return Path(path)


def plot_heatmap(result: Mapping, path: str | os.PathLike, title: str = "") -> Path:
    """Accuracy heatmap (corruption x severity) written atomically as PNG."""
    names = list(result["accuracy"])
    levels = sorted({int(s) for by_level in result["accuracy"].values() for s in by_level})
    grid = np.array([[result["accuracy"][n].get(s, np.nan) for s in levels] for n in names]) * 100
    fig = new_figure(figsize=(1.2 * len(levels) + 3, 0.4 * len(names) + 1.5))
    ax = fig.add_subplot()
    image = ax.imshow(grid, vmin=0, vmax=100, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(levels)), [str(s) for s in levels])
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("severity")
    for (row, col), value in np.ndenumerate(grid):
        ax.text(
            col,
            row,
            f"{value:.0f}",
            ha="center",
            va="center",
            color="w" if value < 60 else "k",
            fontsize=8,
        )
    fig.colorbar(image, ax=ax, label="accuracy (%)")
    ax.set_title(title or f"clean accuracy {100 * result['clean']:.1f}%")
    fig.tight_layout()
    return save_png(fig, path)


def load_classifier(path: str | os.PathLike) -> tuple[nn.Module, dict]:
    """Model (eval mode) and checkpoint dict of a ``robokit robustness train`` checkpoint.

    Raises:
        robokit.core.checkpoint.CheckpointError: naming the file when it is not such a checkpoint.
    """
    from robokit.core.checkpoint import CheckpointError, load_checkpoint
    from robokit.pointcloud.backbones import build_classifier

    state = load_checkpoint(path)
    if state.get("kind") != CHECKPOINT_KIND:
        raise CheckpointError(
            f"{path}: not a robustness classifier checkpoint (kind {state.get('kind')!r})"
        )
    missing = [k for k in ("backbone", "num_classes", "width", "model") if k not in state]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks keys {missing}")
    k = int((state.get("config") or {}).get("dgcnn_k", 20))
    model = build_classifier(state["backbone"], int(state["num_classes"]), float(state["width"]), k)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: model weights do not fit a {state['backbone']} classifier: {err}"
        ) from err
    return model.eval(), state


def load_teacher(state: Mapping):
    """The INTACT teacher stored in a checkpoint dict, or None."""
    from robokit.intact.saliency import SaliencyTeacher

    if state.get("teacher") is None:
        return None
    teacher = SaliencyTeacher()
    teacher.load_state_dict(state["teacher"])
    return teacher.eval()


def write_json(payload: Mapping, path: str | os.PathLike) -> Path:
    """JSON (int severity keys become strings) written atomically."""
    from robokit.core.atomic import atomic_write_text

    atomic_write_text(
        path, json.dumps(payload, indent=2, sort_keys=False, default=_json_default) + "\n"
    )
    return Path(path)


def read_result_json(path: str | os.PathLike) -> dict:
    """A result JSON written by ``robokit robustness eval`` (severity keys back to int)."""
    try:
        payload = json.loads(Path(path).read_text())
        payload["accuracy"] = {
            name: {int(s): float(a) for s, a in by_level.items()}
            for name, by_level in payload["accuracy"].items()
        }
        payload["clean"] = float(payload["clean"])
    except FileNotFoundError as err:
        raise FileNotFoundError(f"{path}: no such reference result file") from err
    except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as err:
        raise ValueError(
            f"{path}: not a robokit robustness result JSON ({type(err).__name__}: {err})"
        ) from err
    return payload


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
