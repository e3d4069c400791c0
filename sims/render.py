"""pygame renderer: draws one battle of a `World` into an RGB array, headless.

Terrain heights, ramps and the cliff band from the scenario's terrain; units as tinted icons
from `assets/icons` with shield and health bars; the last env step's attacks as beams
(the Colossus' perpendicular splash line included).
"""
from __future__ import annotations

import os
from importlib import resources

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import numpy as np  # noqa: E402
import pygame  # noqa: E402

from .kernel import W_HEAL, W_LINE  # noqa: E402
from .scenario import Scenario  # noqa: E402
from .units import COL  # noqa: E402

TEAM_COLOURS = [(80, 170, 255), (235, 80, 60)]
HEIGHT_COLOURS = {  # SC2 cliff level -> colour
    0: (18, 18, 22), 64: (74, 84, 60), 72: (92, 100, 70), 88: (112, 118, 82), 104: (130, 134, 92), 128: (150, 152, 104)}
CLIFF_COLOUR = (60, 48, 36)
BLOCKED_COLOUR = (40, 44, 38)


def _icons_dir():
    try:
        return resources.files("assets") / "icons"
    except ModuleNotFoundError:  # running from a checkout without the package installed
        return os.path.join(os.path.dirname(__file__), "..", "assets", "icons")


class Renderer:
    def __init__(self, scenario: Scenario, scale: int = 20, hud: bool = True):
        pygame.font.init()  # drawing needs no display; `show()` opens one on demand
        self.scenario = scenario
        self.scale = scale
        self.hud = hud
        t = scenario.terrain
        X, Y = t.size
        used = np.argwhere(t.height > 0)
        # crop to the part of the map that has terrain, one cell of margin
        self.y0 = max(int(used[:, 1].min()) - 1, 0)
        self.y1 = min(int(used[:, 1].max()) + 2, Y)
        self.x0, self.x1 = 0, X
        self.hud_h = 26 if hud else 0
        self.size = ((self.x1 - self.x0) * scale, (self.y1 - self.y0) * scale + self.hud_h)
        self.surface = pygame.Surface(self.size)
        self.terrain = self._draw_terrain()
        self.font = pygame.font.Font(None, 22)
        self.small = pygame.font.Font(None, 16)
        self._icons: dict = {}
        self._window = None

    # map units -> pixels
    def to_px(self, x, y):
        # Python floats: pygame refuses numpy float32 coordinates (episode files store positions as float32)
        s = self.scale
        return float((x - self.x0) * s), float(self.hud_h + (self.y1 - y) * s)

    def to_map(self, px, py):
        """Pixel of a frame -> map coordinates (for clicks on a shown frame)."""
        s = self.scale
        return px / s + self.x0, self.y1 - (py - self.hud_h) / s

    def _draw_terrain(self):
        t = self.scenario.terrain
        s = self.scale
        surf = pygame.Surface(self.size)
        surf.fill((10, 10, 14))
        levels = np.rint(t.height * 255).astype(int)
        for x in range(self.x0, self.x1):
            for y in range(self.y0, self.y1):
                px, py = self.to_px(x, y + 1)
                rect = pygame.Rect(int(px), int(py), s, s)
                lvl = levels[x, y]
                if t.pathable[1, x, y] and not t.pathable[0, x, y]:
                    pygame.draw.rect(surf, CLIFF_COLOUR, rect)
                    pygame.draw.line(surf, (90, 72, 52), rect.topleft, rect.bottomright, 2)
                elif lvl == 0:
                    pygame.draw.rect(surf, HEIGHT_COLOURS[0], rect)
                elif not t.pathable[0, x, y]:
                    base = HEIGHT_COLOURS.get(lvl, HEIGHT_COLOURS[64])
                    pygame.draw.rect(surf, tuple(int(c * 0.55) for c in base), rect)
                else:
                    pygame.draw.rect(surf, HEIGHT_COLOURS.get(lvl, HEIGHT_COLOURS[64]), rect)
                    pygame.draw.rect(surf, (0, 0, 0), rect, 1)
        return surf

    def _icon(self, name, team, diameter_px):
        key = (name, team, diameter_px)
        if key not in self._icons:
            path = os.path.join(str(_icons_dir()), f"{name}.png")
            size = max(int(diameter_px * 1.25), 6)
            if os.path.exists(path):
                img = pygame.image.load(path)
                img = pygame.transform.smoothscale(img, (size, size))
                tint = pygame.Surface(img.get_size(), pygame.SRCALPHA)
                tint.fill(TEAM_COLOURS[team] + (255,))
                img.blit(tint, (0, 0), special_flags=pygame.BLEND_RGBA_MULT)
            else:
                img = pygame.Surface((size, size), pygame.SRCALPHA)
                pygame.draw.circle(img, TEAM_COLOURS[team], (size // 2, size // 2), size // 2)
            self._icons[key] = img
        return self._icons[key]

    def frame(self, world, env_index: int = 0, step_ticks: int = 8, title: str | None = None,
              highlight: int | None = None) -> np.ndarray:
        """The battle `env_index` of `world` as an (H, W, 3) uint8 array."""
        b = env_index
        surf = self.surface
        surf.blit(self.terrain, (0, 0))
        s = self.scale
        pos, alive = world.pos[b], world.alive[b]
        # small ground units first, then big ones (zerglings walk under colossi), air units on top
        order = np.lexsort((world.radius, world.ttab[world.utype, COL["plane"]]))
        # units
        for u in order:
            if not alive[u]:
                continue
            t = world.types[world.utype[u]]
            cx, cy = self.to_px(*pos[u])
            r = t.radius * s
            img = self._icon(t.name, int(world.team[u]), int(2 * r))
            surf.blit(img, img.get_rect(center=(int(cx), int(cy))))
            if highlight is not None and u == highlight:
                pygame.draw.circle(surf, (255, 230, 80), (int(cx), int(cy)), int(r + 4), 2)
        # attacks of the last env step
        recent = world.fire_tick[b] >= world.tick[b] - step_ticks
        for u in np.flatnonzero(recent & alive):
            ax, ay = self.to_px(*pos[u])
            tx_m, ty_m = world.fire_point[b, u]
            tx, ty = self.to_px(tx_m, ty_m)
            kind = world.wkind[u]
            if kind == W_LINE:
                pygame.draw.line(surf, (255, 150, 40), (ax, ay), (tx, ty), 2)
                d = np.array([tx_m - pos[u, 0], ty_m - pos[u, 1]])
                d /= max(np.linalg.norm(d), 1e-9)
                half = world.ttab[world.utype[u], COL["line_half_len"]]
                p1 = self.to_px(tx_m - d[1] * half, ty_m + d[0] * half)
                p2 = self.to_px(tx_m + d[1] * half, ty_m - d[0] * half)
                pygame.draw.line(surf, (255, 220, 120), p1, p2, 4)
            elif kind == W_HEAL:
                pygame.draw.line(surf, (120, 255, 140), (ax, ay), (tx, ty), 2)
            else:
                col = (255, 90, 70) if world.team[u] == 1 else (140, 200, 255)
                pygame.draw.line(surf, col, (ax, ay), (tx, ty), 1)
        # shield and health bars
        for u in np.flatnonzero(alive):
            t = world.types[world.utype[u]]
            cx, cy = self.to_px(*pos[u])
            w = max(int(2 * t.radius * s), 8)
            x0 = int(cx - w / 2)
            y0 = int(cy - t.radius * s) - 6
            hf = world.health[b, u] / world.max_health[u]
            pygame.draw.rect(surf, (30, 30, 30), (x0, y0, w, 3))
            pygame.draw.rect(surf, (int(255 * (1 - hf)), int(220 * hf), 40), (x0, y0, max(int(w * hf), 1), 3))
            if world.max_shield[u] > 0:
                sf = world.shield[b, u] / world.max_shield[u]
                pygame.draw.rect(surf, (30, 30, 30), (x0, y0 - 4, w, 3))
                pygame.draw.rect(surf, (90, 200, 255), (x0, y0 - 4, int(w * sf), 3))
        if self.hud:
            pygame.draw.rect(surf, (22, 24, 30), (0, 0, self.size[0], self.hud_h))
            n = world.n
            text = title or self.scenario.name
            info = (f"{text}   step {world.tick[b] // step_ticks}   "
                    f"allies {int(alive[:n].sum())}/{n}   enemies {int(alive[n:].sum())}/{world.U - n}")
            surf.blit(self.font.render(info, True, (230, 230, 230)), (8, 5))
        # row-major RGB in one copy (surfarray is column-major and would need a second)
        w, h = surf.get_size()
        return np.frombuffer(bytearray(pygame.image.tobytes(surf, "RGB")), np.uint8).reshape(h, w, 3)

    def show(self, frame: np.ndarray) -> None:
        """Show a frame in a pygame window (does nothing without a display)."""
        if os.environ.get("SDL_VIDEODRIVER") == "dummy":
            return
        if self._window is None:
            pygame.display.init()
            self._window = pygame.display.set_mode(frame.shape[1::-1])
        pygame.surfarray.blit_array(self._window, np.transpose(frame, (1, 0, 2)))
        pygame.display.flip()
        pygame.event.pump()

    def close(self) -> None:
        if self._window is not None:
            pygame.display.quit()
            self._window = None

    def save_png(self, frame: np.ndarray, path) -> None:
        surf = pygame.surfarray.make_surface(np.transpose(frame, (1, 0, 2)))
        pygame.image.save(surf, str(path))
