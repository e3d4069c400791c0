"""N inline training rounds of the 2c QMIX preset (same seed, same epsilon schedule) in the checkout given first:
the same work before and after issue 19's re-rooming. Usage: python benchmarks/rounds_any_checkout.py CHECKOUT N"""
import sys
import tempfile
import time

sys.path.insert(0, sys.argv[1])
try:
    from models.training.train import Trainer
except ImportError:
    from models.train import Trainer
from models.config import load_config

with tempfile.TemporaryDirectory() as d:
    cfg = load_config("qmix_2c_vs_64zg", ["run.learner_process=false", "run.epsilon_anneal_steps=100000",
                                          "run.test_interval=100000000", "run.save_interval=0",
                                          "run.record_interval=0", "run.record_first_win=false", "run.threads=1"])
    tr = Trainer(cfg, run_dir=f"{d}/r", log=lambda *a: None)
    t = time.perf_counter()
    for _ in range(int(sys.argv[2])):
        tr.round()
    print(f"{tr.t_env} env steps, {tr.updates} updates, {time.perf_counter() - t:.2f} s", file=sys.stderr)
    tr.close()
