"""The one list of algorithms (IQL, VDN, QMIX, RES-VDN, RES-QMIX) and of the shipped presets.

An algorithm is a mixer kind plus the RES flag; its presets are named `<prefix>_<map>` (`res_qmix_2c_vs_64zg`) for
the workbench's own protocol and `<prefix>_<map>_<protocol>` for the papers' (`qmix_2c_vs_64zg_pymarl`).
The CLI, sweeps and the app read these instead of keeping their own lists.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import ConfigError
from .config import list_presets as _list_presets


# A protocol is a family of presets: the same algorithms under one paper's training settings.
# name -> (preset name suffix, what a person reads)
PROTOCOLS: dict[str, tuple[str, str]] = {
    "workbench": ("", "workbench (pymarl2's tricks: Adam, TD(lambda) 0.6, 16 envs, replay ratio 8)"),
    "pymarl": ("_pymarl", "the papers' (PyMARL / RES code: RMSprop 5e-4, one-step targets, replay ratio 32)"),
}


def check_protocol(name: str) -> str:
    if name not in PROTOCOLS:
        raise ConfigError(f"unknown protocol {name!r}; protocols: {', '.join(PROTOCOLS)}")
    return name


@dataclass(frozen=True)
class Algorithm:
    name: str  # what a person reads: "RES-QMIX"
    mixer: str  # algo.mixer: "none" | "vdn" | "qmix"
    res: bool  # algo.res
    prefix: str  # presets are "<prefix>_<map>"

    def preset(self, map_key: str, protocol: str = "workbench") -> str:
        """This algorithm's preset for a map key ("2c_vs_64zg", "twostep") under a protocol; an error names the
        ones there are."""
        name = f"{self.prefix}_{map_key}{PROTOCOLS[check_protocol(protocol)][0]}"
        return check_preset(name)


ALGORITHMS: tuple[Algorithm, ...] = (
    Algorithm("IQL", "none", False, "iql"),
    Algorithm("VDN", "vdn", False, "vdn"),
    Algorithm("QMIX", "qmix", False, "qmix"),
    Algorithm("RES-VDN", "vdn", True, "res_vdn"),
    Algorithm("RES-QMIX", "qmix", True, "res_qmix"),
)


@dataclass(frozen=True)
class PresetInfo:
    name: str  # "res_qmix_2c_vs_64zg"
    algorithm: Algorithm
    map_key: str  # what follows the algorithm's prefix: "2c_vs_64zg", "twostep", "matrix_mild"
    protocol: str = "workbench"  # a key of PROTOCOLS, read from the name's suffix


def algorithm(name: str) -> Algorithm:
    """An algorithm by its name or preset prefix, in any case ("RES-QMIX", "res_qmix", "qmix")."""
    key = name.strip().lower().replace("-", "_")
    for a in ALGORITHMS:
        if key in (a.name.lower().replace("-", "_"), a.prefix):
            return a
    raise ConfigError(f"unknown algorithm {name!r}; algorithms: {', '.join(a.name for a in ALGORITHMS)}")


def algorithm_of(mixer: str, res: bool) -> Algorithm:
    """The algorithm a config's `algo.mixer` and `algo.res` make."""
    for a in ALGORITHMS:
        if a.mixer == mixer and a.res == bool(res):
            return a
    raise ConfigError(f"no algorithm has algo.mixer = {mixer!r} with algo.res = {str(bool(res)).lower()}")


def list_presets() -> list[str]:
    """The shipped presets' names, sorted."""
    return _list_presets()


def check_preset(name: str) -> str:
    """`name` when it is a shipped preset; otherwise an error listing them."""
    names = list_presets()
    if name not in names:
        raise ConfigError(f"unknown preset {name!r}; presets: {', '.join(names)}")
    return name


def preset_info(name: str) -> PresetInfo:
    """Which algorithm and map a shipped preset is, read from its name (the longest prefix wins, so
    `res_qmix_...` is RES-QMIX, not QMIX)."""
    check_preset(name)
    protocol, rest = "workbench", name
    for key, (suffix, _) in PROTOCOLS.items():
        if suffix and name.endswith(suffix):
            protocol, rest = key, name[:-len(suffix)]
    for a in sorted(ALGORITHMS, key=lambda a: -len(a.prefix)):
        if rest.startswith(a.prefix + "_"):
            return PresetInfo(name, a, rest[len(a.prefix) + 1:], protocol)
    raise ConfigError(f"preset {name!r} does not start with an algorithm's prefix "
                      f"({', '.join(a.prefix for a in ALGORITHMS)})")


def presets_for(algorithm_name: str | None = None, map_key: str | None = None,
                protocol: str | None = None) -> list[str]:
    """The presets of one algorithm and/or one map key and/or one protocol."""
    out = []
    for name in list_presets():
        info = preset_info(name)
        if algorithm_name is not None and info.algorithm != algorithm(algorithm_name):
            continue
        if map_key is not None and info.map_key != map_key:
            continue
        if protocol is not None and info.protocol != protocol:
            continue
        out.append(name)
    return out
