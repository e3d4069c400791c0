"""models: everything below the window, Qt-free (see docs/architecture.md).

- `config`, `registry`, `errors`: the typed config and presets, the one table of algorithms, the errors a user sees.
- `core`: the algorithm, with no files and no processes: agent, mixers, learner, buffer, episodes, runner, probe.
- `training`: the training loop (`train`, its callbacks), where the learner lives (`learner_host`), memory checks.
- `files`: each disk format read and written in one place: run directories, checkpoints, episode files, policies.
- `play`: using a saved policy: evaluate, watch, record, fork, tables.
- `sweeps`: sweeps over seeds and grids, comparisons, statistics over runs, marl-eval files.

From Python: `models.train(config, callbacks=...)` and `models.load_config(preset, overrides)`.
"""


def __getattr__(name):  # the public face, imported on first use (a plain `import models` stays light)
    if name in ("train", "Trainer"):
        from .training import train as _train

        return getattr(_train, name)
    if name == "Callbacks":
        from .training.callbacks import Callbacks

        return Callbacks
    if name == "load_config":
        from .config import load_config

        return load_config
    raise AttributeError(f"module 'models' has no attribute {name!r}")
