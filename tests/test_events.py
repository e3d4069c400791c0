"""models.core.events: the events a debugger looks for, one definition for the Replay markers and the breakpoints."""
import numpy as np
import pytest

from models.core.events import BREAK_KINDS, EventDetector, matches


def _state(health, shield, alive, pos):
    return {"health": np.array(health, float), "shield": np.array(shield, float), "alive": np.array(alive, bool),
            "pos": np.array(pos, float)}


def test_each_event_is_reported_once_on_the_state_it_first_shows():
    height = np.zeros((10, 10))
    height[5:, :] = 1.0  # the plateau: x >= 5
    det = EventDetector(2, height)
    pos = [[6, 1], [6, 2], [1, 1], [1, 2]]  # agents on the plateau, two enemies below
    assert det.reset(_state([10, 10, 5, 5], [4, 4, 0, 0], [1, 1, 1, 1], pos)) == []
    assert det.step(_state([10, 9, 5, 5], [4, 4, 0, 0], [1, 1, 1, 1], pos)) == ["an agent first damaged"]
    assert det.step(_state([10, 8, 5, 5], [4, 0, 0, 0], [1, 1, 1, 1], pos)) == ["agent 1: shields down"]
    up = [[6, 1], [6, 2], [6, 3], [1, 2]]
    assert det.step(_state([10, 0, 5, 5], [4, 0, 0, 0], [1, 0, 1, 1], up)) == ["agent 1 dies",
                                                                                 "first enemy on the plateau"]
    assert det.step(_state([10, 0, 5, 5], [4, 0, 0, 0], [1, 0, 1, 1], up)) == []  # nothing new
    assert det.step(_state([10, 0, 0, 0], [4, 0, 0, 0], [1, 0, 0, 0], up)) == ["battle won (every enemy dead)"]
    det.reset(_state([10, 10, 5, 5], [4, 4, 0, 0], [1, 1, 1, 1], pos))
    assert det.step(_state([0, 0, 5, 5], [0, 0, 0, 0], [0, 0, 1, 1], pos)) == [
        "an agent first damaged", "agent 0: shields down", "agent 0 dies", "agent 1: shields down", "agent 1 dies",
        "battle lost (every agent dead)"]


def test_breakpoint_kinds_match_the_marker_labels():
    assert matches("agent dies", "agent 1 dies") and not matches("agent dies", "agent 1: shields down")
    assert matches("win", "battle won (every enemy dead)") and matches("loss", "battle lost (every agent dead)")
    assert set(BREAK_KINDS) == {"first damage", "shields down", "agent dies", "enemy on the plateau", "win", "loss"}
    with pytest.raises(ValueError, match="breakpoint 'crash': expected one of first damage"):
        matches("crash", "x")


def test_first_gap_is_the_first_step_where_qtot_misses_the_return_by_more_than_the_threshold():
    from models.core.events import first_gap

    assert first_gap([1.0, 2.0, 5.0, 9.0], [1.5, 2.0, 1.0, 0.0], 3.0) == (2, 4.0)
    assert first_gap([1.0, 2.0], [1.0, 2.0], 0.5) is None
    assert first_gap([], [], 0.0) is None
