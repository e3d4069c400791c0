"""A host program that logs at DEBUG (EPyMARL does `logging.basicConfig(level=DEBUG)`) gets its own
records, not a flood from the libraries the simulator uses (numba's first compile alone used to send
~171,000 DEBUG lines). Fresh interpreters, so the kernels really compile."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_HOST = r'''
import collections, json, logging, sys

class Count(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.by_logger = collections.Counter()

    def emit(self, record):
        self.by_logger[record.name.split(".")[0]] += 1

count = Count()
logging.basicConfig(level=logging.DEBUG, handlers=[count])
root_handlers = list(logging.getLogger().handlers)

FACE = sys.argv[1]
if FACE == "smac":
    from sims import StarCraft2Env
    env = StarCraft2Env(map_name="2c_vs_64zg", seed=0)
    env.reset()
    env.step([1, 1])
elif FACE == "render":
    import numpy as np
    from sims import VecEnv
    from sims.render import Renderer
    env = VecEnv("2c_vs_64zg", 1, seed=0)
    env.reset()
    env.step(np.array([[1, 1]]))
    Renderer(env.battle.scenario).frame(env.world, 0)
elif FACE == "pettingzoo":
    import sims
    env = sims.parallel_env("2c_vs_64zg", seed=0, render_mode="rgb_array")
    env.reset()
    env.step({"agent_0": 1, "agent_1": 1})
    env.render()
lib = dict(count.by_logger)
logging.getLogger("host").debug("x")
print(json.dumps({"lib": lib, "host": count.by_logger["host"],
                  "root_level": logging.getLogger().level,
                  "root_handlers_same": logging.getLogger().handlers == root_handlers}))
'''


def _run_host(face, tmp_path, **env_extra):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"), PYTHONPATH=str(ROOT), **env_extra)
    env.pop("NUMBA_DEBUG_CACHE", None)
    p = subprocess.run([sys.executable, "-c", _HOST, face], capture_output=True, text=True, cwd=tmp_path, env=env,
                       timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    return json.loads(p.stdout.strip().splitlines()[-1])


@pytest.mark.slow
@pytest.mark.parametrize("face", ["smac", "render", "pettingzoo"])
def test_a_debug_host_gets_no_library_flood_and_keeps_its_own_logging(face, tmp_path):
    out = _run_host(face, tmp_path)
    assert sum(out["lib"].values()) < 50, out["lib"]  # records from numba, pygame, ... that reached the host
    assert out["host"] == 1  # the host's own DEBUG record still gets through
    assert out["root_level"] == 10 and out["root_handlers_same"]  # root logger untouched (DEBUG, same handlers)


_CONFIGURED = r'''
import logging, sys
class Count(logging.Handler):
    n = 0
    def emit(self, record):
        if record.name.startswith("numba"):
            Count.n += 1
logging.basicConfig(level=logging.DEBUG, handlers=[Count()])
logging.getLogger("numba").setLevel(logging.DEBUG)  # the host asked for numba's records itself
from sims import StarCraft2Env
env = StarCraft2Env(map_name="2c_vs_64zg", seed=0)
env.reset()
env.step([1, 1])
print(Count.n, logging.getLogger("numba").level)
'''


@pytest.mark.slow
def test_a_host_that_configured_the_numba_logger_keeps_its_setting(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba_cache"), PYTHONPATH=str(ROOT))
    p = subprocess.run([sys.executable, "-c", _CONFIGURED], capture_output=True, text=True, cwd=tmp_path, env=env,
                       timeout=240)
    assert p.returncode == 0, p.stderr[-3000:]
    n, level = map(int, p.stdout.split())
    assert level == 10 and n > 1000  # its level was left alone, and numba did log to it
