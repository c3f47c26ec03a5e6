"""A gated curriculum: corruption strength grows only when the student copes.

:class:`Curriculum` holds an increasing list of strengths in (0, 1]. After each
evaluation the caller reports the student's robust accuracy *at the current
level*; the level advances by one when that accuracy reaches ``threshold`` and at
least ``min_epochs_per_level`` reports were made at the level. It never goes
beyond the last level. INTACT and the plain-curriculum baseline share this class
(the only difference between them is whether the corruption is targeted by
saliency).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

DEFAULT_LEVELS = (0.2, 0.4, 0.6, 0.8, 1.0)


@dataclass
class Curriculum:
    """Strength schedule gated by robust accuracy.

    Args:
        levels: strictly increasing strengths in (0, 1]; ``strength`` is ``levels[level]``.
        threshold: robust accuracy (0..1) at the current level needed to advance.
        min_epochs_per_level: reports at a level before it may advance.
    """

    levels: Sequence[float] = DEFAULT_LEVELS
    threshold: float = 0.7
    min_epochs_per_level: int = 1
    level: int = 0
    reports_at_level: int = 0
    history: list[tuple[int, float, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        levels = [float(v) for v in self.levels]
        if not levels:
            raise ValueError("Curriculum needs at least one level")
        if any(not 0.0 < v <= 1.0 for v in levels) or any(
            b <= a for a, b in zip(levels[:-1], levels[1:], strict=True)
        ):
            raise ValueError(
                f"Curriculum levels must increase strictly within (0, 1], got {levels}"
            )
        if not 0.0 <= self.threshold <= 1.0:
            raise ValueError(f"Curriculum threshold must be in [0, 1], got {self.threshold}")
        self.levels = tuple(levels)
        self.level = min(max(int(self.level), 0), len(levels) - 1)

    @property
    def strength(self) -> float:
        """The corruption strength to train with now (0..1)."""
        return self.levels[self.level]

    @property
    def at_max(self) -> bool:
        return self.level == len(self.levels) - 1

    def report(self, robust_accuracy: float) -> bool:
        """Record robust accuracy at the current level; return True if the level advanced."""
        self.reports_at_level += 1
        advance = (
            not self.at_max
            and robust_accuracy >= self.threshold
            and self.reports_at_level >= self.min_epochs_per_level
        )
        self.history.append((self.level, float(robust_accuracy), advance))
        if advance:
            self.level += 1
            self.reports_at_level = 0
        return advance

    def state_dict(self) -> dict:
        return {
            "levels": list(self.levels),
            "threshold": self.threshold,
            "min_epochs_per_level": self.min_epochs_per_level,
            "level": self.level,
            "reports_at_level": self.reports_at_level,
            "history": [list(h) for h in self.history],
        }

    @classmethod
    def from_state_dict(cls, state: dict) -> Curriculum:
        history = [tuple(h) for h in state.get("history", [])]
        return cls(
            levels=state["levels"],
            threshold=state["threshold"],
            min_epochs_per_level=state["min_epochs_per_level"],
            level=state["level"],
            reports_at_level=state["reports_at_level"],
            history=history,
        )
