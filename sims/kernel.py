"""The compiled tick loop: everything that happens to B battles during one SC2 game loop.

numba-compiled because the per-tick work (target choice, path following, line splash,
pairwise push-apart) is branchy and per-unit; numpy versions of it spent their time in
temporaries (see docs/benchmarks.md). The caller owns all arrays; this module owns no state.
Random weapon delays come from a counter-based hash of (episode key, tick, unit), so results
do not depend on the order in which battles or units are processed.
"""
from __future__ import annotations

import numba
import numpy as np
from numba import prange

from .units import COL

# order kinds
IDLE, MOVE, ATTACK, AMOVE = 0, 1, 2, 3
# scripted AI kinds
AI_NONE, AI_ATTACK_GROUP, AI_ATTACK_MOVE = 0, 1, 2
# weapon kinds (units.WEAPON_KINDS)
W_NONE, W_DIRECT, W_LINE, W_HEAL = 0, 1, 2, 3

C_HEALTH = COL["health"]
C_ARMOR = COL["armor"]
C_SHIELD = COL["shield"]
C_SHIELD_DELAY = COL["shield_delay"]
C_SHIELD_RATE = COL["shield_rate"]
C_REGEN = COL["health_regen"]
C_SPEED = COL["speed"]
C_RADIUS = COL["radius"]
C_ATTR = COL["attr"]
C_PLANE = COL["plane"]
C_MOVER = COL["mover"]
C_COLLIDE = COL["collide"]
C_WKIND = COL["wkind"]
C_DAMAGE = COL["damage"]
C_BONUS_ATTR = COL["bonus_attr"]
C_BONUS_DMG = COL["bonus_damage"]
C_HITS = COL["hits"]
C_RANGE = COL["range"]
C_PERIOD = COL["period"]
C_TPLANES = COL["target_planes"]
C_HALF_LEN = COL["line_half_len"]
C_HALF_W = COL["line_half_width"]
C_EMAX = COL["energy_max"]
C_EREGEN = COL["energy_regen"]
C_HEAL_RATE = COL["heal_rate"]
C_HEAL_COST = COL["heal_cost"]
C_SCAN = COL["scan_range"]


@numba.njit(inline="always")
def _uniform(key, tick, u):
    # splitmix64 finaliser over a mix of the inputs: a stateless, order-free random stream
    x = key ^ (np.uint64(tick) * np.uint64(0x9E3779B97F4A7C15)) ^ (np.uint64(u + 1) * np.uint64(0xD1B54A32D192ED03))
    x ^= x >> np.uint64(30)
    x *= np.uint64(0xBF58476D1CE4E5B9)
    x ^= x >> np.uint64(27)
    x *= np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(inline="always")
def _walkable(pathable, layer, x, y):
    X = pathable.shape[1]
    Y = pathable.shape[2]
    if x < 0.0 or y < 0.0 or x >= X or y >= Y:
        return False
    return pathable[layer, int(x), int(y)] != 0


@numba.njit(inline="always")
def _hit(b, t, dmg, health, shield, since_hit, armor):
    if shield[b, t] > 0.0:
        a = min(shield[b, t], dmg)
        shield[b, t] -= a
        dmg -= a
    if dmg > 0.0:
        health[b, t] -= max(dmg - armor, 0.5)
    since_hit[b, t] = 0.0


@numba.njit
def _aim_ground(px, py, qx, qy, pathable, cell_node, nearest_node, node_xy, next_hop, los):
    # Waypoint toward (qx, qy) on the ground layer: straight if in sight, else the farthest
    # visible cell along a shortest path.
    Y = pathable.shape[2]
    X = pathable.shape[1]
    cx = min(max(int(px), 0), X - 1)
    cy = min(max(int(py), 0), Y - 1)
    c = cell_node[cx * Y + cy]
    if c < 0:
        return qx, qy
    tx = min(max(int(qx), 0), X - 1)
    ty = min(max(int(qy), 0), Y - 1)
    t = nearest_node[tx * Y + ty]
    if los[c, t]:
        return qx, qy
    w = c
    for _ in range(12):
        w2 = next_hop[w, t]
        if w2 < 0 or w2 == w:
            break
        if los[c, w2]:
            w = w2
        else:
            break
    if w == c:
        w = next_hop[c, t]
        if w < 0:
            return px, py
    return node_xy[w, 0] + 0.5, node_xy[w, 1] + 0.5


@numba.njit
def _advance_one(b, n_ticks, pos, health, shield, energy, cooldown, since_hit, alive,
                 order_kind, order_target, order_point, fire_tick, fire_point, tick, rng_key,
                 team, utype, ttab, ai_kind, ai_point,
                 pathable, cell_node, nearest_node, node_xy, next_hop, los):
    U = team.shape[0]
    alive0 = np.empty(U, dtype=np.bool_)
    aim = np.empty((U, 2))
    has_aim = np.zeros(U, dtype=np.bool_)
    for _t in range(n_ticks):
        tk = tick[b]
        for u in range(U):
            alive0[u] = alive[b, u]
            has_aim[u] = False
        # 1. scripted enemies choose targets
        if ai_kind != AI_NONE:
            for u in range(U):
                if team[u] != 1 or not alive0[u]:
                    continue
                ty = utype[u]
                wk = int(ttab[ty, C_WKIND])
                px, py = pos[b, u, 0], pos[b, u, 1]
                if wk == W_HEAL:
                    best = -1
                    bestf = 1.0
                    for v in range(U):
                        if v == u or team[v] != 1 or not alive0[v]:
                            continue
                        f = health[b, v] / ttab[utype[v], C_HEALTH]
                        if f < bestf:
                            bestf = f
                            best = v
                    if best >= 0:
                        order_kind[b, u] = ATTACK
                        order_target[b, u] = best
                    else:
                        # follow the army
                        sx = 0.0
                        sy = 0.0
                        cnt = 0
                        for v in range(U):
                            if v != u and team[v] == 1 and alive0[v]:
                                sx += pos[b, v, 0]
                                sy += pos[b, v, 1]
                                cnt += 1
                        if cnt > 0:
                            order_kind[b, u] = MOVE
                            order_point[b, u, 0] = sx / cnt
                            order_point[b, u, 1] = sy / cnt
                        else:
                            order_kind[b, u] = IDLE
                    continue
                if wk == W_NONE:
                    continue
                tplanes = int(ttab[ty, C_TPLANES])
                cur = order_target[b, u]
                if ai_kind == AI_ATTACK_GROUP:
                    if order_kind[b, u] == ATTACK and alive0[cur]:
                        continue
                    best = -1
                    bestd = 1e18
                    for v in range(U):
                        if team[v] != 0 or not alive0[v] or (int(ttab[utype[v], C_PLANE]) & tplanes) == 0:
                            continue
                        dx = pos[b, v, 0] - px
                        dy = pos[b, v, 1] - py
                        d = dx * dx + dy * dy
                        if d < bestd:
                            bestd = d
                            best = v
                    if best >= 0:
                        order_kind[b, u] = ATTACK
                        order_target[b, u] = best
                    else:
                        order_kind[b, u] = IDLE
                else:  # attack-move: keep a target in reach, else acquire the nearest within scan range
                    ru = ttab[ty, C_RADIUS]
                    if order_kind[b, u] == ATTACK and alive0[cur]:
                        dx = pos[b, cur, 0] - px
                        dy = pos[b, cur, 1] - py
                        reach = ttab[ty, C_RANGE] + ru + ttab[utype[cur], C_RADIUS]
                        if dx * dx + dy * dy <= reach * reach:
                            continue
                    acq = max(ttab[ty, C_RANGE], ttab[ty, C_SCAN]) + ru
                    best = -1
                    bestd = 1e18
                    for v in range(U):
                        if team[v] != 0 or not alive0[v] or (int(ttab[utype[v], C_PLANE]) & tplanes) == 0:
                            continue
                        dx = pos[b, v, 0] - px
                        dy = pos[b, v, 1] - py
                        d = np.sqrt(dx * dx + dy * dy)
                        if d <= acq + ttab[utype[v], C_RADIUS] and d < bestd:
                            bestd = d
                            best = v
                    if best >= 0:
                        order_kind[b, u] = ATTACK
                        order_target[b, u] = best
                    else:
                        order_kind[b, u] = AMOVE
                        order_point[b, u, 0] = ai_point[0]
                        order_point[b, u, 1] = ai_point[1]
        # 2. orders: fire, heal or choose where to walk
        for u in range(U):
            if not alive0[u]:
                continue
            ok = order_kind[b, u]
            if ok == IDLE:
                continue
            ty = utype[u]
            px, py = pos[b, u, 0], pos[b, u, 1]
            mover = int(ttab[ty, C_MOVER])
            if ok == ATTACK:
                t = order_target[b, u]
                if not alive0[t]:
                    order_kind[b, u] = IDLE
                    continue
                tx, ty2 = pos[b, t, 0], pos[b, t, 1]
                dx = tx - px
                dy = ty2 - py
                d = np.sqrt(dx * dx + dy * dy)
                reach = ttab[ty, C_RANGE] + ttab[ty, C_RADIUS] + ttab[utype[t], C_RADIUS]
                wk = int(ttab[ty, C_WKIND])
                if d <= reach:
                    if wk == W_HEAL:
                        hmax = ttab[utype[t], C_HEALTH]
                        cost = ttab[ty, C_HEAL_COST]
                        amt = min(ttab[ty, C_HEAL_RATE], hmax - health[b, t])
                        if cost > 0.0:
                            amt = min(amt, energy[b, u] / cost)
                        if amt > 0.0:
                            health[b, t] += amt
                            energy[b, u] -= amt * cost
                            fire_tick[b, u] = tk
                            fire_point[b, u, 0] = tx
                            fire_point[b, u, 1] = ty2
                    elif cooldown[b, u] <= 0.0:
                        delay = -1.0 + 3.0 * _uniform(rng_key[b], tk, u)
                        cooldown[b, u] = ttab[ty, C_PERIOD] + delay
                        fire_tick[b, u] = tk
                        fire_point[b, u, 0] = tx
                        fire_point[b, u, 1] = ty2
                        hits = int(ttab[ty, C_HITS])
                        base = ttab[ty, C_DAMAGE]
                        battr = int(ttab[ty, C_BONUS_ATTR])
                        bdmg = ttab[ty, C_BONUS_DMG]
                        if wk == W_DIRECT:
                            dmg = base
                            if (int(ttab[utype[t], C_ATTR]) & battr) != 0:
                                dmg += bdmg
                            for _h in range(hits):
                                _hit(b, t, dmg, health, shield, since_hit, ttab[utype[t], C_ARMOR])
                        elif wk == W_LINE:
                            ux = dx / max(d, 1e-9)
                            uy = dy / max(d, 1e-9)
                            hl = ttab[ty, C_HALF_LEN]
                            hw = ttab[ty, C_HALF_W]
                            tplanes = int(ttab[ty, C_TPLANES])
                            for v in range(U):
                                if team[v] == team[u] or not alive0[v]:
                                    continue
                                tv = utype[v]
                                if (int(ttab[tv, C_PLANE]) & tplanes) == 0:
                                    continue
                                rx = pos[b, v, 0] - tx
                                ry = pos[b, v, 1] - ty2
                                lat = abs(-uy * rx + ux * ry) - hl
                                lon = abs(ux * rx + uy * ry) - hw
                                lat = max(lat, 0.0)
                                lon = max(lon, 0.0)
                                rv = ttab[tv, C_RADIUS]
                                if v == t or lat * lat + lon * lon <= rv * rv:
                                    dmg = base
                                    if (int(ttab[tv, C_ATTR]) & battr) != 0:
                                        dmg += bdmg
                                    for _h in range(hits):
                                        _hit(b, v, dmg, health, shield, since_hit, ttab[tv, C_ARMOR])
                    continue
                # out of reach: walk toward the target
                if mover == 0:
                    ax, ay = _aim_ground(px, py, tx, ty2, pathable, cell_node, nearest_node, node_xy, next_hop, los)
                else:
                    ax, ay = tx, ty2
                aim[u, 0] = ax
                aim[u, 1] = ay
                has_aim[u] = True
            else:  # MOVE or AMOVE: walk to the order point
                qx, qy = order_point[b, u, 0], order_point[b, u, 1]
                dx = qx - px
                dy = qy - py
                if dx * dx + dy * dy <= 1e-12:
                    order_kind[b, u] = IDLE
                    continue
                if mover == 0:
                    ax, ay = _aim_ground(px, py, qx, qy, pathable, cell_node, nearest_node, node_xy, next_hop, los)
                else:
                    ax, ay = qx, qy
                aim[u, 0] = ax
                aim[u, 1] = ay
                has_aim[u] = True
        # 3. walk (SC2 acceleration 1000: full speed at once)
        for u in range(U):
            if not has_aim[u]:
                continue
            ty = utype[u]
            step = ttab[ty, C_SPEED]
            px, py = pos[b, u, 0], pos[b, u, 1]
            dx = aim[u, 0] - px
            dy = aim[u, 1] - py
            d = np.sqrt(dx * dx + dy * dy)
            if d <= step:
                nx, ny = aim[u, 0], aim[u, 1]
                if order_kind[b, u] != ATTACK and aim[u, 0] == order_point[b, u, 0] and aim[u, 1] == order_point[b, u, 1]:
                    order_kind[b, u] = IDLE
            else:
                nx = px + dx / d * step
                ny = py + dy / d * step
            layer = int(ttab[ty, C_MOVER])
            if _walkable(pathable, layer, nx, ny):
                pos[b, u, 0] = nx
                pos[b, u, 1] = ny
            elif _walkable(pathable, layer, nx, py):
                pos[b, u, 0] = nx
            elif _walkable(pathable, layer, px, ny):
                pos[b, u, 1] = ny
        # 4. units that share a collision layer push each other apart
        for i in range(U):
            if not alive0[i]:
                continue
            ci = int(ttab[utype[i], C_COLLIDE])
            ri = ttab[utype[i], C_RADIUS]
            li = int(ttab[utype[i], C_MOVER])
            for j in range(i + 1, U):
                if not alive0[j]:
                    continue
                if (ci & int(ttab[utype[j], C_COLLIDE])) == 0:
                    continue
                rs = ri + ttab[utype[j], C_RADIUS]
                dx = pos[b, j, 0] - pos[b, i, 0]
                if dx > rs or dx < -rs:
                    continue
                dy = pos[b, j, 1] - pos[b, i, 1]
                if dy > rs or dy < -rs:
                    continue
                d2 = dx * dx + dy * dy
                if d2 >= rs * rs:
                    continue
                d = np.sqrt(d2)
                if d < 1e-9:
                    ang = _uniform(rng_key[b], tk, i * U + j) * 6.283185307179586
                    dx = np.cos(ang)
                    dy = np.sin(ang)
                    d = 1.0
                    push = rs * 0.5
                else:
                    push = (rs - d) * 0.5
                ex = dx / d * push
                ey = dy / d * push
                lj = int(ttab[utype[j], C_MOVER])
                if _walkable(pathable, li, pos[b, i, 0] - ex, pos[b, i, 1] - ey):
                    pos[b, i, 0] -= ex
                    pos[b, i, 1] -= ey
                if _walkable(pathable, lj, pos[b, j, 0] + ex, pos[b, j, 1] + ey):
                    pos[b, j, 0] += ex
                    pos[b, j, 1] += ey
        # 5. clocks, regeneration, deaths
        for u in range(U):
            if not alive0[u]:
                continue
            ty = utype[u]
            if health[b, u] <= 0.0:
                alive[b, u] = False
                health[b, u] = 0.0
                shield[b, u] = 0.0
                order_kind[b, u] = IDLE
                continue
            if cooldown[b, u] > 0.0:
                cooldown[b, u] = max(cooldown[b, u] - 1.0, 0.0)
            since_hit[b, u] += 1.0
            smax = ttab[ty, C_SHIELD]
            if smax > 0.0 and since_hit[b, u] >= ttab[ty, C_SHIELD_DELAY]:
                shield[b, u] = min(shield[b, u] + ttab[ty, C_SHIELD_RATE], smax)
            rg = ttab[ty, C_REGEN]
            if rg > 0.0:
                health[b, u] = min(health[b, u] + rg, ttab[ty, C_HEALTH])
            emax = ttab[ty, C_EMAX]
            if emax > 0.0:
                energy[b, u] = min(energy[b, u] + ttab[ty, C_EREGEN], emax)
        tick[b] = tk + 1


# Two entry points over the same per-battle body: numba compiles `parallel=True` into a different
# function (thread pool start-up costs more than it saves below ~8 battles), and one cached
# dispatcher cannot hold both variants.
@numba.njit(cache=True)
def advance_serial(active, n_ticks, pos, health, shield, energy, cooldown, since_hit, alive,
                   order_kind, order_target, order_point, fire_tick, fire_point, tick, rng_key,
                   team, utype, ttab, ai_kind, ai_point,
                   pathable, cell_node, nearest_node, node_xy, next_hop, los):
    for b in range(active.shape[0]):
        if active[b]:
            _advance_one(b, n_ticks, pos, health, shield, energy, cooldown, since_hit, alive,
                         order_kind, order_target, order_point, fire_tick, fire_point, tick, rng_key,
                         team, utype, ttab, ai_kind, ai_point,
                         pathable, cell_node, nearest_node, node_xy, next_hop, los)


@numba.njit(cache=True, parallel=True)
def advance_parallel(active, n_ticks, pos, health, shield, energy, cooldown, since_hit, alive,
                     order_kind, order_target, order_point, fire_tick, fire_point, tick, rng_key,
                     team, utype, ttab, ai_kind, ai_point,
                     pathable, cell_node, nearest_node, node_xy, next_hop, los):
    for b in prange(active.shape[0]):
        if active[b]:
            _advance_one(b, n_ticks, pos, health, shield, energy, cooldown, since_hit, alive,
                         order_kind, order_target, order_point, fire_tick, fire_point, tick, rng_key,
                         team, utype, ttab, ai_kind, ai_point,
                         pathable, cell_node, nearest_node, node_xy, next_hop, los)
