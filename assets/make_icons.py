"""Draws the unit icons in assets/icons/ (white on transparent; the renderer tints them per team).

Run once after changing a shape: `python assets/make_icons.py`.
"""
import math
import os
from pathlib import Path

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")
import pygame  # noqa: E402

S = 64
W = (255, 255, 255, 255)
G = (170, 170, 170, 255)


def canvas():
    s = pygame.Surface((S, S), pygame.SRCALPHA)
    s.fill((0, 0, 0, 0))
    return s


def colossus():
    s = canvas()
    c = S // 2
    for ang in (40, 140, 220, 320):  # four long legs
        a = math.radians(ang)
        end = (c + 29 * math.cos(a), c + 29 * math.sin(a))
        knee = (c + 18 * math.cos(a) + 4, c + 18 * math.sin(a))
        pygame.draw.line(s, G, (c, c), knee, 5)
        pygame.draw.line(s, G, knee, end, 4)
        pygame.draw.circle(s, W, end, 4)
    pygame.draw.ellipse(s, W, (c - 13, c - 10, 26, 20))
    pygame.draw.rect(s, G, (c - 4, c - 16, 8, 10))  # lance housing
    pygame.draw.circle(s, (255, 255, 255, 255), (c, c), 5)
    return s


def zergling():
    s = canvas()
    c = S // 2
    pygame.draw.ellipse(s, W, (c - 12, c - 18, 24, 34))
    pygame.draw.polygon(s, W, [(c - 10, c - 12), (c - 26, c - 28), (c - 6, c - 18)])  # claws
    pygame.draw.polygon(s, W, [(c + 10, c - 12), (c + 26, c - 28), (c + 6, c - 18)])
    pygame.draw.polygon(s, G, [(c - 6, c + 14), (c, c + 30), (c + 6, c + 14)])  # tail
    pygame.draw.polygon(s, G, [(c - 12, c - 2), (c - 26, c + 10), (c - 10, c + 6)])  # wings
    pygame.draw.polygon(s, G, [(c + 12, c - 2), (c + 26, c + 10), (c + 10, c + 6)])
    return s


def infantry(gun_len):
    s = canvas()
    c = S // 2
    pygame.draw.circle(s, W, (c, c), 18)
    pygame.draw.circle(s, G, (c, c), 9)
    pygame.draw.rect(s, W, (c + 8, c - 26 - gun_len // 4, 7, 18 + gun_len // 2))
    return s


def medivac():
    s = canvas()
    c = S // 2
    pygame.draw.ellipse(s, W, (c - 12, c - 26, 24, 52))
    pygame.draw.rect(s, W, (c - 28, c - 4, 56, 10))
    pygame.draw.rect(s, (200, 40, 40, 255), (c - 3, c - 12, 6, 22))
    pygame.draw.rect(s, (200, 40, 40, 255), (c - 10, c - 4, 20, 6))
    return s


def stalker():
    s = canvas()
    c = S // 2
    for ang in (45, 135, 225, 315):
        a = math.radians(ang)
        pygame.draw.line(s, G, (c, c), (c + 26 * math.cos(a), c + 26 * math.sin(a)), 4)
    pygame.draw.circle(s, W, (c, c), 14)
    pygame.draw.circle(s, G, (c, c - 4), 5)
    return s


def zealot():
    s = canvas()
    c = S // 2
    pygame.draw.circle(s, W, (c, c), 16)
    pygame.draw.line(s, (120, 200, 255, 255), (c - 18, c - 4), (c - 26, c - 26), 4)  # psi blades
    pygame.draw.line(s, (120, 200, 255, 255), (c + 18, c - 4), (c + 26, c - 26), 4)
    return s


if __name__ == "__main__":
    pygame.display.init()
    out = Path(__file__).parent / "icons"
    out.mkdir(exist_ok=True)
    icons = {"colossus": colossus(), "zergling": zergling(), "marine": infantry(8), "marauder": infantry(16),
             "medivac": medivac(), "stalker": stalker(), "zealot": zealot()}
    for name, surf in icons.items():
        pygame.image.save(surf, str(out / f"{name}.png"))
    print("wrote", sorted(icons))
