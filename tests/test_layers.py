"""The layers are contracts, not a picture: import-linter checks pyproject.toml's [tool.importlinter] contracts
(sims imports nothing of ours; models never imports workbench, Qt or pygame; models is layered sweeps > play >
training > files > core; the trainer process never imports Qt), and a fresh interpreter that runs the trainer
process's code and a round of training finds no Qt in sys.modules."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_contracts_hold():
    lint = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    p = subprocess.run([lint, "--config", str(ROOT / "pyproject.toml")], cwd=ROOT, capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.count("KEPT") == 4 and "BROKEN" not in p.stdout


@pytest.mark.slow
def test_training_and_the_trainer_process_load_no_qt(tmp_path):
    code = f"""
import json, sys
import workbench.trainer_process, workbench.client, workbench.state, workbench.replay
from models.config import load_config
from models.training.train import train
cfg = load_config("qmix_twostep", ["run.t_max=200", 'run.runs_dir="{tmp_path}"'])
train(cfg, log=lambda *a: None)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "pyqtgraph", "pygame"))))
"""
    p = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout.strip().splitlines()[-1]) == []
