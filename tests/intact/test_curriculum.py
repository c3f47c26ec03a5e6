"""The gated curriculum: advances only past the threshold, never beyond its last level."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from robokit.intact.curriculum import Curriculum


def test_advances_only_when_threshold_is_reached():
    curriculum = Curriculum(levels=(0.25, 0.5, 1.0), threshold=0.7)
    assert curriculum.strength == 0.25
    assert not curriculum.report(0.69)
    assert curriculum.level == 0
    assert curriculum.report(0.70)
    assert (curriculum.level, curriculum.strength) == (1, 0.5)
    assert curriculum.report(0.9)
    assert curriculum.at_max and curriculum.strength == 1.0
    assert not curriculum.report(1.0)  # already at the top
    assert curriculum.level == 2
    assert [h[2] for h in curriculum.history] == [False, True, True, False]


def test_min_epochs_per_level_delays_advancing():
    curriculum = Curriculum(levels=(0.5, 1.0), threshold=0.5, min_epochs_per_level=3)
    assert [curriculum.report(0.9) for _ in range(3)] == [False, False, True]
    assert curriculum.level == 1


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.0), max_size=40), st.floats(0.0, 1.0), st.integers(1, 6))
def test_never_exceeds_its_maximum_and_never_goes_back(accuracies, threshold, num_levels):
    levels = tuple((i + 1) / num_levels for i in range(num_levels))
    curriculum = Curriculum(levels=levels, threshold=threshold)
    previous = 0
    for accuracy in accuracies:
        advanced = curriculum.report(accuracy)
        assert previous <= curriculum.level <= num_levels - 1
        assert advanced == (curriculum.level == previous + 1)
        assert not advanced or accuracy >= threshold
        assert curriculum.strength <= 1.0
        previous = curriculum.level


def test_state_round_trip():
    curriculum = Curriculum(threshold=0.6)
    for accuracy in (0.5, 0.7, 0.8):
        curriculum.report(accuracy)
    restored = Curriculum.from_state_dict(curriculum.state_dict())
    assert restored.level == curriculum.level == 2
    assert restored.history == curriculum.history
    assert restored.report(0.9) == curriculum.report(0.9)


@pytest.mark.parametrize("levels", [(), (0.5, 0.5), (0.0, 1.0), (0.5, 1.5), (0.8, 0.4)])
def test_rejects_bad_levels(levels):
    with pytest.raises(ValueError, match="Curriculum"):
        Curriculum(levels=levels)


def test_relative_gate_reads_robust_over_clean_by_hand():
    """robokit's deviation for weak students: advance when robust / clean >= threshold."""
    curriculum = Curriculum(levels=(0.2, 0.6, 1.0), threshold=0.7, gate="relative")
    # a detector at 0.30 clean, 0.20 robust keeps 0.667 of its clean score: the absolute gate would
    # need 0.7 robust; the relative one needs 0.21 here
    assert not curriculum.report(0.20, clean_accuracy=0.30)
    assert curriculum.history[-1] == (0, pytest.approx(2 / 3), False)
    assert curriculum.report(0.21, clean_accuracy=0.30)  # 0.21 / 0.30 = 0.7 exactly
    assert curriculum.level == 1
    assert not curriculum.report(0.0, clean_accuracy=0.0)  # nothing detected clean: never advances
    assert not curriculum.report(0.02, clean_accuracy=0.0007)  # ratio 29, but clean < min_clean 0.1: noise
    assert curriculum.history[-1] == (1, 0.0, False)
    assert curriculum.report(0.5, clean_accuracy=0.4)  # robust above clean (few objects): ratio 1.25
    assert curriculum.at_max
    assert [h[2] for h in curriculum.history] == [False, True, False, False, True]


def test_absolute_gate_is_the_default_and_ignores_the_clean_score():
    curriculum = Curriculum(threshold=0.7)
    assert curriculum.gate == "absolute"
    assert not curriculum.report(0.3, clean_accuracy=0.3)  # ratio 1, but 0.3 < 0.7
    assert curriculum.report(0.7, clean_accuracy=1.0)
    assert curriculum.level == 1


def test_relative_gate_needs_the_clean_score_and_round_trips():
    curriculum = Curriculum(threshold=0.5, gate="relative")
    with pytest.raises(ValueError, match="clean score"):
        curriculum.report(0.4)
    curriculum.report(0.4, clean_accuracy=0.5)
    restored = Curriculum.from_state_dict(curriculum.state_dict())
    assert (restored.gate, restored.level, restored.history) == ("relative", 1, curriculum.history)
    assert Curriculum(gate="relative", threshold=0.5, min_clean=0.0).report(0.01, clean_accuracy=0.02)
    old = curriculum.state_dict()
    del old["gate"]  # a checkpoint written before the option: the absolute gate
    assert Curriculum.from_state_dict(old).gate == "absolute"
    with pytest.raises(ValueError, match="Curriculum gate"):
        Curriculum(gate="ratio")
