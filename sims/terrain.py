"""Terrain: pathing layers, heights and the ground path-finding tables of one map.

Grids are indexed `[x, y]` like SMAC's `pathing_grid`. Ground units find paths with
precomputed all-pairs tables over the ground-pathable cells (8-connected, no corner
cutting): `dist` (path length), `next_hop` (first cell of a shortest path) and `los`
(a straight walk between the two cells stays on pathable ground).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numba
import numpy as np

from .errors import DataError

TERRAIN_DIR = Path(__file__).parent / "terrain"
GROUND, CLIFF, AIR = 0, 1, 2
HEIGHT_CODES = {" ": 0.0, "L": 64 / 255, "1": 72 / 255, "2": 88 / 255, "3": 104 / 255, "H": 128 / 255}


@dataclass(frozen=True)
class Terrain:
    name: str
    size: tuple  # (map_x, map_y)
    pathable: np.ndarray  # uint8 [3, X, Y]: ground, cliff-walker, air layers
    height: np.ndarray  # float32 [X, Y], SC2 cliff level / 255
    cell_node: np.ndarray  # int32 [X*Y]: ground graph node of cell x*Y+y, or -1
    nearest_node: np.ndarray  # int32 [X*Y]: nearest ground node to every cell
    node_xy: np.ndarray  # int32 [C, 2]
    dist: np.ndarray  # float32 [C, C]
    next_hop: np.ndarray  # int32 [C, C]
    los: np.ndarray  # bool [C, C]
    ramps: tuple

    @property
    def ground(self) -> np.ndarray:
        return self.pathable[GROUND]


def _parse_grid(path, field, rows, size, codes):
    X, Y = size
    if not isinstance(rows, list) or len(rows) != Y:
        raise DataError(path, field, f"expected {Y} rows of {X} characters")
    out = np.zeros((X, Y), dtype=object)
    for i, row in enumerate(rows):
        if not isinstance(row, str) or len(row) != X:
            raise DataError(path, f"{field}[{i}]", f"expected a string of {X} characters, got {row!r}")
        y = Y - 1 - i  # first row is the top of the map
        for x, ch in enumerate(row):
            if ch not in codes:
                raise DataError(path, f"{field}[{i}]", f"unknown symbol {ch!r} at column {x}; known: {sorted(codes)}")
            out[x, y] = codes[ch]
    return out


@numba.njit(cache=True)
def _graph_tables(ground, node_xy, cell_node, Y):
    C = node_xy.shape[0]
    inf = np.float32(1e9)
    dist = np.full((C, C), inf, dtype=np.float32)
    X = ground.shape[0]
    nbr = np.full((C, 8), -1, dtype=np.int32)
    nbr_cost = np.zeros((C, 8), dtype=np.float32)
    dxs = (1, -1, 0, 0, 1, 1, -1, -1)
    dys = (0, 0, 1, -1, 1, -1, 1, -1)
    for c in range(C):
        dist[c, c] = 0.0
        x, y = node_xy[c, 0], node_xy[c, 1]
        for k in range(8):
            nx, ny = x + dxs[k], y + dys[k]
            if nx < 0 or ny < 0 or nx >= X or ny >= Y or not ground[nx, ny]:
                continue
            if k >= 4 and (not ground[nx, y] or not ground[x, ny]):
                continue  # no corner cutting
            n = cell_node[nx * Y + ny]
            cost = np.float32(1.0) if k < 4 else np.float32(1.4142135)
            nbr[c, k] = n
            nbr_cost[c, k] = cost
            dist[c, n] = cost
    for k in range(C):
        dk = dist[k]
        for i in range(C):
            dik = dist[i, k]
            if dik >= inf:
                continue
            di = dist[i]
            for j in range(C):
                v = dik + dk[j]
                if v < di[j]:
                    di[j] = v
    nh = np.full((C, C), -1, dtype=np.int32)
    for s in range(C):
        for t in range(C):
            if s == t:
                nh[s, t] = t
                continue
            best = inf
            for k in range(8):
                n = nbr[s, k]
                if n >= 0:
                    v = nbr_cost[s, k] + dist[n, t]
                    if v < best:
                        best = v
                        nh[s, t] = n
    return dist, nh


@numba.njit(cache=True)
def _los_table(ground, node_xy):
    # Conservative: the segment between cell centres, widened by +-0.35 sideways, stays on ground.
    C = node_xy.shape[0]
    X, Y = ground.shape
    los = np.zeros((C, C), dtype=np.bool_)
    for s in range(C):
        los[s, s] = True
        ax, ay = node_xy[s, 0] + 0.5, node_xy[s, 1] + 0.5
        for t in range(s + 1, C):
            bx, by = node_xy[t, 0] + 0.5, node_xy[t, 1] + 0.5
            dx, dy = bx - ax, by - ay
            L = np.sqrt(dx * dx + dy * dy)
            px, py = -dy / L * 0.35, dx / L * 0.35
            n = int(L / 0.2) + 1
            ok = True
            for i in range(n + 1):
                f = i / n
                cx, cy = ax + dx * f, ay + dy * f
                for o in (-1.0, 0.0, 1.0):
                    qx = int(cx + o * px)
                    qy = int(cy + o * py)
                    if qx < 0 or qy < 0 or qx >= X or qy >= Y or not ground[qx, qy]:
                        ok = False
                        break
                if not ok:
                    break
            los[s, t] = ok
            los[t, s] = ok
    return los


@lru_cache(maxsize=None)
def load_terrain(name: str) -> Terrain:
    """Terrain `name` from `sims/terrain/<name>.json`, with its path-finding tables (cached per process)."""
    path = TERRAIN_DIR / f"{name}.json"
    if not path.exists():
        known = sorted(p.stem for p in TERRAIN_DIR.glob("*.json"))
        raise DataError(path, "terrain", f"no terrain named {name!r}; known: {known}")
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(path, "<file>", f"not valid JSON: {e}") from None
    size = doc.get("size")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)):
        raise DataError(path, "size", f"expected [width, height] in cells, got {size!r}")
    X, Y = size
    codes = {".": GROUND, "#": -1, "c": CLIFF}
    grid = _parse_grid(path, "pathing", doc.get("pathing"), size, codes).astype(np.int8)
    heights = _parse_grid(path, "height", doc.get("height"), size, HEIGHT_CODES).astype(np.float32)
    pathable = np.zeros((3, X, Y), dtype=np.uint8)
    pathable[GROUND] = grid == GROUND
    pathable[CLIFF] = grid >= 0
    pathable[AIR] = 1
    ground = pathable[GROUND].astype(np.bool_)
    node_xy = np.argwhere(ground).astype(np.int32)
    if len(node_xy) == 0:
        raise DataError(path, "pathing", "no ground-pathable cell")
    cell_node = np.full(X * Y, -1, dtype=np.int32)
    cell_node[node_xy[:, 0] * Y + node_xy[:, 1]] = np.arange(len(node_xy), dtype=np.int32)
    # nearest ground node to every cell (for targets standing off the ground layer, e.g. on a cliff)
    cx, cy = np.meshgrid(np.arange(X), np.arange(Y), indexing="ij")
    d2 = (cx.reshape(-1, 1) - node_xy[:, 0]) ** 2 + (cy.reshape(-1, 1) - node_xy[:, 1]) ** 2
    nearest = np.argmin(d2, axis=1).astype(np.int32)
    dist, nh = _graph_tables(ground, node_xy, cell_node, Y)
    los = _los_table(ground, node_xy)
    ramps = tuple(doc.get("ramps", []))
    return Terrain(name, (X, Y), pathable, heights, cell_node, nearest, node_xy, dist, nh, los, ramps)
