"""The system libraries Qt's X11 platform plugin needs, checked before Qt loads it.

PySide6 >= 6.5 links its xcb plugin against libraries a fresh Debian or Ubuntu often lacks (libxcb-cursor0 first of
all); Qt then aborts with "no Qt platform plugin could be initialized" and nothing else. `missing_for_qt()` tries
each library as the plugin would (by its soname) and `message()` names what is missing and the packages that
provide it, so the app can say one line and exit instead.
"""
from __future__ import annotations

import ctypes
import os
import sys

from models.errors import WorkbenchError

# soname -> (Debian/Ubuntu package, Fedora package): what libQt6XcbQpa links to (ldd), beyond libc and GL
XCB_LIBS = {
    "libxcb-cursor.so.0": ("libxcb-cursor0", "xcb-util-cursor"),
    "libxcb-icccm.so.4": ("libxcb-icccm4", "xcb-util-wm"),
    "libxcb-util.so.1": ("libxcb-util1", "xcb-util"),
    "libxcb-image.so.0": ("libxcb-image0", "xcb-util-image"),
    "libxcb-keysyms.so.1": ("libxcb-keysyms1", "xcb-util-keysyms"),
    "libxcb-render-util.so.0": ("libxcb-render-util0", "xcb-util-renderutil"),
    "libxcb-randr.so.0": ("libxcb-randr0", "libxcb"),
    "libxcb-shape.so.0": ("libxcb-shape0", "libxcb"),
    "libxcb-shm.so.0": ("libxcb-shm0", "libxcb"),
    "libxcb-sync.so.1": ("libxcb-sync1", "libxcb"),
    "libxcb-xfixes.so.0": ("libxcb-xfixes0", "libxcb"),
    "libxcb-xkb.so.1": ("libxcb-xkb1", "libxcb"),
    "libxkbcommon.so.0": ("libxkbcommon0", "libxkbcommon"),
    "libxkbcommon-x11.so.0": ("libxkbcommon-x11-0", "libxkbcommon-x11"),
    "libX11-xcb.so.1": ("libx11-xcb1", "libX11-xcb"),
}


def uses_xcb(env=None) -> bool:
    """Whether Qt will load its X11 plugin: Linux, a display, and no other platform asked for."""
    env = os.environ if env is None else env
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0] == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def missing_for_qt(libs=None) -> list[str]:
    """The sonames of `libs` (default: `XCB_LIBS`) that cannot be loaded."""
    missing = []
    for soname in (XCB_LIBS if libs is None else libs):
        try:
            ctypes.CDLL(soname)
        except OSError:
            missing.append(soname)
    return missing


def message(missing: list[str]) -> str:
    debian = sorted({XCB_LIBS.get(s, (s, s))[0] for s in missing})
    fedora = sorted({XCB_LIBS.get(s, (s, s))[1] for s in missing})
    return (f"Qt's X11 platform plugin cannot load: missing {', '.join(missing)}. Install them: "
            f"sudo apt-get install {' '.join(debian)} (Debian/Ubuntu), sudo dnf install {' '.join(fedora)} (Fedora); "
            f"or run headless with QT_QPA_PLATFORM=offscreen")


class SystemLibraryError(WorkbenchError):
    """A library the window needs is not installed; the message names the packages."""


def check_qt_platform(env=None) -> None:
    """Raise `SystemLibraryError` (one line naming libraries and packages) when Qt's X11 plugin would abort."""
    if uses_xcb(env):
        missing = missing_for_qt()
        if missing:
            raise SystemLibraryError(message(missing))
