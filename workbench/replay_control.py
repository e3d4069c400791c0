"""Replay mode, a part of the main window: an episode file as the snapshot source (open, seek, play), forks and
export, episodes dropped on the window. A mixin of `workbench.app.MainWindow`."""
from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QDialog, QFileDialog

from .panels.fork import ForkDialog
from .replay import ReplayModel

EXPORT_PANELS = ["arena", "qvalues", "qtot"]
EXPORT_FPS = 8
FORK_SEED = 0
# the window's own torch work is tiny (a step's 70 x 70 joint-action table, a fork's small batches): a second
# intra-op thread only spins against the trainer and the painting; measured on 2 busy cores, one joint table took
# 23 ms with torch's default 2 threads and 0.2 ms with 1
GUI_TORCH_THREADS = 1


class ReplayControl:
    def ask_open_episode(self):
        path, _ = QFileDialog.getOpenFileName(self, "Open episode", self._episode_dir(), "Episode files (*.npz)")
        if path:
            self.open_episode(path)

    def _episode_dir(self) -> str:
        rp = self.state.replay
        if rp is not None and rp.path:
            return str(Path(rp.path).parent)
        if self.state.recorded_episodes:
            return str(Path(self.state.recorded_episodes[-1]).parent)
        return self.runs_dir

    def open_episode(self, path) -> bool:
        """Replay mode on an episode file. A file that cannot be used is one line in Messages and the status bar,
        and whatever the window showed stays."""
        if self.client.alive():
            self._log("stop the current run before opening an episode")
            return False
        from models.files.episode_file import EpisodeFileError, load_episode

        try:
            ep = load_episode(path)
        except EpisodeFileError as e:
            self._episode_error(str(e))
            return False
        return self.open_replay(ep)

    def open_replay(self, episode) -> bool:
        """Replay mode on an `Episode` (loaded, or a fork's continuation that has been saved)."""
        if not self._end_watch():
            self._log("stop the current run before opening an episode")
            return False
        if self.client.proc is not None and not self.client.exit_reported:
            self.refresh()  # a run that just ended reports its exit into its own state, not the replay's
        import torch

        torch.set_num_threads(GUI_TORCH_THREADS)
        try:
            model = ReplayModel(episode)
            model.breakpoints = self.breakpoints
            model.gap_above = self.gap_break
        except (ValueError, KeyError, IndexError) as e:  # EpisodeFileError is a ValueError
            self._episode_error(f"cannot replay {episode.name}: {e}")
            return False
        self._reset_views(keep_curves=True)
        st = self.state
        st.open_replay(model)
        self.arena.set_scenario(model.map_name, model.header.get("profile", "lotv"))
        self._configure_panels()
        self.controls.set_running(st.mode, False)
        self.timeline.show_model(model)
        self.timeline.show()
        self._show_replay_step()
        name = Path(model.path).name if model.path else "(unsaved episode)"
        self.setWindowTitle(f"QMIX Workbench \u2014 {name}")
        marks = ", ".join(f"{label} at {k}" for k, label in model.markers) or "none"
        self._log(f"replaying {model.path}: {model.algorithm} on {model.map_name}, {model.length} steps "
                  f"({model.header.get('source', '?')} episode, {st.t_env:,} env steps of training); "
                  f"markers: {marks}")
        return True

    def _episode_error(self, text: str):
        """A file or fork that cannot be used: red in the status bar until the next episode or run, and in
        Messages; the window keeps what it showed."""
        lines = text.strip().splitlines()
        self.state.alert = lines[0] if len(lines) == 1 else f"{lines[0]} ... {lines[-1]}"  # a bug: traceback's ends
        self._log(text)
        self.docks["Messages"].raise_()
        self._update_status()

    def open_last_recorded(self):
        path = self.last_recorded_episode()
        if path is None:
            self._log("no recorded episode yet: Watch mode writes each episode it plays to the run's episodes/ "
                      "directory")
            return
        self.open_episode(path)

    def last_recorded_episode(self) -> str | None:
        """The newest episode file Watch mode wrote that still exists (the ring deletes the oldest), else the
        newest file in the current run directory's episodes/."""
        for p in reversed(self.state.recorded_episodes):
            if Path(p).is_file():
                return p
        d = Path(self.state.run_dir) / "episodes" if self.state.run_dir else None
        files = sorted(d.glob("*.npz"), key=lambda f: f.stat().st_mtime) if d is not None and d.is_dir() else []
        return str(files[-1]) if files else None

    def _move_replay(self, how: str, *args) -> bool:
        """Move the replay (`ReplayModel.seek`, `step_by`, `next_marker`, ...) and show the step it lands on."""
        rp = self.state.replay
        if self.state.mode != "replay" or rp is None:
            return False
        changed = getattr(rp, how)(*args)
        if changed:
            self._show_replay_step()
        else:
            self.timeline.show_step(rp)  # a slider dragged past the ends snaps back
        return changed

    def seek(self, k: int) -> bool:
        return self._move_replay("seek", k)

    def toggle_play(self):
        rp = self.state.replay
        if self.state.mode != "replay" or rp is None:
            return
        rp.toggle()
        self._show_replay_step()

    def set_replay_speed(self, speed: float):
        rp = self.state.replay
        if rp is not None:
            rp.set_speed(speed)
            self.timeline.show_step(rp)

    def _show_replay_step(self):
        """Step `replay.step` on every panel: `Episode.snapshot` -> the state -> the same path live snapshots take."""
        rp = self.state.replay
        self.state.ingest_snapshot(rp.snapshot())
        self._show_snapshot()
        self.timeline.show_step(rp)
        self._update_status()

    def ask_fork(self):
        rp = self._replay_for("fork")
        if rp is None:
            return
        if rp.step >= rp.length:
            self._log(f"step {rp.step} is the episode's final state: no decision was taken there; step back to fork")
            return
        rp.pause()
        dlg = ForkDialog(rp, self.state.selected_agent, self.state.is_matrix_game, self)
        if dlg.exec() == QDialog.Accepted:
            self.run_fork(*dlg.choice())

    def _replay_for(self, what: str):
        if self.state.mode != "replay" or self.state.replay is None:
            self._log(f"open an episode first (File > Open episode\u2026) to {what} it")
            return None
        return self.state.replay

    def run_fork(self, agent: int, action, episodes: int = 20):
        """`models.play.fork.fork` at the replay's step, synchronously under a wait cursor (about a second at small N);
        the table goes to the Fork panel and Messages. A fork that cannot run is a message; None then."""
        rp = self._replay_for("fork")
        if rp is None:
            return None
        from models.play.fork import fork

        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            result = fork(rp.episode, rp.step, agent, action, episodes=episodes, seed=FORK_SEED)
        except Exception as e:  # noqa: BLE001 - a failed fork must leave the replay usable
            self._episode_error(f"fork failed: {self._one_line(e)}")
            return None
        finally:
            QApplication.restoreOverrideCursor()
        self.fork_result = result
        self._fork_parent = rp
        self.fork_view.show_result(result.table())
        self.docks["Fork"].show()
        self.docks["Fork"].raise_()
        self._log(result.table())
        return result

    @staticmethod
    def _one_line(exc: BaseException) -> str:
        """A user's mistake in one line (as the CLI prints it); a bug with its traceback."""
        import traceback

        from models.errors import user_message

        msg = user_message(exc)
        return msg if msg is not None else "".join(traceback.format_exception(exc))

    def open_fork_as_replay(self) -> bool:
        """Save the last fork's first continuation beside its episode file, then replay it."""
        r = self.fork_result
        if r is None:
            return False
        path = self._fork_parent.fork_path(r.step, r.agent, r.action)
        try:
            r.fork_episode.save(path)
        except OSError as e:
            self._episode_error(f"cannot save the fork's episode: {self._one_line(e)}")
            return False
        self._log(f"fork's first continuation saved to {path}")
        return self.open_replay(r.fork_episode)

    def ask_export(self):
        rp = self._replay_for("export")
        if rp is None:
            return
        rp.pause()
        stem = Path(rp.path).with_suffix("") if rp.path else Path(self.runs_dir) / "episode"
        out, chosen = QFileDialog.getSaveFileName(self, "Export episode", f"{stem}.gif",
                                                  "Animated GIF (*.gif);;MP4 video (*.mp4)")
        if out:
            self.export_to(out, "mp4" if "mp4" in chosen and not out.lower().endswith(".gif") else None)

    def export_to(self, out: str, fmt: str | None = None):
        """Draw the replayed episode file to a GIF or MP4 (`workbench.export`); (path, frames) or None."""
        rp = self._replay_for("export")
        if rp is None:
            return None
        fmt = fmt or ("mp4" if str(out).lower().endswith(".mp4") else "gif")
        if not str(out).lower().endswith("." + fmt):
            out = f"{out}.{fmt}"
        QApplication.setOverrideCursor(Qt.WaitCursor)
        try:
            from .export import export_episode  # headless drawing code: loaded when first asked for

            path, frames = export_episode(rp.path, out, fmt=fmt, panels=EXPORT_PANELS, fps=EXPORT_FPS)
        except Exception as e:  # noqa: BLE001 - a failed export must leave the replay usable
            self._episode_error(f"export failed: {self._one_line(e)}")
            return None
        finally:
            QApplication.restoreOverrideCursor()
        self._log(f"exported {frames} frames to {path}")
        return path, frames

    # drag and drop an episode file anywhere on the window
    @staticmethod
    def _dropped_episode(mime) -> str | None:
        for url in mime.urls() if mime.hasUrls() else []:
            if url.isLocalFile() and url.toLocalFile().lower().endswith(".npz"):
                return url.toLocalFile()
        return None

    def dragEnterEvent(self, event):
        if self._dropped_episode(event.mimeData()):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event):
        self.dragEnterEvent(event)

    def dropEvent(self, event):
        path = self._dropped_episode(event.mimeData())
        if path:
            event.acceptProposedAction()
            self.open_episode(path)

