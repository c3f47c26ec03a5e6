"""A gated curriculum: corruption strength grows only when the student copes.

:class:`Curriculum` holds an increasing list of strengths in (0, 1]. After each
evaluation the caller reports the student's robust accuracy *at the current
level*; the level advances by one when that accuracy reaches ``threshold`` and at
least ``min_epochs_per_level`` reports were made at the level. It never goes
beyond the last level. INTACT and the plain-curriculum baseline share this class
(the only difference between them is whether the corruption is targeted by
saliency).

Two gates (``gate``):

* ``"absolute"`` (the default): advance when the robust score reaches ``threshold``. The INTACT
  paper's stored copies give no gate and no official code was found (docs/intact.md), so 0.7 is
  robokit's value, kept as the default for every trainer.
* ``"relative"`` (robokit's deviation, for weak students such as a small detector whose *clean*
  score stays below ``threshold``): advance when ``robust / clean >= threshold``, both measured
  on the same held-out data at the same report, and only once ``clean >= min_clean`` (0.1 by
  default): below it the ratio of two near-zero scores is noise (a detector at 0.0007 clean and
  0.02 robust BEV AP "keeps" 29x its clean score; docs/sim_lidar.md). It asks "does the student
  keep ``threshold`` of what it can do clean", not "is it good".
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

DEFAULT_LEVELS = (0.2, 0.4, 0.6, 0.8, 1.0)
GATES = ("absolute", "relative")


@dataclass
class Curriculum:
    """Strength schedule gated by robust accuracy.

    Args:
        levels: strictly increasing strengths in (0, 1]; ``strength`` is ``levels[level]``.
        threshold: robust accuracy (0..1) at the current level needed to advance (``gate="absolute"``),
            or the robust / clean ratio needed (``gate="relative"``).
        min_epochs_per_level: reports at a level before it may advance.
        gate: ``"absolute"`` or ``"relative"`` (see the module docstring).
        min_clean: the relative gate's floor on the clean score (below it: no advance).
    """

    levels: Sequence[float] = DEFAULT_LEVELS
    threshold: float = 0.7
    min_epochs_per_level: int = 1
    level: int = 0
    reports_at_level: int = 0
    history: list[tuple[int, float, bool]] = field(default_factory=list)
    """(level, gated value, advanced) per report: the robust score, or robust / clean."""
    gate: Literal["absolute", "relative"] = "absolute"
    min_clean: float = 0.1

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
        if not 0.0 <= self.min_clean <= 1.0:
            raise ValueError(f"Curriculum min_clean must be in [0, 1], got {self.min_clean}")
        if self.gate not in GATES:
            raise ValueError(f"Curriculum gate must be one of {GATES}, got {self.gate!r}")
        self.levels = tuple(levels)
        self.level = min(max(int(self.level), 0), len(levels) - 1)

    @property
    def strength(self) -> float:
        """The corruption strength to train with now (0..1)."""
        return self.levels[self.level]

    @property
    def at_max(self) -> bool:
        return self.level == len(self.levels) - 1

    def gated_value(self, robust_accuracy: float, clean_accuracy: float | None = None) -> float:
        """What the gate compares with ``threshold``: the robust score, or robust / clean (0 below ``min_clean``)."""
        if self.gate == "absolute":
            return float(robust_accuracy)
        if clean_accuracy is None:
            raise ValueError("Curriculum gate 'relative' needs the clean score of the same report")
        if clean_accuracy <= 0 or clean_accuracy < self.min_clean:
            return 0.0
        return float(robust_accuracy) / float(clean_accuracy)

    def report(self, robust_accuracy: float, clean_accuracy: float | None = None) -> bool:
        """Record robust (and, for the relative gate, clean) accuracy at the current level; True if it advanced."""
        value = self.gated_value(robust_accuracy, clean_accuracy)
        self.reports_at_level += 1
        advance = (
            not self.at_max
            and value >= self.threshold
            and self.reports_at_level >= self.min_epochs_per_level
        )
        self.history.append((self.level, value, advance))
        if advance:
            self.level += 1
            self.reports_at_level = 0
        return advance

    def state_dict(self) -> dict:
        return {
            "levels": list(self.levels),
            "threshold": self.threshold,
            "min_epochs_per_level": self.min_epochs_per_level,
            "gate": self.gate,
            "min_clean": self.min_clean,
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
            gate=state.get("gate", "absolute"),  # checkpoints written before the gate option
            min_clean=state.get("min_clean", 0.1),
        )
