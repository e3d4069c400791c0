"""Episode export: an episode file drawn frame by frame to a GIF or an MP4, headless (the `export` command and
the app's Export button).

Owns the exported frame — the pygame arena on the left, the app's own panel widgets (drawn offscreen, fed the
episode's snapshots as the window feeds them) stacked in columns on the right at the arena's height — and the two
writers. Frame i (i = 1..T) is state i, the result of step i-1 with that step's beams: a file has one frame per
executed step.
"""
from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # the CLI draws without a window; tests set it too
import numpy as np  # noqa: E402

from models.errors import WorkbenchError  # noqa: E402
from models.files.atomic import atomic_path  # noqa: E402

PANELS = ("arena", "qvalues", "qtot", "joint", "mixer")
FORMATS = ("gif", "mp4")
MAX_FPS = 60.0
ARENA_SCALE = 20  # pixels per map cell: 640 x 386 on 2c_vs_64zg, the app's own arena size
# the size each panel is laid out at before its column is scaled to the arena's height: the panels' text
# (10 pt titles, 8 pt legends) stays legible scaled by ~0.8, which the arena's scale is chosen to give
PANEL_WIDTH = 560
PANEL_HEIGHT = {"qvalues": 165, "qtot": 260, "joint": 420, "mixer": 400}  # qvalues: per agent
COLUMN_HEIGHT = 850  # more panels than this go into a second column rather than shrink further
MAX_ARENA_SCALE = 40
HUD_HEIGHT = 26  # the renderer's title bar
BACKGROUND = (12, 12, 16)
GIF_COLOURS = 255  # the 256th index is left free for "unchanged since the last frame" (transparent)
PALETTE_SAMPLES = 6  # frames the GIF's one palette is built from


class ExportError(WorkbenchError, ValueError):
    """An export cannot be done as asked (a panel, the frame rate, the format, the output path)."""


# ---- checking what was asked -------------------------------------------------------------------------------
def check_panels(panels) -> tuple[str, ...]:
    """The panel names in order, without repeats; a name that is not a panel is an error listing the valid ones."""
    if isinstance(panels, str):
        panels = panels.split(",")
    names = [str(p).strip().lower() for p in panels if str(p).strip()]
    bad = [p for p in names if p not in PANELS]
    if bad:
        raise ExportError(f"unknown panel {bad[0]!r}; panels: {', '.join(PANELS)}")
    if not names:
        raise ExportError(f"no panel to draw; panels: {', '.join(PANELS)}")
    return tuple(dict.fromkeys(names))


MIN_FPS = 0.1  # a frame every 10 s; slower frame delays overflow GIF's 16-bit centiseconds
MAX_GIF_FPS = 50  # GIF delays are whole centiseconds and viewers slow delays under 2 cs to 10 cs


def check_fps(fps, fmt: str = "mp4") -> float:
    top = MAX_GIF_FPS if str(fmt).lower().lstrip(".") == "gif" else MAX_FPS
    try:
        f = float(fps)
    except (TypeError, ValueError):
        raise ExportError(f"--fps: expected a number in [{MIN_FPS:g}, {top:g}] for {str(fmt).upper()}, "
                          f"got {fps!r}") from None
    if not (MIN_FPS <= f <= top):  # also refuses NaN
        raise ExportError(f"--fps: expected a number in [{MIN_FPS:g}, {top:g}] for {str(fmt).upper()}, got {fps!r}"
                          + (" (GIF viewers play faster frames at 10 fps)" if f > top and top == MAX_GIF_FPS else ""))
    return f


def check_output(out, fmt: str) -> tuple[Path, str]:
    fmt = str(fmt).lower().lstrip(".")
    if fmt not in FORMATS:
        raise ExportError(f"format {fmt!r}: expected one of {', '.join(FORMATS)}")
    out = Path(out)
    if out.is_dir():
        raise ExportError(f"{out} is a directory; expected a file name for the {fmt.upper()}")
    if out.suffix.lower() != f".{fmt}":
        raise ExportError(f"{out}: a {fmt.upper()} goes in a .{fmt} file (got {out.suffix or 'no suffix'})")
    parent = out.parent if str(out.parent) else Path(".")
    if not parent.is_dir():
        raise ExportError(f"output directory {str(parent)!r} does not exist (create it first)")
    return out, fmt


# ---- frames ---------------------------------------------------------------------------------------------------
def _qt_app():
    """The running QApplication, or a new one (offscreen when there is no display to draw on)."""
    global _APP
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance()
    if app is None:
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
        app = _APP = QApplication([])  # a module reference: a collected QApplication takes its widgets with it
    return app


_APP = None


def _frame_clock(widget, clock) -> None:
    """Make the panel's value ranges (`StableLevels`) count time in frames of the video, not wall-clock
    seconds: a range then narrows at the same frame on every export, after the same time a viewer sees."""
    from .panels.common import StableLevels

    for v in vars(widget).values():
        items = v.values() if isinstance(v, dict) else v if isinstance(v, (list, tuple)) else (v,)
        for x in items:
            if isinstance(x, StableLevels):
                x.clock = clock


class FrameComposer:
    """Draws the frames of one episode: `frame(i)` -> (H, W, 3) uint8, every frame the same even size.

    Holds the pygame renderer and, when panels besides the arena are asked for, the panel widgets (configured
    once, fed one snapshot per frame in order, as the window feeds them during playback).
    """

    def __init__(self, ep, panels=("arena",), fps: float = 8.0, scale: int | None = None):
        import sims
        from sims.render import Renderer
        from sims.world import World

        self.ep = ep
        self.panels = check_panels(panels)
        self.fps = check_fps(fps)
        self.T = ep.length
        self.algorithm = ep.header.get("algorithm", "")
        scen = sims.load_scenario(ep.header["map"], profile=ep.header.get("profile", "lotv"))
        side = [p for p in self.panels if p != "arena"]
        if "arena" in self.panels and "pos" not in ep.arrays:
            raise ExportError(f"{ep.name} holds no battle to draw; choose other panels than the arena")
        layout, col_h = _layout(side, ep.n_agents)
        if scale is None:
            # as tall as the panels need (within reason), so their columns shrink little when scaled to it
            rows = Renderer(scen, scale=1).size[1] - HUD_HEIGHT
            scale = ARENA_SCALE if not side else int(np.clip(round((0.85 * col_h - HUD_HEIGHT) / rows),
                                                              ARENA_SCALE, MAX_ARENA_SCALE))
        self.renderer = Renderer(scen, scale=int(scale))
        self.world = World(scen, 1, seed=0)
        self.view = None
        self.height = self.renderer.size[1]
        self.arena_width = self.renderer.size[0] if "arena" in self.panels else 0
        self.now = 0.0
        self.col_h = col_h
        self.columns = self._make_widgets(layout) if side else []
        self.col_width = int(round(PANEL_WIDTH * self.height / col_h)) if side else 0
        w = self.arena_width + self.col_width * len(self.columns)
        self.size = (w + w % 2, self.height + self.height % 2)  # H.264 in yuv420p needs even sides

    def _make_widgets(self, layout) -> list:
        from PySide6.QtCore import Qt

        from .panels import JointPanel, MixerPanel, QtotPanel, QValuesPanel

        _qt_app()
        n, A = self.ep.n_agents, self.ep.n_actions
        mixer = self.ep.header.get("mixer", "qmix")
        columns = []
        for col in layout:
            widgets = []
            for name, h in col:
                w = {"qvalues": QValuesPanel, "qtot": QtotPanel, "joint": JointPanel, "mixer": MixerPanel}[name]()
                if name == "qvalues":
                    w.configure(n, A, False)
                elif name == "mixer":
                    w.setup(mixer, n)
                # laid out and painted as if shown, but never put on a screen (a real display stays untouched)
                w.setAttribute(Qt.WA_DontShowOnScreen, True)
                w.resize(PANEL_WIDTH, h)
                w.show()
                _frame_clock(w, lambda: self.now)
                widgets.append((name, w, h, self._cursor(name, w)))
            columns.append(widgets)
        return columns

    @staticmethod
    def _cursor(name, widget):
        """A vertical line at the shown step on the plots over the episode's steps (the panels draw the whole
        recorded episode at once; the line says where the video is)."""
        import pyqtgraph as pg

        plot = {"qtot": lambda: widget.getPlotItem(), "mixer": lambda: widget.credit_plot}.get(name)
        if plot is None:
            return None
        line = pg.InfiniteLine(angle=90, movable=False, pen=pg.mkPen((240, 240, 240), width=1))
        plot().addItem(line, ignoreBounds=True)
        return line

    def title(self, i: int) -> str:
        a = self.ep.arrays
        if i == 0:
            return f"{self.algorithm}  step 0/{self.T}"
        u = ",".join(str(int(x)) for x in a["actions"][i - 1])
        return f"{self.algorithm}  step {i}/{self.T}  u=({u})  r {float(a['reward'][i - 1]):+.2f}"

    def arena(self, i: int) -> np.ndarray:
        from models.files.episode_file import DRAW_FIELDS
        from sims.world import WorldView

        a = self.ep.arrays
        # the snapshot's "world", read straight from the arrays (the rest of a snapshot costs a fifth of an
        # arena-only frame)
        world = {f: a[f][i] for f in DRAW_FIELDS}
        world["tick"] = int(a["tick"][i])
        if self.view is None:
            self.view = WorldView(self.world, world)
        else:
            self.view.update(world)
        return self.renderer.frame(self.view, 0, title=self.title(i))

    def side_columns(self, snap: dict, i: int) -> list[np.ndarray]:
        """The side panels fed state i and painted: one image per column, at the arena's height."""
        from PySide6.QtCore import QRect, QRectF, Qt
        from PySide6.QtGui import QColor, QImage, QPainter

        app = _qt_app()
        self.now = i / self.fps
        widgets = [x for col in self.columns for x in col]
        for name, w, _, cursor in widgets:
            if name == "qvalues":
                w.show_probe(snap["probe"], None)
            elif name == "qtot":
                w.show_trace(snap)
            elif name == "joint":
                w.show_probe(snap, False)
            else:
                w.show_snapshot(snap)
            if cursor is not None:
                cursor.setValue(i)
        app.processEvents()  # plot layouts (titles, axes) settle through posted events
        out = []
        for col in self.columns:
            img = QImage(PANEL_WIDTH, self.col_h, QImage.Format_RGB888)
            img.fill(QColor(*BACKGROUND))
            p = QPainter(img)
            try:
                y = 0
                for _, w, h, _ in col:
                    w.render(p, QRectF(0, y, PANEL_WIDTH, h), QRect(0, 0, PANEL_WIDTH, h))
                    y += h
            finally:
                p.end()  # a painter left open on the image crashes Qt when the image is freed
            # drawn at the size the panels were laid out for, then the bitmap scaled: painting straight at the
            # scaled size leaves the legends (drawn at a fixed pixel size) out of proportion
            img = img.scaled(self.col_width, self.height, Qt.IgnoreAspectRatio, Qt.SmoothTransformation)
            out.append(_qimage_rgb(img))
        return out

    def frame(self, i: int) -> np.ndarray:
        if not 0 <= i <= self.T:
            raise IndexError(f"frame {i} is outside the episode (states 0..{self.T})")
        parts = [self.arena(i)] if "arena" in self.panels else []
        if self.columns:
            parts.extend(self.side_columns(self.ep.snapshot(i), i))
        out = np.full((self.size[1], self.size[0], 3), BACKGROUND, dtype=np.uint8)
        x = 0
        for part in parts:
            h, w, _ = part.shape
            out[:h, x:x + w] = part
            x += w
        return out

    def close(self) -> None:
        for col in self.columns:
            for _, w, _, _ in col:
                w.close()
                w.deleteLater()
        self.columns = []


def _layout(side: list[str], n_agents: int) -> tuple[list, int]:
    """Side panels in columns of at most COLUMN_HEIGHT logical pixels, in the order asked: [[name, height], ...]
    per column, every column stretched to the tallest one's height (returned too)."""
    cols, h = [[]], 0
    for name in side:
        ph = PANEL_HEIGHT[name] * (n_agents if name == "qvalues" else 1)
        if cols[-1] and h + ph > COLUMN_HEIGHT:
            cols.append([])
            h = 0
        cols[-1].append([name, ph])
        h += ph
    if not side:
        return [], 0
    col_h = max(sum(ph for _, ph in c) for c in cols)
    for c in cols:
        k = col_h / sum(ph for _, ph in c)
        for item in c:
            item[1] = int(round(item[1] * k))
        c[-1][1] += col_h - sum(ph for _, ph in c)
    return cols, col_h


def _qimage_rgb(img) -> np.ndarray:
    w, h = img.width(), img.height()
    rows = np.frombuffer(img.constBits(), np.uint8).reshape(h, img.bytesPerLine())  # rows are 4-byte aligned
    return rows[:, :3 * w].reshape(h, w, 3).copy()


def _episode(path_or_episode):
    from models.files.episode_file import Episode, load_episode

    return path_or_episode if isinstance(path_or_episode, Episode) else load_episode(path_or_episode)


def render_frame(ep, i: int, panels=("arena",), scale: int | None = None) -> np.ndarray:
    """Frame i (state i) of an episode (an `Episode` or a file) as it appears in an export, (H, W, 3) uint8."""
    comp = FrameComposer(_episode(ep), panels, scale=scale)
    try:
        return comp.frame(i)
    finally:
        comp.close()


# ---- files ------------------------------------------------------------------------------------------------------
def export_episode(path_or_episode, out, fmt: str = "gif", panels=("arena",), fps: float = 8.0,
                   scale: int | None = None, progress=None) -> tuple[Path, int]:
    """Draw states 1..T of an episode to `out` (a GIF or an MP4, `fps` frames a second); returns (path, frames).

    The file is written beside `out` and renamed into place, so an interrupted export leaves no torn file.
    `scale`: the arena's pixels per map cell (default 20 alone, larger beside panels). `progress(i, T)` is called
    after each frame.
    """
    panels = check_panels(panels)
    fps = check_fps(fps, fmt)
    out, fmt = check_output(out, fmt)
    ep = _episode(path_or_episode)
    if ep.length < 1:
        raise ExportError(f"{ep.name} has no executed step to draw")
    comp = FrameComposer(ep, panels, fps, scale)
    try:
        def frames():
            for i in range(1, ep.length + 1):
                yield comp.frame(i)
                if progress is not None:
                    progress(i, ep.length)

        # the writers pick their container by the file's extension, so the temporary name keeps it
        with atomic_path(out, ext="." + fmt) as tmp:
            (_write_gif if fmt == "gif" else _write_mp4)(tmp, frames(), comp, fps)
    finally:
        comp.close()
    return out, ep.length


def _gif_palette(comp: FrameComposer):
    """One palette for the whole GIF, from a few frames spread over the episode: colours that stay
    put from frame to frame keep their index, so every frame after the first stores only what moved (per-frame
    palettes would re-index the static terrain and plots and defeat that), and nothing flickers."""
    from PIL import Image

    T = comp.ep.length
    picks = sorted({int(round(k)) for k in np.linspace(1, T, min(PALETTE_SAMPLES, T))})
    # a composer of its own: sampling out of order would move the export's panels' value ranges
    sampler = FrameComposer(comp.ep, comp.panels, comp.fps, comp.renderer.scale)
    try:
        sample = np.concatenate([sampler.frame(k) for k in picks], axis=0)
    finally:
        sampler.close()
    return Image.fromarray(sample).quantize(GIF_COLOURS, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def _write_gif(path: Path, frames, comp: FrameComposer, fps: float) -> None:
    # Pillow directly (imageio's GIF writer is this same Pillow call): it takes frames already mapped onto one
    # palette, and from a generator, so only 1-byte-per-pixel frames are held until the file is written
    from PIL import Image

    palette = _gif_palette(comp)
    # no dithering: the terrain and plots are flat colours, and dither noise would change pixels between frames
    quantised = (Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames)
    first = next(quantised)
    # optimize: each frame stores the box that changed, with its unchanged pixels made transparent (the free
    # palette index), which compresses to almost nothing; disposal 1 keeps the previous frame under it. Measured
    # on 400 steps (benchmarks/bench_export.py): arena 4.3 -> 3.2 MB, arena+qvalues+qtot 22 -> 5.1 MB.
    # Pillow merges a frame identical to the one before it into that one; none is, as the title counts steps.
    # GIF stores delays in hundredths of a second: 8 fps plays at 120 ms a frame, not 125.
    first.save(path, format="GIF", save_all=True, append_images=quantised, duration=1000.0 / fps, loop=0,
               optimize=True, disposal=1)


def _write_mp4(path: Path, frames, comp: FrameComposer, fps: float) -> None:
    import imageio.v2 as iio

    # quality 6 is x264's CRF 20 (imageio's default 5 is CRF 25); the frame's sides are already even, so a macro
    # block of 2 keeps imageio from resizing it to multiples of 16
    w = iio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", pixelformat="yuv420p",
                       macro_block_size=2, quality=6, ffmpeg_log_level="error")
    try:
        for f in frames:
            w.append_data(f)
    finally:
        w.close()
