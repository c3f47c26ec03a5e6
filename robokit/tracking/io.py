"""KITTI tracking file formats: detections in, labels and results in and out.

Three text formats, all one object per line, all camera frame (metres, radians):

* AB3DMOT-style detections (``detections/<detector>/<seq>.txt``), comma separated::

      frame, type_code, x1, y1, x2, y2, score, h, w, l, x, y, z, rotation_y, alpha

  with type codes 1 = Pedestrian, 2 = Car, 3 = Cyclist.
* KITTI tracking labels (``label_02/<seq>.txt``), space separated, 17 fields::

      frame track_id type truncated occluded alpha x1 y1 x2 y2 h w l x y z rotation_y

* KITTI tracking results: the label format plus an 18th field, the confidence score.

Readers return :class:`TrackObjects`, a struct of arrays sorted by frame; every parse
error raises ``ValueError`` naming the file and the 1-based line number.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robokit.core.atomic import atomic_write_text

__all__ = [
    "DETECTION_TYPE_CODES",
    "TrackObjects",
    "list_sequences",
    "read_detections",
    "read_tracking_labels",
    "read_tracking_results",
    "write_tracking_results",
]

#: AB3DMOT detection type codes
DETECTION_TYPE_CODES: dict[int, str] = {1: "Pedestrian", 2: "Car", 3: "Cyclist"}


@dataclass
class TrackObjects:
    """Objects of one sequence as parallel arrays (length N, sorted by frame).

    Attributes:
        frame: ``(N,)`` int64 frame index.
        track_id: ``(N,)`` int64 track id (-1 for detections and DontCare).
        obj_type: ``(N,)`` str class name as in KITTI ("Car", "Van", "DontCare", ...).
        truncated: ``(N,)`` float64 KITTI truncation level (tracking labels: 0, 1, 2; -1 unknown).
        occluded: ``(N,)`` int64 occlusion level (0..3; -1 unknown).
        alpha: ``(N,)`` float64 observation angle.
        bbox2d: ``(N, 4)`` float64 image box ``[x1, y1, x2, y2]`` in pixels.
        boxes: ``(N, 7)`` float64 camera-frame boxes ``[x, y_bottom, z, h, w, l, rotation_y]``.
        score: ``(N,)`` float64 confidence (NaN for ground truth).
    """

    frame: np.ndarray
    track_id: np.ndarray
    obj_type: np.ndarray
    truncated: np.ndarray
    occluded: np.ndarray
    alpha: np.ndarray
    bbox2d: np.ndarray
    boxes: np.ndarray
    score: np.ndarray
    source: str = field(default="")

    def __post_init__(self) -> None:
        """Check the arrays agree in length and keep rows sorted by frame (stable)."""
        count = len(self.frame)
        for name in (
            "track_id",
            "obj_type",
            "truncated",
            "occluded",
            "alpha",
            "bbox2d",
            "boxes",
            "score",
        ):
            if len(getattr(self, name)) != count:
                raise ValueError(
                    f"TrackObjects{f' ({self.source})' if self.source else ''}: {name} has "
                    f"{len(getattr(self, name))} rows, frame has {count}"
                )
        if count and np.any(np.diff(self.frame) < 0):
            order = np.argsort(self.frame, kind="stable")
            for name in self.__dataclass_fields__:
                if name != "source":
                    setattr(self, name, getattr(self, name)[order])

    def __len__(self) -> int:
        return int(self.frame.shape[0])

    def select(self, mask_or_index) -> TrackObjects:
        """Rows picked by a boolean mask or an index array."""
        return TrackObjects(
            frame=self.frame[mask_or_index],
            track_id=self.track_id[mask_or_index],
            obj_type=self.obj_type[mask_or_index],
            truncated=self.truncated[mask_or_index],
            occluded=self.occluded[mask_or_index],
            alpha=self.alpha[mask_or_index],
            bbox2d=self.bbox2d[mask_or_index],
            boxes=self.boxes[mask_or_index],
            score=self.score[mask_or_index],
            source=self.source,
        )

    @property
    def num_frames(self) -> int:
        """One more than the largest frame index (0 when empty)."""
        return int(self.frame.max()) + 1 if len(self) else 0

    def frame_slices(self, num_frames: int | None = None) -> list[slice]:
        """``slices[f]`` selects the rows of frame ``f`` (rows are sorted by frame)."""
        count = self.num_frames if num_frames is None else num_frames
        starts = np.searchsorted(self.frame, np.arange(count + 1), side="left")
        return [slice(int(starts[f]), int(starts[f + 1])) for f in range(count)]

    @staticmethod
    def empty(source: str = "") -> TrackObjects:
        return _build([], source)


def _build(rows: list[tuple], source: str) -> TrackObjects:
    """Rows ``(frame, track_id, type, trunc, occ, alpha, x1, y1, x2, y2, x, y, z, h, w, l, ry, score)``."""
    columns = list(zip(*rows, strict=True)) if rows else [()] * 18
    as_float = lambda values: np.asarray(values, dtype=np.float64)  # noqa: E731
    return TrackObjects(
        frame=np.asarray(columns[0], dtype=np.int64),
        track_id=np.asarray(columns[1], dtype=np.int64),
        obj_type=np.asarray(columns[2], dtype=object).astype(str) if rows else np.zeros(0, "<U1"),
        truncated=as_float(columns[3]),
        occluded=np.asarray(columns[4], dtype=np.int64),
        alpha=as_float(columns[5]),
        bbox2d=as_float(columns[6:10]).T.reshape(-1, 4),
        boxes=as_float(columns[10:17]).T.reshape(-1, 7),
        score=as_float(columns[17]),
        source=source,
    )


def parse_numbers(values: list[str], path: Path, line_no: int, what: str) -> list[float]:
    numbers = []
    for column, text in enumerate(values):
        try:
            number = float(text)
        except ValueError:
            raise ValueError(
                f"{path}:{line_no}: {what} field {column + 1} is not a number: {text!r}"
            ) from None
        numbers.append(number)
    return numbers


def _check_frame(value: float, path: Path, line_no: int) -> int:
    if not math.isfinite(value) or value < 0 or value != int(value):
        raise ValueError(f"{path}:{line_no}: frame must be a non-negative integer, got {value!r}")
    return int(value)


def _check_box(numbers: list[float], path: Path, line_no: int, allow_placeholder: bool) -> None:
    """``numbers`` = ``[h, w, l, x, y, z, ry]``; reject NaN/inf and negative sizes."""
    if not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"{path}:{line_no}: box has a NaN or infinite value: {numbers}")
    if allow_placeholder:  # DontCare rows carry -1 sizes and -1000 locations
        return
    if min(numbers[:3]) < 0:
        raise ValueError(f"{path}:{line_no}: box has a negative size (h, w, l) = {numbers[:3]}")


def read_detections(path) -> TrackObjects:
    """Read one sequence of AB3DMOT-style comma-separated detections (format in the module doc)."""
    path = Path(path)
    rows = []
    for line_no, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        fields = [text.strip() for text in line.split(",")]
        if len(fields) != 15:
            raise ValueError(
                f"{path}:{line_no}: expected 15 comma-separated fields, got {len(fields)}"
            )
        numbers = parse_numbers(fields, path, line_no, "detection")
        frame = _check_frame(numbers[0], path, line_no)
        code = int(numbers[1])
        if code not in DETECTION_TYPE_CODES or code != numbers[1]:
            raise ValueError(
                f"{path}:{line_no}: unknown type code {fields[1]!r} (known: {DETECTION_TYPE_CODES})"
            )
        x1, y1, x2, y2, score = numbers[2:7]
        h, w, length, x, y, z, ry, alpha = numbers[7:15]
        _check_box([h, w, length, x, y, z, ry], path, line_no, allow_placeholder=False)
        if not math.isfinite(score):
            raise ValueError(f"{path}:{line_no}: score is not finite: {fields[6]!r}")
        rows.append(
            (frame, -1, DETECTION_TYPE_CODES[code], 0.0, 0, alpha, x1, y1, x2, y2)
            + (x, y, z, h, w, length, ry, score)
        )
    return _build(rows, str(path))


def _read_kitti_lines(path: Path, with_score: bool) -> TrackObjects:
    rows = []
    seen: dict[tuple[int, int], int] = {}
    for line_no, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        fields = line.split()
        allowed = (18,) if with_score else (17, 18)
        if len(fields) not in allowed:
            raise ValueError(
                f"{path}:{line_no}: expected {' or '.join(map(str, allowed))} space-separated fields, "
                f"got {len(fields)}"
            )
        obj_type = fields[2]
        numbers = parse_numbers(fields[:2] + fields[3:], path, line_no, "label")
        frame = _check_frame(numbers[0], path, line_no)
        track_id = int(numbers[1])
        truncated, occluded, alpha = numbers[2], numbers[3], numbers[4]
        x1, y1, x2, y2 = numbers[5:9]
        h, w, length, x, y, z, ry = numbers[9:16]
        score = numbers[16] if len(fields) == 18 else math.nan
        is_dontcare = obj_type == "DontCare"
        _check_box([h, w, length, x, y, z, ry], path, line_no, allow_placeholder=is_dontcare)
        if not all(math.isfinite(v) for v in (truncated, occluded, alpha, x1, y1, x2, y2)):
            raise ValueError(f"{path}:{line_no}: NaN or infinite value in {line.strip()!r}")
        if with_score and not math.isfinite(score):
            raise ValueError(f"{path}:{line_no}: score is not finite: {fields[17]!r}")
        if not is_dontcare:
            if (frame, track_id) in seen:
                raise ValueError(
                    f"{path}:{line_no}: track id {track_id} appears twice in frame {frame} "
                    f"(first on line {seen[frame, track_id]})"
                )
            seen[frame, track_id] = line_no
        rows.append(
            (frame, track_id, obj_type, truncated, int(occluded), alpha, x1, y1, x2, y2)
            + (x, y, z, h, w, length, ry, score)
        )
    return _build(rows, str(path))


def read_tracking_labels(path) -> TrackObjects:
    """Read a KITTI tracking label file (17 fields per line; an 18th score is accepted)."""
    return _read_kitti_lines(Path(path), with_score=False)


def read_tracking_results(path) -> TrackObjects:
    """Read a KITTI tracking result file (18 fields per line, the last one the score)."""
    return _read_kitti_lines(Path(path), with_score=True)


def write_tracking_results(path, objects: TrackObjects) -> Path:
    """Write ``objects`` in the KITTI tracking result format (18 fields), atomically."""
    lines = []
    for i in range(len(objects)):
        x, y, z, h, w, length, ry = objects.boxes[i]
        x1, y1, x2, y2 = objects.bbox2d[i]
        lines.append(
            f"{objects.frame[i]} {objects.track_id[i]} {objects.obj_type[i]} "
            f"{objects.truncated[i]:g} {objects.occluded[i]} {objects.alpha[i]:.6f} "
            f"{x1:.4f} {y1:.4f} {x2:.4f} {y2:.4f} {h:.6f} {w:.6f} {length:.6f} "
            f"{x:.6f} {y:.6f} {z:.6f} {ry:.6f} {objects.score[i]:.6f}\n"
        )
    path = Path(path)
    atomic_write_text(path, "".join(lines))
    return path


def list_sequences(directory, seqs: list[str] | None = None) -> list[str]:
    """Sequence names (file stems) of ``directory/*.txt``, or check that ``seqs`` all exist."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"{directory}: not a directory")
    available = sorted(p.stem for p in directory.glob("*.txt"))
    if seqs is None:
        if not available:
            raise FileNotFoundError(f"{directory}: no <sequence>.txt files")
        return available
    missing = [s for s in seqs if s not in available]
    if missing:
        raise FileNotFoundError(
            f"{directory}: no file for sequence(s) {missing} (found {available})"
        )
    return list(seqs)


def read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return path.read_text().splitlines()
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not a text file ({err})") from None
