"""sims: a batched numpy/numba re-creation of SMAC battles (2c_vs_64zg and friends), no StarCraft II.

Faces: `StarCraft2Env` (SMAC's API), `VecEnv` (batched training face), `parallel_env` (PettingZoo).
The PettingZoo adapter and the renderer are imported lazily so the core needs neither.
"""
import logging as _logging

# numba's first compile of the kernels logs ~170,000 DEBUG records (~20 MB); a host that logs at DEBUG
# (EPyMARL: logging.basicConfig(level=DEBUG)) would get all of them through its root handler. Quiet
# numba's logger unless the host has set its level itself; the root logger and handlers are untouched.
# (The other libraries the simulator, trainer and GUI use log nothing at DEBUG in such a host.)
if _logging.getLogger("numba").level == _logging.NOTSET:
    _logging.getLogger("numba").setLevel(_logging.WARNING)

from .battle import N_ACTIONS_NO_ATTACK, action_names
from .errors import DataError
from .matrix_games import MatrixGameVecEnv, list_matrix_games
from .scenario import Scenario, list_scenarios, load_scenario
from .smac_env import StarCraft2Env
from .units import UnitType, load_unit_types
from .vec_env import StepRecord, VecEnv
from .world import World

__all__ = ["N_ACTIONS_NO_ATTACK", "action_names", "DataError", "MatrixGameVecEnv", "list_matrix_games", "make_vec_env", "Scenario", "StarCraft2Env", "StepRecord", "UnitType", "VecEnv", "World",
           "list_scenarios", "load_scenario", "load_unit_types", "parallel_env"]


def parallel_env(map_name: str = "2c_vs_64zg", seed=None, render_mode=None, **smac_options):
    """A PettingZoo `ParallelEnv` (see `sims.pz`)."""
    try:
        from .pz import parallel_env as _pe
    except ImportError as e:
        raise ImportError(f"sims.parallel_env needs PettingZoo ({e}); install it with "
                          "pip install 'qmix-workbench[pettingzoo]'") from None

    return _pe(map_name, seed=seed, render_mode=render_mode, **smac_options)


def make_vec_env(name: str, num_envs: int = 1, seed=None, autoreset: bool = True, **options):
    """A `VecEnv` for a SMAC map, or a `MatrixGameVecEnv` for a matrix game, by name."""
    if name in list_matrix_games():
        return MatrixGameVecEnv(name, num_envs, seed=seed, autoreset=autoreset, **options)
    return VecEnv(name, num_envs, seed=seed, autoreset=autoreset, **options)
