"""Thin Qt views over `WorkbenchState`: each panel draws one kind of data and keeps no state of its own
beyond its plot items (updated in place: `setData`, `setImage` with fixed levels)."""
from .arena import ArenaPanel
from .controls import ControlsPanel
from .curves import CurvesPanel, CurvesScroll
from .joint import JointPanel
from .mixer import MixerPanel
from .qtot import QtotPanel
from .qvalues import QValuesPanel
from .common import vertical_scroll
from .timeline import TimelinePanel

__all__ = ["ArenaPanel", "ControlsPanel", "CurvesPanel", "CurvesScroll", "JointPanel", "MixerPanel", "QtotPanel",
           "QValuesPanel", "TimelinePanel", "vertical_scroll"]
