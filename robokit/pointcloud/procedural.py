"""A procedural shapes dataset in the ModelNet40 HDF5 layout (the embedded default).

ModelNet40 cannot be downloaded here, so robokit generates its own object-classification set:
13 classes of parametric objects built from parts (boxes, surfaces of revolution, tori), each
with random size, proportions and optional parts, surface-sampled area-weighted, yawed by a
random angle within +-30 degrees, centred on the centroid and scaled to the unit sphere
(ModelNet40's ``pc_normalize``). Objects are built z-up and stored y-up like the
``modelnet40_ply_hdf5_2048`` files (stored ``(x, y, z) = (x_build, z_build, -y_build)``).

Several classes are deliberately close (bottle/vase, mug/bowl, stool/table/chair,
cone/lamp), so that no single statistic separates them; see docs/pointcloud.md for the accuracy
a small PointNet reaches.

Everything is deterministic from ``seed``: object ``i`` of class ``k`` uses its own
``numpy.random.Generator`` seeded from ``(seed, k, i)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from robokit.pointcloud.points import normalize_unit_sphere

__all__ = ["PROCEDURAL_CLASSES", "make_procedural_dataset", "prepare_procedural", "sample_shape"]


# --------------------------------------------------------------------------- primitives
@dataclass(frozen=True)
class Part:
    """One surface patch: ``sample(n, rng) -> (n, 3)`` local points, its area and a pose."""

    area: float
    sample: Callable[[int, np.random.Generator], np.ndarray]
    rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    translation: np.ndarray = field(default_factory=lambda: np.zeros(3))

    def points(self, count: int, rng: np.random.Generator) -> np.ndarray:
        return self.sample(count, rng) @ self.rotation.T + self.translation


def _rot_z(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def _rot_x(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def box(size_xyz, centre=(0.0, 0.0, 0.0), rotation=None) -> Part:
    """Surface of an axis-aligned box with edge lengths ``size_xyz``, centred at ``centre``."""
    half = np.asarray(size_xyz, dtype=float) / 2.0
    lx, ly, lz = 2 * half
    face_areas = np.array([ly * lz, ly * lz, lx * lz, lx * lz, lx * ly, lx * ly])

    def sample(count: int, rng: np.random.Generator) -> np.ndarray:
        face = rng.choice(6, size=count, p=face_areas / face_areas.sum())
        pts = rng.uniform(-half, half, size=(count, 3))
        axis = face // 2
        sign = np.where(face % 2 == 0, -1.0, 1.0)
        pts[np.arange(count), axis] = sign * half[axis]
        return pts

    return Part(
        float(2 * (lx * ly + ly * lz + lx * lz)), sample, _pose(rotation), np.asarray(centre, float)
    )


def revolution(radii, heights, centre=(0.0, 0.0, 0.0), rotation=None, scale_xy=(1.0, 1.0)) -> Part:
    """Surface of revolution about +z through a profile polyline ``(radii[k], heights[k])``.

    Each profile segment is a frustum (area ``pi (r1 + r2) slant``); a segment with equal
    heights is a flat ring or disk. Within a segment the position ``t`` follows a density
    proportional to the local radius, so sampling is area-uniform. ``scale_xy`` stretches the
    result into an elliptic cross-section (area then approximate).
    """
    r = np.asarray(radii, dtype=float)
    z = np.asarray(heights, dtype=float)
    slant = np.hypot(np.diff(r), np.diff(z))
    seg_area = np.pi * (r[:-1] + r[1:]) * slant
    total = float(seg_area.sum())
    probs = seg_area / total
    stretch = np.array([scale_xy[0], scale_xy[1], 1.0])

    def sample(count: int, rng: np.random.Generator) -> np.ndarray:
        seg = rng.choice(len(seg_area), size=count, p=probs)
        r0, r1 = r[seg], r[seg + 1]
        u = rng.uniform(size=count)
        dr = r1 - r0
        safe = np.abs(dr) > 1e-9
        t = np.where(safe, (np.sqrt(r0**2 + u * (r1**2 - r0**2)) - r0) / np.where(safe, dr, 1.0), u)
        radius = r0 + dr * t
        height = z[seg] + (z[seg + 1] - z[seg]) * t
        phi = rng.uniform(0.0, 2 * np.pi, size=count)
        pts = np.stack([radius * np.cos(phi), radius * np.sin(phi), height], axis=1)
        return pts * stretch

    area = total * float(np.sqrt(scale_xy[0] * scale_xy[1]))
    return Part(area, sample, _pose(rotation), np.asarray(centre, float))


def cylinder(radius, height, centre=(0.0, 0.0, 0.0), rotation=None, capped=True) -> Part:
    """Cylinder about +z from ``z=0`` to ``z=height`` (closed by two disks when ``capped``)."""
    if capped:
        return revolution([0.0, radius, radius, 0.0], [0.0, 0.0, height, height], centre, rotation)
    return revolution([radius, radius], [0.0, height], centre, rotation)


def torus(major, minor, centre=(0.0, 0.0, 0.0), rotation=None, arc=2 * np.pi) -> Part:
    """Torus (or an arc of it) about +z; area-uniform by rejection on the tube angle."""

    def sample(count: int, rng: np.random.Generator) -> np.ndarray:
        accepted = np.empty((0,), dtype=float)
        while accepted.size < count:
            theta = rng.uniform(0.0, 2 * np.pi, size=2 * count + 8)
            keep = rng.uniform(size=theta.size) < (major + minor * np.cos(theta)) / (major + minor)
            accepted = np.concatenate([accepted, theta[keep]])
        theta = accepted[:count]
        phi = rng.uniform(0.0, arc, size=count)
        ring = major + minor * np.cos(theta)
        return np.stack([ring * np.cos(phi), ring * np.sin(phi), minor * np.sin(theta)], axis=1)

    return Part(
        float(arc * major * 2 * np.pi * minor), sample, _pose(rotation), np.asarray(centre, float)
    )


def _pose(rotation) -> np.ndarray:
    return np.eye(3) if rotation is None else np.asarray(rotation, dtype=float)


# --------------------------------------------------------------------------- classes
def _legs(half_x, half_y, height, thickness, round_legs, splay=0.0) -> list[Part]:
    """Four legs from the floor up to ``height`` under the corners (+-half_x, +-half_y), leaning
    inwards when ``splay`` (metres at the foot) is positive."""
    parts = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            foot = (sx * (half_x + splay), sy * (half_y + splay), 0.0)
            top = np.array([sx * half_x, sy * half_y, height])
            tilt = _rot_y(-sx * np.arctan2(splay, height)) @ _rot_x(sy * np.arctan2(splay, height))
            length = float(np.hypot(height, splay * np.sqrt(2)))
            if round_legs:
                parts.append(cylinder(thickness / 2, length, foot, tilt, capped=False))
            else:
                centre = (np.asarray(foot) + top) / 2
                parts.append(box((thickness, thickness, length), centre, tilt))
    return parts


def _chair(rng):
    w, d = rng.uniform(0.40, 0.60), rng.uniform(0.40, 0.60)
    seat_h, seat_t = rng.uniform(0.40, 0.55), rng.uniform(0.03, 0.08)
    leg = rng.uniform(0.025, 0.06)
    back_h, back_t = rng.uniform(0.30, 0.70), rng.uniform(0.03, 0.06)
    lean = rng.uniform(0.0, 0.25)
    parts = [box((w, d, seat_t), (0, 0, seat_h))]
    parts += _legs(w / 2 - leg, d / 2 - leg, seat_h - seat_t / 2, leg, rng.uniform() < 0.5)
    parts.append(
        box(
            (w, back_t, back_h),
            (0, d / 2 - back_t / 2 + np.sin(lean) * back_h / 2, seat_h + back_h / 2),
            _rot_x(-lean),
        )
    )
    if rng.uniform() < 0.35:  # arm rests
        for side in (-1, 1):
            parts.append(box((0.05, d * 0.9, 0.04), (side * (w / 2 - 0.025), 0, seat_h + 0.22)))
    return parts


def _table(rng):
    height, top_t = rng.uniform(0.55, 0.80), rng.uniform(0.03, 0.07)
    if rng.uniform() < 0.6:  # rectangular top on four legs
        length, width = rng.uniform(0.8, 1.6), rng.uniform(0.5, 1.0)
        leg = rng.uniform(0.04, 0.08)
        parts = [box((length, width, top_t), (0, 0, height - top_t / 2))]
        return parts + _legs(
            length / 2 - 2 * leg, width / 2 - 2 * leg, height - top_t, leg, rng.uniform() < 0.5
        )
    radius = rng.uniform(0.35, 0.6)  # round top on a pedestal
    return [
        cylinder(radius, top_t, (0, 0, height - top_t)),
        cylinder(rng.uniform(0.03, 0.07), height - top_t, capped=False),
        cylinder(rng.uniform(0.2, 0.35) * radius / 0.5, rng.uniform(0.02, 0.05)),
    ]


def _stool(rng):
    height, seat_t = rng.uniform(0.45, 0.80), rng.uniform(0.03, 0.07)
    leg = rng.uniform(0.025, 0.05)
    if rng.uniform() < 0.5:
        radius = rng.uniform(0.15, 0.25)
        seat = cylinder(radius, seat_t, (0, 0, height - seat_t))
        half = radius * 0.7
    else:
        side = rng.uniform(0.28, 0.45)
        seat = box((side, side, seat_t), (0, 0, height - seat_t / 2))
        half = side / 2 - leg
    parts = [seat] + _legs(half, half, height - seat_t, leg, True, splay=rng.uniform(0.0, 0.08))
    if rng.uniform() < 0.5:  # foot ring
        parts.append(torus(half + 0.02, leg / 2, (0, 0, height * rng.uniform(0.25, 0.4))))
    return parts


def _lamp(rng):
    base_r, base_t = rng.uniform(0.12, 0.25), rng.uniform(0.02, 0.06)
    pole_h, pole_r = rng.uniform(0.5, 1.1), rng.uniform(0.012, 0.03)
    shade_h = rng.uniform(0.15, 0.35)
    shade_bottom, shade_top = rng.uniform(0.15, 0.35), rng.uniform(0.06, 0.2)
    parts = [cylinder(base_r, base_t), cylinder(pole_r, pole_h, (0, 0, base_t), capped=False)]
    top = base_t + pole_h
    if rng.uniform() < 0.4:  # bent arm: shade hangs off to one side
        arm = rng.uniform(0.15, 0.35)
        parts.append(cylinder(pole_r, arm, (0, 0, top), _rot_y(np.pi / 2), capped=False))
        parts.append(
            revolution([shade_bottom, shade_top], [0.0, shade_h], (arm, 0, top - shade_h * 0.9))
        )
    else:
        parts.append(
            revolution([shade_bottom, shade_top], [0.0, shade_h], (0, 0, top - shade_h * 0.6))
        )
    return parts


def _mug(rng):
    radius, height, wall = rng.uniform(0.3, 0.45), rng.uniform(0.6, 1.1), rng.uniform(0.02, 0.05)
    taper = rng.uniform(0.85, 1.1)
    body = revolution(
        [0.0, radius, radius * taper, radius * taper - wall, radius - wall, 0.0],
        [0.0, 0.0, height, height, wall, wall],
    )
    handle_major = rng.uniform(0.18, 0.3) * height
    handle = torus(
        handle_major,
        rng.uniform(0.025, 0.05),
        (radius * (1 + taper) / 2, 0, height / 2),
        _rot_x(np.pi / 2),
        arc=2 * np.pi,
    )
    return [body, handle]


def _bowl(rng):
    radius, depth, wall = rng.uniform(0.45, 0.6), rng.uniform(0.2, 0.45), rng.uniform(0.02, 0.05)
    angles = np.linspace(0.0, np.pi / 2, 12)
    outer_r, outer_z = radius * np.sin(angles), depth * (1 - np.cos(angles))
    inner_r, inner_z = (
        (radius - wall) * np.sin(angles[::-1]),
        wall + (depth - wall) * (1 - np.cos(angles[::-1])),
    )
    parts = [revolution(np.concatenate([outer_r, inner_r]), np.concatenate([outer_z, inner_z]))]
    if rng.uniform() < 0.6:  # foot ring
        parts.append(
            cylinder(
                radius * rng.uniform(0.3, 0.5), rng.uniform(0.03, 0.08), (0, 0, -0.05), capped=False
            )
        )
    return parts


def _bottle(rng):
    body_r, body_h = rng.uniform(0.15, 0.3), rng.uniform(0.5, 0.9)
    shoulder_h, neck_r, neck_h = (
        rng.uniform(0.08, 0.25),
        rng.uniform(0.04, 0.09),
        rng.uniform(0.1, 0.3),
    )
    r = [0.0, body_r, body_r, neck_r, neck_r, 0.0]
    z = [
        0.0,
        0.0,
        body_h,
        body_h + shoulder_h,
        body_h + shoulder_h + neck_h,
        body_h + shoulder_h + neck_h,
    ]
    return [revolution(r, z)]


def _vase(rng):
    height, base_r = rng.uniform(0.7, 1.3), rng.uniform(0.12, 0.25)
    heights = np.linspace(0.0, height, 14)
    phase, bulge, freq = rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.18), rng.uniform(0.6, 1.4)
    flare = rng.uniform(-0.05, 0.12)
    radii = (
        base_r
        + bulge * np.sin(freq * np.pi * heights / height + phase) ** 2
        + flare * heights / height
    )
    radii = np.maximum(radii, 0.05)
    return [revolution(np.concatenate([[0.0], radii]), np.concatenate([[0.0], heights]))]


def _cone(rng):
    radius, height = rng.uniform(0.25, 0.6), rng.uniform(0.5, 1.3)
    top = radius * rng.uniform(0.0, 0.3)
    return [revolution([0.0, radius, top, 0.0], [0.0, 0.0, height, height])]


def _torus(rng):
    major, minor = rng.uniform(0.5, 0.8), rng.uniform(0.06, 0.3)
    tilt = _rot_x(rng.uniform(-0.5, 0.5)) @ _rot_y(rng.uniform(-0.5, 0.5))
    return [torus(major, minor, rotation=tilt)]


def _airplane(rng):
    length, radius = rng.uniform(1.6, 2.2), rng.uniform(0.08, 0.16)
    fuselage = revolution(
        [0.0, radius * 0.6, radius, radius, radius * 0.4, 0.0],
        [0.0, 0.1 * length, 0.25 * length, 0.75 * length, length, length],
        (-length / 2, 0, 0),
        _rot_y(np.pi / 2),
    )
    span, chord, sweep = rng.uniform(1.2, 2.0), rng.uniform(0.2, 0.45), rng.uniform(0.0, 0.5)
    wing_x = rng.uniform(-0.15, 0.1) * length
    parts = [fuselage]
    for side in (-1, 1):
        parts.append(
            box(
                (chord, span / 2, 0.03),
                (wing_x - sweep * span / 4, side * span / 4, 0),
                _rot_z(side * sweep * 0.5),
            )
        )
    tail_x = -0.42 * length
    parts.append(box((chord * 0.5, span * rng.uniform(0.25, 0.4), 0.025), (tail_x, 0, 0)))
    parts.append(box((chord * 0.6, 0.025, rng.uniform(0.2, 0.35)), (tail_x, 0, 0.15)))
    if rng.uniform() < 0.5:  # two engines under the wings
        for side in (-1, 1):
            parts.append(
                cylinder(
                    0.06,
                    0.3,
                    (wing_x - sweep * span / 8 + 0.15, side * span * 0.18, -0.08),
                    _rot_y(-np.pi / 2),
                )
            )
    return parts


def _car(rng):
    length, width, body_h = rng.uniform(1.6, 2.4), rng.uniform(0.7, 1.0), rng.uniform(0.25, 0.45)
    wheel_r = rng.uniform(0.14, 0.22)
    cabin_l, cabin_h = length * rng.uniform(0.4, 0.65), rng.uniform(0.2, 0.4)
    cabin_x = rng.uniform(-0.15, 0.1) * length
    parts = [
        box((length, width, body_h), (0, 0, wheel_r + body_h / 2)),
        box(
            (cabin_l, width * rng.uniform(0.8, 0.95), cabin_h),
            (cabin_x, 0, wheel_r + body_h + cabin_h / 2),
        ),
    ]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(
                cylinder(
                    wheel_r,
                    0.12,
                    (sx * length * 0.33, sy * width / 2 + (sy > 0) * 0.12, wheel_r),
                    _rot_x(np.pi / 2),
                )
            )
    return parts


def _bookshelf(rng):
    width, depth, height = rng.uniform(0.6, 1.2), rng.uniform(0.25, 0.4), rng.uniform(0.8, 1.8)
    board = rng.uniform(0.02, 0.04)
    shelves = int(rng.integers(2, 6))
    parts = [
        box((board, depth, height), (-width / 2, 0, height / 2)),
        box((board, depth, height), (width / 2, 0, height / 2)),
        box((width, board, height), (0, depth / 2, height / 2)),
    ]
    for level in np.linspace(0.0, height, shelves + 1):
        parts.append(box((width, depth, board), (0, 0, level)))
    return parts


def _cup(rng):
    top_r, height, wall = rng.uniform(0.28, 0.45), rng.uniform(0.55, 1.2), rng.uniform(0.02, 0.05)
    bottom_r = top_r * rng.uniform(0.6, 1.0)
    body = revolution(
        [0.0, bottom_r, top_r, top_r - wall, bottom_r - wall, 0.0],
        [0.0, 0.0, height, height, wall, wall],
    )
    parts = [body]
    if rng.uniform() < 0.3:  # some cups have a foot
        parts.append(cylinder(bottom_r * 0.8, 0.05, (0, 0, -0.05)))
    return parts


def _flower_pot(rng):
    top_r, height = rng.uniform(0.3, 0.5), rng.uniform(0.4, 0.9)
    bottom_r, wall = top_r * rng.uniform(0.55, 0.85), rng.uniform(0.02, 0.05)
    soil = rng.uniform(0.6, 0.9) * height
    soil_r = bottom_r + (top_r - bottom_r) * soil / height - wall
    parts = [
        revolution([0.0, bottom_r, top_r], [0.0, 0.0, height]),
        torus(top_r, rng.uniform(0.02, 0.05), (0, 0, height)),
        cylinder(
            soil_r, 0.0, (0, 0, soil)
        ),  # a disk: both caps of a flat cylinder (soil weighted x2)
    ]
    if rng.uniform() < 0.5:  # a stem with a round crown
        stem = rng.uniform(0.2, 0.6)
        parts.append(cylinder(0.02, stem, (0, 0, soil), capped=False))
        crown = rng.uniform(0.1, 0.25)
        parts.append(
            revolution(
                crown * np.sin(np.linspace(0, np.pi, 9)),
                crown * (1 - np.cos(np.linspace(0, np.pi, 9))),
                (0, 0, soil + stem),
            )
        )
    return parts


def _bench(rng):
    length, depth = rng.uniform(1.0, 2.0), rng.uniform(0.3, 0.5)
    height, seat_t = rng.uniform(0.38, 0.5), rng.uniform(0.03, 0.08)
    parts = [box((length, depth, seat_t), (0, 0, height - seat_t / 2))]
    if rng.uniform() < 0.5:  # two panel legs
        for side in (-1, 1):
            inset = rng.uniform(0.05, 0.2)
            parts.append(
                box(
                    (0.04, depth, height - seat_t),
                    (side * (length / 2 - inset), 0, (height - seat_t) / 2),
                )
            )
    else:
        leg = rng.uniform(0.03, 0.06)
        parts += _legs(length / 2 - leg, depth / 2 - leg, height - seat_t, leg, rng.uniform() < 0.5)
    if rng.uniform() < 0.5:  # back rest
        back_h = rng.uniform(0.25, 0.5)
        parts.append(box((length, 0.04, back_h), (0, depth / 2, height + back_h / 2)))
    return parts


def _desk(rng):
    length, width = rng.uniform(0.9, 1.6), rng.uniform(0.5, 0.8)
    height, top_t = rng.uniform(0.68, 0.8), rng.uniform(0.025, 0.05)
    parts = [box((length, width, top_t), (0, 0, height - top_t / 2))]
    drawer_w = rng.uniform(0.3, 0.45)
    side = rng.choice([-1, 1])
    parts.append(
        box(
            (drawer_w, width * 0.95, height - top_t),
            (side * (length / 2 - drawer_w / 2), 0, (height - top_t) / 2),
        )
    )
    if rng.uniform() < 0.5:  # a second drawer block, else a panel leg
        parts.append(
            box(
                (drawer_w, width * 0.95, height - top_t),
                (-side * (length / 2 - drawer_w / 2), 0, (height - top_t) / 2),
            )
        )
    else:
        parts.append(
            box(
                (0.04, width * 0.95, height - top_t),
                (-side * (length / 2 - 0.02), 0, (height - top_t) / 2),
            )
        )
    if rng.uniform() < 0.5:  # modesty panel at the back
        parts.append(
            box((length * 0.9, 0.02, (height - top_t) * 0.5), (0, -width / 2 + 0.02, height * 0.6))
        )
    return parts


#: class name -> part builder; the index in this dict is the label
_BUILDERS: dict[str, Callable[[np.random.Generator], list[Part]]] = {
    "airplane": _airplane,
    "bench": _bench,
    "bookshelf": _bookshelf,
    "bottle": _bottle,
    "bowl": _bowl,
    "car": _car,
    "chair": _chair,
    "cone": _cone,
    "cup": _cup,
    "desk": _desk,
    "flower_pot": _flower_pot,
    "lamp": _lamp,
    "mug": _mug,
    "stool": _stool,
    "table": _table,
    "torus": _torus,
    "vase": _vase,
}
PROCEDURAL_CLASSES: tuple[str, ...] = tuple(_BUILDERS)

#: nuisance pose and proportion changes applied to every object after it is built
DEFAULT_MAX_YAW_DEG = 180.0
_MAX_TILT_RAD = np.deg2rad(5.0)
_AXIS_STRETCH = (0.85, 1.15)


def sample_shape(
    class_name: str,
    num_points: int,
    rng: np.random.Generator,
    max_yaw_deg: float = DEFAULT_MAX_YAW_DEG,
) -> np.ndarray:
    """Build one random object of ``class_name`` and sample ``num_points`` surface points.

    The object turns by a yaw drawn from U(-max_yaw_deg, max_yaw_deg) about the up axis
    (180: any heading; a small value gives a ModelNet40-like aligned set).

    Returns:
        (num_points, 3) float32, y-up, centred and scaled to the unit sphere.
    """
    if class_name not in _BUILDERS:
        raise KeyError(
            f"unknown procedural class {class_name!r}; known: {', '.join(PROCEDURAL_CLASSES)}"
        )
    parts = _BUILDERS[class_name](rng)
    areas = np.array([part.area for part in parts])
    counts = rng.multinomial(num_points, areas / areas.sum())
    cloud = np.concatenate(
        [part.points(int(n), rng) for part, n in zip(parts, counts, strict=True) if n > 0]
    )
    cloud = cloud * rng.uniform(*_AXIS_STRETCH, size=3)
    tilt = _rot_x(rng.uniform(-_MAX_TILT_RAD, _MAX_TILT_RAD)) @ _rot_y(
        rng.uniform(-_MAX_TILT_RAD, _MAX_TILT_RAD)
    )
    yaw = np.deg2rad(max_yaw_deg) * rng.uniform(-1.0, 1.0)
    cloud = cloud @ (_rot_z(yaw) @ tilt).T
    y_up = np.stack([cloud[:, 0], cloud[:, 2], -cloud[:, 1]], axis=1)
    return normalize_unit_sphere(y_up[rng.permutation(num_points)])


def make_procedural_dataset(
    n_per_class: int,
    num_points: int = 1024,
    seed: int = 0,
    classes: tuple[str, ...] | None = None,
    max_yaw_deg: float = DEFAULT_MAX_YAW_DEG,
) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n_per_class`` objects of every class.

    Args:
        n_per_class: objects per class (>= 1).
        num_points: surface points per object.
        seed: the whole set is a deterministic function of ``seed``.
        classes: subset of :data:`PROCEDURAL_CLASSES` (labels stay their index in the full list).
        max_yaw_deg: yaw range about the up axis (see :func:`sample_shape`).

    Returns:
        data (N, num_points, 3) float32 in the unit sphere, label (N,) int64, N = n_per_class x classes,
        ordered class by class.
    """
    if n_per_class < 1 or num_points < 1:
        raise ValueError(
            f"n_per_class and num_points must be >= 1, got {n_per_class}, {num_points}"
        )
    names = PROCEDURAL_CLASSES if classes is None else tuple(classes)
    data = np.empty((len(names) * n_per_class, num_points, 3), dtype=np.float32)
    labels = np.empty(len(names) * n_per_class, dtype=np.int64)
    row = 0
    for name in names:
        label = PROCEDURAL_CLASSES.index(name) if name in _BUILDERS else -1
        for index in range(n_per_class):
            rng = np.random.default_rng([seed, label, index])
            data[row] = sample_shape(name, num_points, rng, max_yaw_deg)
            labels[row] = label
            row += 1
    return data, labels


def prepare_procedural(
    out_dir: str | Path,
    n_train_per_class: int = 200,
    n_test_per_class: int = 50,
    num_points: int = 1024,
    seed: int = 0,
    max_yaw_deg: float = DEFAULT_MAX_YAW_DEG,
) -> Path:
    """Write the procedural set as ``ply_data_train0.h5`` / ``ply_data_test0.h5`` + ``shape_names.txt``.

    The layout is the one of ``modelnet40_ply_hdf5_2048`` (``data`` [N,P,3] float32, ``label``
    [N,1]), plus ``train_files.txt``/``test_files.txt``, so :func:`robokit.pointcloud.io.load_modelnet_h5`
    reads either. Train and test use disjoint seeds. Files are written atomically.

    Returns:
        ``out_dir`` as a Path.
    """
    from robokit.core.atomic import atomic_write_text
    from robokit.pointcloud.io import write_modelnet_h5

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    splits = {"train": (n_train_per_class, seed * 2), "test": (n_test_per_class, seed * 2 + 1)}
    for split, (count, split_seed) in splits.items():
        data, labels = make_procedural_dataset(
            count, num_points, seed=split_seed, max_yaw_deg=max_yaw_deg
        )
        write_modelnet_h5(out / f"ply_data_{split}0.h5", data, labels)
        atomic_write_text(out / f"{split}_files.txt", f"ply_data_{split}0.h5\n")
    atomic_write_text(out / "shape_names.txt", "\n".join(PROCEDURAL_CLASSES) + "\n")
    return out
