"""Fork here…: the dialog that asks what to change at the replay's current step (agent, one of its available
actions or "greedy instead of recorded", how many continuations), and the panel that shows the comparison
table of a finished fork with a button to open the fork's own episode as a replay."""
from __future__ import annotations

import numpy as np
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QDialog, QDialogButtonBox, QFormLayout, QLabel, QPushButton, QSpinBox,
                               QTextBrowser, QVBoxLayout, QWidget)

from ..state import action_names

GREEDY = "greedy"


class ForkDialog(QDialog):
    """Choices for `models.play.fork.fork` at decision step `model.step` of a `ReplayModel`."""

    def __init__(self, model, selected_agent: int = 0, matrix_game: bool = False, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Fork here")
        ep = model.episode
        self.step = model.step
        self.avail = np.asarray(ep.arrays["avail"][self.step], bool)  # [n, A] at the decision of this step
        self.recorded = np.asarray(ep.arrays["actions"][self.step], int)
        self.greedy = np.asarray(ep.arrays["greedy"][self.step], int)
        self.names = action_names(ep.n_actions, matrix_game)
        lay = QVBoxLayout(self)
        lay.addWidget(QLabel(f"What if an agent had acted otherwise at step {self.step} of {model.length}?\n"
                             f"Both arms replay the battle to this step, then play on with the policy over the "
                             f"same random streams: one with the recorded action, one with yours."))
        f = QFormLayout()
        self.agent = QComboBox()
        self.agent.addItems([f"agent {i}" for i in range(ep.n_agents)])
        self.action = QComboBox()
        self.episodes = QSpinBox()
        self.episodes.setRange(1, 1000)
        self.episodes.setValue(20)
        f.addRow("agent", self.agent)
        f.addRow("action", self.action)
        f.addRow("continuations", self.episodes)
        lay.addLayout(f)
        buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        buttons.button(QDialogButtonBox.Ok).setText("Fork")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.agent.currentIndexChanged.connect(self._fill_actions)
        self.agent.setCurrentIndex(min(max(selected_agent, 0), ep.n_agents - 1))
        self._fill_actions(self.agent.currentIndex())

    def _fill_actions(self, i: int) -> None:
        """Agent i's available actions by name (the recorded and greedy ones marked), after "greedy instead of
        recorded"; preselected: greedy where it differs from the recorded action, else the first other action."""
        if i < 0:
            return
        self.action.clear()
        rec, gr = int(self.recorded[i]), int(self.greedy[i])
        self.action.addItem(f"greedy instead of recorded ({gr}: {self.names[gr]})", GREEDY)
        default = 0 if gr != rec else None
        for a in np.flatnonzero(self.avail[i]):
            a = int(a)
            tags = [t for t, hit in (("recorded", a == rec), ("greedy", a == gr)) if hit]
            self.action.addItem(f"{a}: {self.names[a]}" + (f"  ({', '.join(tags)})" if tags else ""), a)
            if default is None and a != rec:
                default = self.action.count() - 1
        self.action.setCurrentIndex(default or 0)

    def available_actions(self, i: int) -> list[int]:
        return [int(a) for a in np.flatnonzero(self.avail[i])]

    def choice(self) -> tuple[int, int | str, int]:
        """(agent, action index or "greedy", continuations)."""
        return self.agent.currentIndex(), self.action.currentData(), self.episodes.value()


class ForkPanel(QWidget):
    """The last fork's comparison table and "Open fork as replay"."""

    openForkClicked = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        lay = QVBoxLayout(self)
        self.table = QTextBrowser()
        self.table.setPlaceholderText("Fork here… on the timeline compares an agent's other action with the "
                                      "recorded one over N continuations each.")
        self.open = QPushButton("Open fork as replay")
        self.open.setEnabled(False)
        self.open.setToolTip("save the fork's first continuation beside the episode file and replay it")
        lay.addWidget(self.table, 1)
        lay.addWidget(self.open)
        self.open.clicked.connect(self.openForkClicked)
        self.text = ""

    def show_result(self, table_markdown: str) -> None:
        self.text = table_markdown
        self.table.setMarkdown(table_markdown)
        self.open.setEnabled(True)
