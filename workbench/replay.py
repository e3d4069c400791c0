"""`ReplayModel`: Replay mode's own state — the episode being replayed, the current state index, playing or
not and at what speed — kept free of Qt so it can be tested without a window.

The window asks it for `snapshot()` (the episode's step as the same snapshot type live training and Watch mode
send) and feeds that to `WorkbenchState` and the panels; the timeline widget only shows it and asks it to move.
"""
from __future__ import annotations

from pathlib import Path

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0, 8.0)
# 1x = 4 environment steps per wall second: one env step is 8 game ticks (0.5 s of game time at Normal speed),
# so 1x plays the battle twice as fast as the game itself would, which is slow enough to follow a unit's moves
# and keeps a typical 2c_vs_64zg episode (~25-60 steps) to 6-15 seconds; 8x is 32 steps/s, about the refresh rate
STEPS_PER_S_AT_1X = 4.0


class ReplayModel:
    def __init__(self, episode):
        self.episode = episode
        self.step = 0  # a state index 0..T (state T is the one the episode ended in)
        self.playing = False
        self.breakpoints: tuple = ()  # event kinds playback stops at (models.core.events.BREAK_KINDS)
        self.gap_above: float | None = None  # playback stops where |Qtot - return| first goes above it
        self._gap: tuple | None = None  # (gap_above, its step), found once
        self.speed = 1.0
        self.markers: list[tuple[int, str]] = list(episode.markers())
        self._last_tick: float | None = None
        self._carry = 0.0  # fractional steps owed by playback (refresh ticks are not a multiple of a step)

    # ---- what is replayed ----------------------------------------------------------------------------------
    @property
    def length(self) -> int:
        """T, the executed steps; the timeline runs over states 0..T."""
        return self.episode.length

    @property
    def path(self) -> str | None:
        return self.episode.path

    @property
    def header(self) -> dict:
        return self.episode.header

    @property
    def map_name(self) -> str:
        return self.header["map"]

    @property
    def algorithm(self) -> str:
        return self.header.get("algorithm", "")

    @property
    def config(self) -> dict:
        return self.header.get("config") or {}

    def env_info(self) -> dict:
        """What `WorkbenchState.env_info` holds in live modes (the panels are configured from it)."""
        dims = self.header.get("dims") or {}
        return {"n_agents": int(dims.get("n_agents", self.episode.n_agents)),
                "n_actions": int(dims.get("n_actions", self.episode.n_actions)),
                "obs_shape": dims.get("obs_dim"), "state_shape": dims.get("state_dim")}

    def snapshot(self) -> dict:
        return self.episode.snapshot(self.step)

    def markers_at(self, k: int | None = None) -> list[str]:
        k = self.step if k is None else k
        return [label for s, label in self.markers if s == k]

    # ---- moving ----------------------------------------------------------------------------------------------
    def seek(self, k: int) -> bool:
        """Go to state k (clamped to 0..T); whether the step changed."""
        k = max(0, min(int(k), self.length))
        changed = k != self.step
        self.step = k
        return changed

    def step_by(self, d: int) -> bool:
        return self.seek(self.step + d)

    def home(self) -> bool:
        return self.seek(0)

    def end(self) -> bool:
        return self.seek(self.length)

    def next_marker(self) -> bool:
        later = [s for s, _ in self.markers if s > self.step]
        return self.seek(min(later)) if later else False

    def prev_marker(self) -> bool:
        earlier = [s for s, _ in self.markers if s < self.step]
        return self.seek(max(earlier)) if earlier else False

    # ---- playing ---------------------------------------------------------------------------------------------
    def set_speed(self, speed: float) -> None:
        if speed not in SPEEDS:
            raise ValueError(f"replay speed {speed}x is not one of {', '.join(f'{s:g}x' for s in SPEEDS)}")
        self.speed = float(speed)

    @property
    def steps_per_s(self) -> float:
        return STEPS_PER_S_AT_1X * self.speed

    def play(self) -> None:
        if self.step >= self.length:  # playing from the end starts over, as media players do
            self.step = 0
        self.playing = True
        self._last_tick = None
        self._carry = 0.0

    def pause(self) -> None:
        self.playing = False

    def toggle(self) -> bool:
        self.pause() if self.playing else self.play()
        return self.playing

    def advance(self, now: float) -> bool:
        """Playback: move on by the whole steps due since the last call at `now` (seconds, monotonic); whether
        the step changed. Stops at the last state. A slow refresh skips steps rather than slowing the clock."""
        if not self.playing:
            self._last_tick = None
            return False
        if self._last_tick is None:
            self._last_tick = now
            return False
        self._carry += max(now - self._last_tick, 0.0) * self.steps_per_s
        self._last_tick = now
        n = int(self._carry)
        if n == 0:
            return False
        self._carry -= n
        before = self.step
        changed = self.step_by(n)
        if self.breakpoints or self.gap_above is not None:  # stop on the first state passed that shows one
            from models.core.events import matches

            hit = [k for k, label in self.markers if before < k <= self.step
                   and any(matches(b, label) for b in self.breakpoints)]
            gap = self.gap_step()
            if gap is not None and before < gap <= self.step:
                hit.append(gap)
            if hit:
                self.step = min(hit)
                self.playing = False
                return True
        if self.step >= self.length:
            self.playing = False
        return changed

    def gap_step(self) -> int | None:
        """The step where |Qtot - return| first goes above `gap_above` (None: no such step, or no Qtot kept).
        Found once per threshold: playback asks at every tick, the episode does not change."""
        if self.gap_above is None:
            return None
        if self._gap is None or self._gap[0] != self.gap_above:
            from models.core.events import first_gap

            a = getattr(self.episode, "arrays", {})
            hit = (first_gap(a["qtot"], self.episode.return_to_go(), self.gap_above)
                   if "qtot" in a and self.length else None)
            self._gap = (self.gap_above, None if hit is None else hit[0])
        return self._gap[1]

    # ---- names -----------------------------------------------------------------------------------------------
    def status(self) -> str:
        return f"replay  step {self.step}/{self.length}  {self.path or '(unsaved episode)'}"

    def fork_path(self, step: int, agent: int, action: int | str) -> Path:
        """Where a fork's continuation is saved: beside the original, `<stem>_fork_s<step>_a<agent>_<action>.npz`."""
        p = Path(self.path) if self.path else Path.cwd() / "episode.npz"
        return p.with_name(f"{p.stem}_fork_s{step}_a{agent}_{action}.npz")
