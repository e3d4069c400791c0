"""Compare runs…: the window that overlays groups of runs (a sweep, directories of runs, single runs) with their
bands, and their table below.

Runs still training (a sweep under way) are followed: every few seconds the window looks at the runs' files
and, when one changed or a new run started, reads the comparison again.

It is a view over `models.sweeps.compare.compare_runs`: the grouping, the statistics and the table's text are that
function's; this module owns only the choice of sources and options, and the plot items, which it keeps per
group and updates in place (`setData`) when an option changes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (QAbstractItemView, QCheckBox, QComboBox, QFileDialog, QHBoxLayout, QHeaderView, QLabel,
                               QMainWindow, QPushButton, QSplitter, QTableWidget, QTableWidgetItem, QTabWidget,
                               QVBoxLayout, QWidget)

from models.files import metrics
from models.sweeps.compare import (BOOKKEEPING, METRICS, CompareError, Comparison, branch_step, compare_runs,
                                   default_metric, find_runs, same_branch_point)
from models.sweeps.trial import FINAL_EVAL

from .common import AGENT_COLOURS, LEGEND_BRUSH

# (what the selector shows, compare_runs' stat)
STAT_CHOICES = [("median and IQR", "median"), ("mean and 95% bootstrap CI", "mean"),
                ("IQM and 95% bootstrap CI", "iqm")]
BANDS = {"median": "IQR", "mean": "95% bootstrap CI", "iqm": "95% bootstrap CI"}
# (what the selector shows, the Group attribute holding that axis's band, axis label, units)
AXIS_CHOICES = [("env steps", "by_steps", "env steps", "steps"),
                ("wall-clock", "by_wall", "training wall time", "s")]
ERROR_STYLE = "color: #e05050;"
FOLLOW_MS = 10_000  # how often running runs are looked at: an evaluation comes every 20k env steps (~10 s)


def fingerprint(paths: list[Path]) -> tuple:
    """What changes when a run under `paths` writes a row, ends, or starts: its files' sizes and times
    (a few stat calls, so it can be asked often; reading the CSVs is what a change then costs)."""
    out = []
    try:
        runs = find_runs(paths)
    except (CompareError, OSError):
        return ()
    for r in runs:
        for name in (metrics.FILE, FINAL_EVAL):
            try:
                st = (r / name).stat()
                out.append((str(r), name, st.st_size, st.st_mtime_ns))
            except OSError:
                pass
    return tuple(out)


def group_colour(i: int) -> tuple:
    return AGENT_COLOURS[i % len(AGENT_COLOURS)]


def markdown_rows(text: str) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows, other lines) of `Comparison.table()`'s markdown: the table's text stays that function's."""
    table, notes = [], []
    for line in text.splitlines():
        s = line.strip()
        if s.startswith("|") and s.endswith("|"):
            if not set(s) <= set("|-: "):  # not the |---|---:| rule
                table.append([c.strip() for c in s[1:-1].split(" | ")])
        elif s:
            notes.append(s)
    return (table[0] if table else []), table[1:], notes


class GroupItems:
    """One group's plot items: the band's edges, the fill between them, and the centre line (in the legend)."""

    def __init__(self, plot: pg.PlotItem, colour: tuple, name: str):
        self.lo = pg.PlotCurveItem(pen=pg.mkPen(colour + (110,), width=1))
        self.hi = pg.PlotCurveItem(pen=pg.mkPen(colour + (110,), width=1))
        self.fill = pg.FillBetweenItem(self.lo, self.hi, brush=pg.mkBrush(colour + (60,)))
        self.centre = pg.PlotDataItem(pen=pg.mkPen(colour, width=2), name=name)
        for it in (self.fill, self.lo, self.hi, self.centre):
            plot.addItem(it)

    def set_band(self, band) -> None:
        """The band where every seed has a value (the rest is nan in `Band`); empty when there is none."""
        ok = np.isfinite(band.center)
        x = band.x[ok]
        self.lo.setData(x, band.lo[ok])
        self.hi.setData(x, band.hi[ok])
        self.centre.setData(x, band.center[ok])

    def remove(self, plot: pg.PlotItem) -> None:
        for it in (self.fill, self.lo, self.hi, self.centre):
            plot.removeItem(it)


class CompareWindow(QMainWindow):
    """Groups of runs over env steps or wall-clock time: metric, statistic and x axis chosen above the plot,
    `Comparison.table()` below it. `add_paths` takes run, sweep or run-holding directories; a directory that
    cannot be compared is a red line and leaves what is shown as it was."""

    def __init__(self, paths=None, parent=None, start_dir: str = "runs"):
        super().__init__(parent)
        self.setWindowTitle("Compare runs")
        self.resize(1200, 820)
        self.start_dir = start_dir
        self.paths: list[Path] = []
        self.comparison: Comparison | None = None
        self._cache: dict[tuple[str, str], Comparison] = {}  # (metric, stat) -> over self.paths
        self.groups: list[GroupItems] = []
        self._labels: list[str] = []
        self._seen: tuple = ()  # fingerprint() of the runs behind self._cache

        central = QWidget()
        lay = QVBoxLayout(central)
        bar = QHBoxLayout()
        self.add_button = QPushButton("Add runs\u2026")
        self.add_button.setToolTip("a sweep directory (sweep.toml), a directory of run directories, or one run")
        self.add_button.clicked.connect(self.ask_add)
        self.clear_button = QPushButton("Clear")
        self.clear_button.clicked.connect(self.clear)
        # not `self.metric`: a widget's metric() is QPaintDevice's
        self.metric_choice = QComboBox()
        self.metric_choice.addItems(list(METRICS))
        self.stat_choice = QComboBox()
        for text, stat in STAT_CHOICES:
            self.stat_choice.addItem(text, stat)
        self.axis_choice = QComboBox()
        for text, *rest in AXIS_CHOICES:
            self.axis_choice.addItem(text, rest)
        self.copy_button = QPushButton("Copy table")
        self.copy_button.setToolTip("the table as markdown")
        self.copy_button.clicked.connect(self.copy_table)
        self.follow = QCheckBox("follow running runs")
        self.follow.setToolTip(f"look at the runs every {FOLLOW_MS // 1000} s and redraw when one has new "
                               "evaluations or a new run has started (a sweep under way)")
        self.follow.setChecked(True)
        for w in (self.add_button, self.clear_button, self.follow):
            bar.addWidget(w)
        bar.addSpacing(16)
        for label, w in (("metric", self.metric_choice), ("statistic", self.stat_choice),
                         ("x axis", self.axis_choice)):
            bar.addWidget(QLabel(label))
            bar.addWidget(w)
        bar.addStretch(1)
        bar.addWidget(self.copy_button)
        lay.addLayout(bar)
        self.sources = QLabel("no runs yet: Add runs\u2026")
        self.sources.setWordWrap(True)
        self.sources.setTextInteractionFlags(Qt.TextSelectableByMouse)
        lay.addWidget(self.sources)
        self.message = QLabel("")
        self.message.setWordWrap(True)
        self.message.setStyleSheet(ERROR_STYLE)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.message.hide()
        lay.addWidget(self.message)

        split = QSplitter(Qt.Vertical)
        self.plot_widget = pg.PlotWidget()
        self.plot = self.plot_widget.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.getAxis("left").enableAutoSIPrefix(False)  # a rate or a return: plain numbers
        self.legend = self.plot.addLegend(offset=(5, 5), brush=LEGEND_BRUSH)
        split.addWidget(self.plot_widget)
        below = QWidget()
        bl = QVBoxLayout(below)
        bl.setContentsMargins(0, 0, 0, 0)
        self.title = QLabel("")
        bl.addWidget(self.title)
        # the group table, the aggregates of the final metric with their intervals, and the probability of
        # improvement between groups: each the text `Comparison` gives the CLI, as a table
        self.tabs = QTabWidget()
        self.table, self.aggregates, self.improvement = (self._new_table() for _ in range(3))
        for w, name in ((self.table, "groups"), (self.aggregates, "IQM, median, mean with 95% intervals"),
                        (self.improvement, "probability of improvement")):
            self.tabs.addTab(w, name)
        bl.addWidget(self.tabs, 1)
        self.notes = QLabel("")
        self.notes.setWordWrap(True)
        self.notes.setTextInteractionFlags(Qt.TextSelectableByMouse)
        bl.addWidget(self.notes)
        split.addWidget(below)
        split.setSizes([540, 280])
        lay.addWidget(split, 1)
        self.setCentralWidget(central)

        self.metric_choice.currentIndexChanged.connect(self.refresh)
        self.stat_choice.currentIndexChanged.connect(self.refresh)
        self.axis_choice.currentIndexChanged.connect(self.show_comparison)
        self.follow_timer = QTimer(self)
        self.follow_timer.setInterval(FOLLOW_MS)
        self.follow_timer.timeout.connect(self.reload_if_changed)
        self.follow.toggled.connect(self._follow_toggled)
        self._follow_toggled(self.follow.isChecked())
        if paths:
            self.add_paths(paths)

    # ---- sources ------------------------------------------------------------------------------------------
    def ask_add(self) -> None:
        start = str(self.paths[-1].parent) if self.paths else self.start_dir
        d = QFileDialog.getExistingDirectory(self, "Add runs: a sweep, a directory of runs, or a run", start)
        if d:
            self.add_paths([d])

    def add_paths(self, paths) -> bool:
        """Add run, sweep or run-holding directories; False (with the reason in red) when they cannot be
        compared, and then the window shows what it showed before."""
        new = [Path(p) for p in paths if Path(p) not in self.paths]
        if not new:
            return bool(self.paths)
        try:
            if not self.paths:  # the first runs choose the measure: a matrix game's return, a battle's win rate
                metric = default_metric(new)
                self.metric_choice.blockSignals(True)
                self.metric_choice.setCurrentText(metric)
                self.metric_choice.blockSignals(False)
            c = compare_runs(self.paths + new, metric=self.metric_choice.currentText(),
                             stat=self.stat_choice.currentData())
        except CompareError as e:
            self._error(str(e))
            return False
        self.paths += new
        self._seen = fingerprint(self.paths)
        self._cache = {(c.metric, c.stat): c}
        self.setWindowTitle("Compare runs \u2014 " + ", ".join(p.name for p in self.paths))
        self._error(None)
        self.comparison = c
        self.show_comparison()
        return True

    def _follow_toggled(self, on: bool) -> None:
        if on:
            self.follow_timer.start()
            self.reload_if_changed()
        else:
            self.follow_timer.stop()

    def reload_if_changed(self) -> bool:
        """Read the runs again when their files changed since they were read (True then); the options' cached
        comparisons are dropped, since each is over the old rows."""
        if not self.paths:
            return False
        now = fingerprint(self.paths)
        if now == self._seen:
            return False
        self._seen = now
        self._cache = {}
        self.refresh()
        return True

    def clear(self) -> None:
        self.paths, self._cache, self.comparison, self._seen = [], {}, None, ()
        self._rebuild([])
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        self.title.setText("")
        self.notes.setText("")
        self.sources.setText("no runs yet: Add runs\u2026")
        self.setWindowTitle("Compare runs")
        self._error(None)

    def _error(self, msg: str | None) -> None:
        self.message.setText(msg or "")
        self.message.setVisible(bool(msg))

    # ---- options ------------------------------------------------------------------------------------------
    def refresh(self) -> None:
        """The comparison for the chosen metric and statistic (read again only the first time each is chosen)."""
        if not self.paths:
            return
        key = (self.metric_choice.currentText(), self.stat_choice.currentData())
        if key not in self._cache:
            try:
                self._cache[key] = compare_runs(self.paths, metric=key[0], stat=key[1])
            except CompareError as e:
                self._error(str(e))
                return
        self._error(None)
        self.comparison = self._cache[key]
        self.show_comparison()

    def show_comparison(self) -> None:
        c = self.comparison
        if c is None:
            return
        names = [g.legend for g in c.groups]
        self.sources.setText(f"{sum(len(g.runs) for g in c.groups)} runs from: "
                             + "; ".join(str(p) for p in self.paths))
        labels = [g.label for g in c.groups]
        if labels != self._labels:
            self._rebuild(names)
            self._labels = labels
        attr, xlabel, units = self.axis_choice.currentData()
        for items, g, name in zip(self.groups, c.groups, names):
            items.set_band(getattr(g, attr))
            label = self.legend.getLabel(items.centre)
            if label is not None and label.text != name:
                label.setText(name)
        rate = c.metric == "test_win_rate"
        what = "greedy test win rate" if rate else c.metric
        band = BANDS[c.stat]
        self.plot.setTitle(f"{what}: {'IQM' if c.stat == 'iqm' else c.stat} and {band} over seeds", size="10pt")
        self.plot.setLabel("left", what)
        self.plot.setLabel("bottom", xlabel, units=units)
        self._show_events(c, attr == "by_steps")
        self.plot.enableAutoRange(x=True, y=not rate)
        if rate:  # a rate: always the whole of [0, 1]
            self.plot.setYRange(-0.02, 1.02, padding=0)
        self._show_table(c)

    def _show_events(self, c: Comparison, on_steps: bool) -> None:
        """Each group's live changes (and branch points) as dashed lines in its colour, on the env-step axis."""
        for line in getattr(self, "event_lines", []):
            self.plot.removeItem(line)
        self.event_lines = []
        if not on_steps:
            return
        labelled: list[float] = []  # where labels already are: one near another goes under it
        for i, g in enumerate(c.groups):
            marks = {}  # (env step, key, value) -> (label, tooltip): live changes, and each branch's own step
            for r in g.runs:
                for e in r.events:
                    if e.key not in BOOKKEEPING:  # how long a run may go, where it saves: no line
                        marks[(e.t_env, e.key, repr(e.new))] = (f"{e.key.rpartition('.')[2]}={e.new}",
                                                                f"{e.key} {e.old} -> {e.new} ({e.source})")
                t = branch_step(r.config.get("run.branch_of"))
                if t is not None and not any(m[0] == t for m in marks):
                    marks[(t, "", "")] = ("branch", f"branched from {r.config['run.branch_of']}")
            shown: set = set()
            for (t, key, value), (text, tip) in sorted(marks.items()):
                # the seeds of a branch group left a round apart: one label for them, a line for each
                near = any(k == (key, value) and same_branch_point(t0, t) for k, t0 in shown)
                shown.add(((key, value), t))
                k = 0 if near else sum(abs(t - x) <= 0.02 * max(t, x, 1) for x in labelled)
                if not near:
                    labelled.append(t)
                line = pg.InfiniteLine(pos=t, angle=90, movable=False,
                                       pen=pg.mkPen(group_colour(i), width=1, style=Qt.PenStyle.DashLine),
                                       label=None if near else text,
                                       labelOpts={"position": max(0.1, 0.95 - 0.07 * k), "color": group_colour(i)})
                line.setToolTip(f"{g.label}: {tip} at {t:,} env steps")
                self.plot.addItem(line)
                self.event_lines.append(line)

    def _rebuild(self, names: list[str]) -> None:
        """New items for a new set of groups (the sources changed); an option change reuses them."""
        for items in self.groups:
            self.legend.removeItem(items.centre)
            items.remove(self.plot)
        self.groups = [GroupItems(self.plot, group_colour(i), n) for i, n in enumerate(names)]
        self._labels = []

    @staticmethod
    def _new_table() -> QTableWidget:
        t = QTableWidget(0, 0)
        t.setEditTriggers(QAbstractItemView.NoEditTriggers)
        t.verticalHeader().hide()
        t.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        t.horizontalHeader().setStretchLastSection(True)
        return t

    @staticmethod
    def _fill(table: QTableWidget, text: str, colour_rows: bool = True) -> list[str]:
        """The markdown table of `text` into `table`; its other lines returned."""
        head, rows, notes = markdown_rows(text)
        table.setColumnCount(len(head))
        table.setHorizontalHeaderLabels(head)
        table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for k, cell in enumerate(row):
                item = QTableWidgetItem(cell)
                if k == 0:
                    if colour_rows:
                        item.setForeground(pg.mkColor(group_colour(r)))
                else:
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                table.setItem(r, k, item)
        return notes

    def _show_table(self, c: Comparison) -> None:
        notes = self._fill(self.table, c.table())
        self.title.setText(notes[0] if notes else "")
        self.notes.setText("\n".join(notes[1:]))
        agg = c.aggregate_table()
        self._fill(self.aggregates, agg.split("\n\nabsolute")[0])  # the final metric's block
        self._fill(self.improvement, c.improvement_table())

    def copy_table(self) -> None:
        if self.comparison is not None:
            c = self.comparison
            QGuiApplication.clipboard().setText("\n\n".join([c.table(), c.aggregate_table(), c.improvement_table()]))
