"""The `qmix-workbench` command: the app (no arguments), headless training, evaluation, presets, shipped policies."""
from __future__ import annotations

import argparse
import sys
import time


def main(argv=None) -> int:
    from models.config import EVAL_SEED
    from models.training.live import LIVE_BOUNDS as LIVE_BOUNDS_HELP

    p = argparse.ArgumentParser(prog="qmix-workbench",
                                description="QMIX Workbench. Without a command, opens the app.")
    p.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = p.add_subparsers(dest="cmd")
    t = sub.add_parser("train", help="train headless (progress bar, run directory under runs/)")
    t.add_argument("--preset", help="preset name (see `presets`), e.g. qmix_2c_vs_64zg")
    t.add_argument("--config", help="path to your own TOML config (applied after the preset)")
    t.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override a config key, e.g. --set learner.lr=0.0005 (repeatable)")
    t.add_argument("--resume", metavar="RUN_DIR",
                   help="resume a run (a run directory or one of its checkpoints); it writes into that run directory")
    t.add_argument("--run-dir", help="write the run here instead of runs/<name>_<time> (must not hold a run)")
    t.add_argument("--overwrite", action="store_true",
                   help="with --run-dir: delete the run already there and start clean")
    t.add_argument("--script", metavar="FILE.toml",
                   help="play an experiment script: timed live changes, branches, breakpoints (docs/experimenting.md)")
    e = sub.add_parser("eval", help="greedy evaluation of a checkpoint or a shipped policy")
    e.add_argument("checkpoint", nargs="?", help="checkpoint file or run directory (or use --policy)")
    e.add_argument("--policy", metavar="NAME", help="a shipped policy instead of a checkpoint (see `policies`)")
    e.add_argument("--episodes", type=int, default=32)
    e.add_argument("--seed", type=int, default=EVAL_SEED)
    w = sub.add_parser("watch", help="open the app in Watch mode on a checkpoint or a shipped policy")
    w.add_argument("checkpoint", nargs="?", help="checkpoint file, run directory or policy .npz (or use --policy)")
    w.add_argument("--policy", metavar="NAME", help="a shipped policy (see `policies`)")
    sub.add_parser("policies", help="list the shipped policies (their cards' win rates)")
    sp = sub.add_parser("ship-policy", help="turn a checkpoint into a shipped policy: weights (.npz) and card (.json)")
    sp.add_argument("checkpoint", help="checkpoint file or run directory")
    sp.add_argument("--name", required=True, help="the policy's name, e.g. qmix (lowercase, digits, _ and -)")
    sp.add_argument("--episodes", type=int, default=200, help="greedy episodes for the card's win rate")
    sp.add_argument("--seed", type=int, default=EVAL_SEED, help="the evaluation's seed")
    sp.add_argument("--trained-with", default=None, metavar="COMMAND",
                    help="the command that trained the checkpoint (goes on the card before the ship-policy command)")
    sp.add_argument("--out", default=None, metavar="DIR", help="directory (default: $QMIX_WORKBENCH_POLICIES; the package's own "
                                                "assets/policies/ only when named)")
    sp.add_argument("--force", action="store_true", help="replace an existing policy of that name")
    pl = sub.add_parser("plot", help="plot a run's win rate, return and overestimation curves to a PNG")
    pl.add_argument("run_dir")
    pl.add_argument("--out", default=None, metavar="FILE.png", help="PNG path (default: RUN_DIR/curves.png)")
    pl.add_argument("--force", action="store_true", help="replace an existing PNG")
    tb = sub.add_parser("tables", help="print a matrix-game checkpoint's learned Qtot tables beside the true payoffs; "
                                       "for a sweep or several runs, their mean +- sd over seeds")
    tb.add_argument("checkpoint", nargs="+", help="checkpoint file or run directory; or a sweep directory, or several runs")
    sub.add_parser("presets", help="list the shipped presets")
    sub.add_parser("maps", help="list the scenarios and matrix games")
    r = sub.add_parser("render", help="render a battle of a scenario to a PNG")
    r.add_argument("--map", default="2c_vs_64zg")
    r.add_argument("--steps", type=int, default=20)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--out", default="frame.png", metavar="FILE.png")
    r.add_argument("--policy", choices=["random", "heuristic"], default="random")
    r.add_argument("--force", action="store_true", help="replace an existing PNG")
    rc = sub.add_parser("record", help="play greedy episodes of a checkpoint and write each to an episode file")
    rc.add_argument("checkpoint", nargs="?", help="checkpoint file or run directory (or use --policy)")
    rc.add_argument("--policy", metavar="NAME", help="a shipped policy instead of a checkpoint")
    rc.add_argument("--episodes", type=int, default=1)
    rc.add_argument("--out", default=None, metavar="DIR", help="directory for the files (default: the run directory's episodes/, "
                                                "or runs/episodes/ for a shipped policy)")
    rc.add_argument("--seed", type=int, default=EVAL_SEED,
                    help="the battles' seed: the evaluation seed by default, as eval, ship-policy and the policy "
                         "cards use (fork's --seed draws its continuations' random streams instead)")
    rc.add_argument("--force", action="store_true", help="replace existing files of the same source, seed and index")
    rp = sub.add_parser("replay", help="open an episode file in the app's Replay mode")
    rp.add_argument("file", help="episode file (.npz)")
    fk = sub.add_parser("fork", help="what if an agent had acted otherwise at a step? N continuations each way")
    fk.add_argument("file", help="episode file (.npz)")
    fk.add_argument("--step", type=int, required=True, help="the decision step to fork at (0-based)")
    fk.add_argument("--agent", type=int, required=True)
    fk.add_argument("--action", required=True, help='an action index, or "greedy" (the policy\'s own choice)')
    fk.add_argument("--episodes", type=int, default=20, help="continuations per arm (default 20)")
    fk.add_argument("--seed", type=int, default=0, help="draws the continuations' random streams")
    fk.add_argument("--out", default=None, metavar="FILE.npz", help="also write the fork's first continuation as an episode file")
    fk.add_argument("--force", action="store_true", help="replace an existing --out file (never the input)")
    ex = sub.add_parser("export", help="draw an episode file to a GIF or MP4 (headless)")
    ex.add_argument("file", help="episode file (.npz)")
    fmt = ex.add_mutually_exclusive_group(required=True)
    fmt.add_argument("--gif", metavar="OUT.gif")
    fmt.add_argument("--mp4", metavar="OUT.mp4")
    ex.add_argument("--panels", default="arena", help="comma-separated: arena, qvalues, qtot, joint, mixer "
                                                       "(default: arena)")
    ex.add_argument("--fps", type=float, default=8.0)
    ex.add_argument("--force", action="store_true", help="replace an existing output file (never the input)")
    st = sub.add_parser("set", help="change settings of a training while it runs (applied at its next round)",
                        description="Asks a training to change settings at its next round: through the run's "
                                    "control file (live_requests.jsonl), so it works for a headless run, a sweep's "
                                    "trial or the app's. Each applied change is an event in the run's events.csv "
                                    "and its checkpoints; a stopped or finished run applies it when resumed. All or "
                                    "nothing: every change is checked against the run's settings as changed so far "
                                    "before any is written; a key that does nothing for the run's algorithm is "
                                    "refused. Bounds while a run trains: " + ", ".join(
                                        f"{k} in [{lo:g}, {hi:g}]" for k, (lo, hi) in LIVE_BOUNDS_HELP.items()) + ".")
    st.add_argument("run_dir", metavar="RUN_DIR", help="the run directory")
    st.add_argument("changes", nargs="*", metavar="SECTION.KEY=VALUE",
                    help="e.g. learner.lr=0.0005 run.epsilon_start=0.5 (--list shows what may change)")
    st.add_argument("--list", action="store_true", help="list the settings that may change while a run trains")
    br = sub.add_parser("branch", help="branch a run from one of its checkpoints with settings changed",
                        description="Makes a new run directory that goes on from a checkpoint (weights, optimizer, "
                                    "random streams and the replay buffer when the file holds one: a run's "
                                    "latest.pt after a stop does) with the settings given changed; the parent's "
                                    "files are only read. Train the branch with `train --resume BRANCH_DIR`; "
                                    "`compare PARENT BRANCH` overlays them.")
    br.add_argument("source", metavar="RUN_OR_CHECKPOINT", help="a run directory (its latest checkpoint) or a "
                                                                 "checkpoint file")
    br.add_argument("--set", dest="changes", action="append", default=[], metavar="SECTION.KEY=VALUE",
                    help="a changed setting, e.g. --set algo.res_lambda=0.1 (repeatable; at least one)")
    br.add_argument("--out", metavar="DIR", help="the branch's run directory (default: beside the parent, named "
                                                 "after it, the env step and the changes)")
    from workbench.sweep_cli import add_parsers as _add_sweep_parsers

    sweep_commands = _add_sweep_parsers(sub)  # sweep, compare
    for parser in sub.choices.values():
        _show_defaults(parser)
    args = p.parse_args(argv)
    from models.errors import DivergenceError, user_message

    try:
        if args.cmd is None:
            from workbench.app import run_app

            return run_app()
        return {"train": _train, "eval": _eval, "presets": _presets, "maps": _maps, "render": _render,
                "plot": _plot, "tables": _tables, "record": _record, "replay": _replay, "fork": _fork,
                "export": _export, "watch": _watch, "set": _set, "branch": _branch, "policies": _policies, "ship-policy": _ship_policy,
                **sweep_commands}[args.cmd](args)
    except KeyboardInterrupt:  # a second Ctrl-C during training: no save; the last checkpoint stands
        if args.debug:
            raise
        print("qmix-workbench: interrupted; files already written (the last checkpoint) are intact",
              file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - a user's mistake is one line; our bug keeps its traceback
        msg = user_message(exc)
        if msg is None or args.debug:
            raise
        print(f"qmix-workbench: error: {msg}", file=sys.stderr)
        return EXIT_DIVERGED if isinstance(exc, DivergenceError) else EXIT_USER_ERROR


def _branch(args) -> int:
    from models.training.branch import branch

    branch(args.source, args.changes, args.out)
    return 0


def _set(args) -> int:
    from pathlib import Path

    from models.config import parse_override
    from models.files.rundir import DirLock
    from models.errors import RunDirError
    from models.training import live

    if args.list:
        for key, what in live.LIVE_KEYS.items():
            print(f"{key:34s} {what}")
        return 0
    if not args.changes:
        raise ValueError("set needs at least one SECTION.KEY=VALUE (or --list)")
    changes = [parse_override(c) for c in args.changes]  # every one parsed before any is asked for
    d = Path(args.run_dir)
    lines = live.request_all(d, changes, source="cli")  # all or nothing, each against the settings as changed
    for (key, value), line in zip(changes, lines):
        print(f"asked {d} for {key} = {value!r} (line {line + 1} of {live.REQUESTS_FILE})")
    try:
        DirLock(d, "run directory").release()
        print("no training is running there now: a resume applies the changes at its first round")
    except RunDirError:
        print("the training applies them at its next round; each applied change is a row of events.csv")
    return 0


EXIT_USER_ERROR = 2  # bad input: a key, a file, a directory; or the disk
EXIT_DIVERGED = 3  # training stopped on a non-finite loss, gradient or Q-value


def _presets(args) -> int:
    from models import registry
    from models.config import load_config

    for name in registry.list_presets():
        info = registry.preset_info(name)
        print(f"{name:28s} {info.algorithm.name:9s} on {load_config(name).env.map_name:14s} "
              f"protocol {info.protocol}")
    return 0


def _maps(args) -> int:
    from sims import list_matrix_games, list_scenarios, load_scenario

    for name in list_scenarios():
        s = load_scenario(name)
        print(f"{name:14s} agents {s.n_agents:3d}  enemies {s.n_enemies:3d}  limit {s.limit}")
    for name in list_matrix_games():
        print(f"{name:14s} matrix game, 2 agents")
    return 0


class ProgressBar:
    """Training progress (a `Callbacks` for `train`): a tqdm bar with ETA on a terminal; on a log file or
    pipe, one plain line every `every_s` seconds instead of a flood of carriage returns."""

    def __init__(self, stream=None, every_s: float = 30.0):
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.every_s = every_s
        self.win = self.test = self.loss = float("nan")
        self.eps = float("nan")
        self.sps = 0.0
        self.t = self.t0 = 0
        self.t_max = 1
        self.bar = None
        self.start = self.last = time.monotonic()

    def on_start(self, info):
        from tqdm import tqdm

        print(f"run directory: {info['run_dir']}  ({info['algorithm']} on {info['env_info']['n_agents']} agents, "
              f"device {info['device']})", file=self.stream)
        self.t_max = info["config"]["run"]["t_max"]
        self.t = self.t0 = info["t_env"]
        self.start = self.last = time.monotonic()
        if self.tty:
            self.bar = tqdm(total=self.t_max, initial=self.t, unit="step", unit_scale=True, file=self.stream,
                            dynamic_ncols=True, mininterval=0.5, smoothing=0.05)

    def on_episode(self, m):
        self.win = m["won"] if self.win != self.win else 0.98 * self.win + 0.02 * m["won"]
        self.eps = m["epsilon"]
        self.t = m["t_env"]

    def on_update(self, m):
        self.t = m["t_env"]
        self.loss = m["loss"]
        self.sps = m.get("steps_per_s", self.sps)  # absent on the updates caught up at the end
        self._show()

    def on_eval(self, m):
        self.test = m["test_win_rate"]
        self._show()

    def _postfix(self) -> str:
        return (f"win {self.win:5.1%}  test {self.test:5.1%}  eps {self.eps:.3f}  loss {self.loss:.4f}  "
                f"{self.sps:,.0f} steps/s")

    def _show(self):
        now = time.monotonic()
        if self.bar is not None:
            self.bar.update(min(self.t, self.t_max) - self.bar.n)
            if now - self.last >= 0.5:
                self.last = now
                self.bar.set_postfix_str(self._postfix(), refresh=False)
        elif now - self.last >= self.every_s:
            self.last = now
            self._line(now)

    def _line(self, now):
        from tqdm import tqdm

        meter = tqdm.format_meter(min(self.t, self.t_max), self.t_max, now - self.start, unit="steps",
                                  unit_scale=True, initial=self.t0,
                                  bar_format="{percentage:3.0f}% {n_fmt}/{total_fmt} steps [{elapsed}<{remaining}]")
        print(f"{meter}  {self._postfix()}", file=self.stream, flush=True)

    def on_end(self, s):
        if self.bar is not None:
            self.bar.update(min(s["t_env"], self.t_max) - self.bar.n)
            self.bar.close()
        else:
            self._line(time.monotonic())
        won = s["final_test_win_rate"]
        print(f"done: {s['t_env']:,d} env steps, final test win rate "
              f"{'(skipped: stopped early)' if won != won else f'{won:.1%}'}, checkpoint {s['checkpoint']}",
              file=self.stream)

    def close(self):
        if self.bar is not None:
            self.bar.close()

    # the rest of the Callbacks interface
    def on_checkpoint(self, path):
        pass

    def on_recorded(self, path):
        pass

    def wants_steps(self):
        return False

    def should_stop(self):
        return False


def _train(args) -> int:
    from models.config import apply_file, apply_overrides, load_config
    from models.training.train import train

    log = lambda m: print(m, file=sys.stderr)  # noqa: E731
    if getattr(args, "script", None):  # absolute: a resume from another directory still finds it
        import json
        from pathlib import Path

        args.overrides = args.overrides + [f"run.script={json.dumps(str(Path(args.script).resolve()))}"]
    bar = ProgressBar()
    try:
        if args.resume:
            if args.preset or args.config:
                raise ValueError("--resume takes the run's own config; drop --preset/--config")
            from models.config import parse_override
            from models.training.live import LIVE_KEYS

            other = [s for s in args.overrides if not s.strip().startswith("run.")
                     and parse_override(s)[0] not in LIVE_KEYS]
            if other:
                raise ValueError(f"--resume keeps the run's networks and environment; only run.* keys (t_max, "
                                 f"time_limit_s, intervals, ...) and the settings that change live (set --list) "
                                 f"can change, not {', '.join(other)}")
            train(None, callbacks=bar, resume=args.resume, run_dir=args.run_dir, overwrite=args.overwrite,
                  overrides=args.overrides, log=log)
            return 0
        if not args.preset and not args.config:
            raise ValueError("train needs --preset NAME or --config FILE (see `qmix-workbench presets`)")
        cfg = load_config(args.preset) if args.preset else None
        if args.config:
            cfg = apply_file(cfg, args.config)
        cfg = apply_overrides(cfg, args.overrides)
        if cfg.run.script:  # every step checked before a run directory is made
            from models.training.script import load_script

            load_script(cfg.run.script, cfg)
        train(cfg, callbacks=bar, run_dir=args.run_dir, overwrite=args.overwrite, log=log)
        return 0
    finally:
        bar.close()


def _policy_source(args) -> str:
    """What a command plays: its CHECKPOINT argument, or the weights of the shipped policy --policy names."""
    from models.files.policies import find_policy, list_policies

    if args.checkpoint is not None and args.policy is not None:
        raise ValueError(f"{args.cmd}: give a checkpoint or --policy NAME, not both")
    if args.policy is not None:
        return str(find_policy(args.policy).weights)
    if args.checkpoint is None:
        names = ", ".join(c.name for c in list_policies()) or "none shipped"
        raise ValueError(f"{args.cmd}: expected a checkpoint (file or run directory) or --policy NAME "
                         f"(shipped policies: {names})")
    return args.checkpoint


def _eval(args) -> int:
    from models.config import from_dict
    from models.play.evaluate import evaluate_checkpoint

    res = evaluate_checkpoint(_policy_source(args), args.episodes, args.seed)
    meta = res["meta"]
    if meta.get("fallback"):
        print(meta["fallback"], file=sys.stderr)
    cfg = from_dict(meta["config"])
    what = (f"shipped policy {meta['policy']} ({meta['t_env']:,d} env steps of training)" if meta.get("policy")
            else f"checkpoint at {meta['t_env']:,d} env steps")
    print(f"{meta['algorithm']} on {cfg.env.map_name}, {what}: "
          f"win rate {res['win_rate']:.1%} over {res['episodes']} greedy episodes, "
          f"mean return {res['return']:.2f}, mean enemies killed {res['dead_enemies']:.1f}")
    return 0


def _record(args) -> int:
    from models.play.recording import record_episodes

    from pathlib import Path

    from models.files.guard import Output, check_outputs

    source = _policy_source(args)
    if args.out:  # a run's own episodes/ takes them (the default); never another run's or sweep's files
        src = Path(source)
        run = src if src.is_dir() else (src.parent.parent if src.parent.name == "checkpoints" else None)
        check_outputs([Output("--out", args.out, directory=True)], inputs=[] if run else [source],
                      owns=[run] if run else [])
    record_episodes(source, args.episodes, args.out, args.seed, log=print, force=args.force)
    return 0


def _watch(args) -> int:
    from models.files.loading import load_policy

    source = _policy_source(args)
    load_policy(source)  # a bad checkpoint or policy is one line here, before any window opens
    from workbench.app import run_app

    return run_app(watch=source)


def _policies(args) -> int:
    from models.files.policies import list_policies, policies_dir

    bad: list = []
    cards = list_policies(unreadable=bad)
    if not cards and not bad:
        print(f"no shipped policies in {policies_dir()} (make one: qmix-workbench ship-policy RUN_DIR --name NAME "
              f"--out DIR)")
    for c in cards:
        print(c.summary())
    for path, why in bad:
        print(f"{path.stem}: unreadable ({why})")
    return 0 if not bad else 2


def _ship_policy(args) -> int:
    import shlex

    from models.play.ship import ship_policy

    command = shlex.join(["qmix-workbench", "ship-policy", str(args.checkpoint), "--name", args.name, "--episodes",
                          str(args.episodes), "--seed", str(args.seed)] + (["--out", args.out] if args.out else []))
    if args.trained_with:
        command = f"{args.trained_with}\n{command}"
    if args.out:  # a policies directory: never inside a run or sweep, nor the checkpoint's own place
        from models.files.guard import Output, check_outputs

        check_outputs([Output("--out", args.out, directory=True)], inputs=[args.checkpoint])
    print(f"evaluating {args.checkpoint} over {args.episodes} greedy episodes ...", file=sys.stderr)
    card = ship_policy(args.checkpoint, args.name, args.episodes, args.seed, out_dir=args.out, command=command,
                       log=lambda m: print(m, file=sys.stderr), force=args.force)
    print(f"wrote {card.weights} ({card.weights.stat().st_size:,} bytes) and {card.path.name}")
    print(card.summary() + f", mean return {card.mean_return:.2f}, mean enemies killed {card.dead_enemies:.1f}")
    return 0


def _replay(args) -> int:
    from models.files.episode_file import load_episode

    load_episode(args.file)  # a bad file is one line here, before any window opens
    from workbench.app import run_app

    return run_app(episode=args.file)


def _fork(args) -> int:
    from models.files.episode_file import load_episode
    from models.play.fork import fork

    action = args.action.strip().lower()
    if action != "greedy":
        try:
            action = int(action)
        except ValueError:
            raise ValueError(f'--action: expected an action index or "greedy", got {args.action!r}') from None
    if args.out:
        check_output(args.out, [args.file], args.force)
    ep = load_episode(args.file)
    r = fork(ep, args.step, args.agent, action, episodes=args.episodes, seed=args.seed)
    print(r.table())
    if args.out:
        print(f"wrote the fork's first continuation to {r.fork_episode.save(args.out)}")
    return 0


def _export(args) -> int:
    from workbench.export import export_episode

    out, fmt = (args.gif, "gif") if args.gif else (args.mp4, "mp4")
    check_output(out, [args.file], args.force, flag=f"--{fmt}")
    panels = [p.strip() for p in args.panels.split(",") if p.strip()]
    def progress(i, n):  # a long episode with every panel takes a while: say how far it is, on one line
        if i == n or i % max(1, n // 10) == 0:
            print(f"\rdrawing frame {i}/{n}", end="" if i < n else "\n", file=sys.stderr, flush=True)

    path, frames = export_episode(args.file, out, fmt=fmt, panels=panels, fps=args.fps, progress=progress)
    print(f"wrote {path} ({frames} frames)")
    return 0


def _tables(args) -> int:
    from pathlib import Path

    from models.files.loading import load_policy
    from models.play.tables import format_tables, format_tables_over_runs, matrix_game_tables, tables_over_runs
    from sims import list_matrix_games

    paths = args.checkpoint
    first = Path(paths[0])
    if len(paths) > 1 or (first / "sweep.toml").exists() or (first.is_dir() and not (first / "config.toml").exists()):
        from models.sweeps.compare import find_runs

        print(format_tables_over_runs(tables_over_runs(find_runs(paths))))
        return 0
    cfg, agent, mixer, meta = load_policy(paths[0])
    if meta.get("fallback"):  # every command that loads says what it loaded, and why
        print(meta["fallback"], file=sys.stderr)
    if cfg.env.map_name not in list_matrix_games():
        raise ValueError(f"{args.checkpoint} was trained on {cfg.env.map_name}, not a matrix game "
                         f"({', '.join(list_matrix_games())})")
    print(f"{meta['algorithm']} on {cfg.env.map_name} after {meta['t_env']:,} env steps")
    print(format_tables(matrix_game_tables(agent, mixer, cfg.env.map_name)))
    return 0


def _plot(args) -> int:
    import os

    from workbench.plot import plot_run

    out = args.out or os.path.join(args.run_dir, "curves.png")
    # the run is read; its directory takes the figure (the default) but never in place of one of its records
    check_output(out, [], args.force, owns=[args.run_dir])
    print(f"wrote {plot_run(args.run_dir, out)}")
    return 0


def _render(args) -> int:
    import numpy as np

    from sims import VecEnv
    from sims.render import Renderer

    check_output(args.out, [], args.force)
    env = VecEnv(args.map, 1, seed=args.seed, heuristic_ai=args.policy == "heuristic")
    rec = env.reset()
    rng = np.random.default_rng(args.seed)
    for _ in range(args.steps):
        acts = (rng.random(rec.avail.shape) * rec.avail).argmax(-1)
        rec = env.step(acts)
    r = Renderer(env.battle.scenario)
    r.save_png(r.frame(env.world, 0), args.out)
    print(f"wrote {args.out}")
    return 0





def check_output(out, inputs=(), force: bool = False, flag: str = "--out", owns=()):
    """An output file a command may write (models.files.guard: never an input nor inside one, nor inside a run or
    sweep directory it does not own, in a directory that exists, an existing file only with `force`). Checked
    before any work is done."""
    from models.files.guard import Output, check_outputs

    return check_outputs([Output(flag, out)], inputs, force, owns)[0]


def _show_defaults(parser) -> None:
    """Every option's --help says its default (the ones whose text does not already say it)."""
    for action in parser._actions:
        d = action.default
        if action.dest == "help" or d is None or d is False or d == [] or d == argparse.SUPPRESS:
            continue
        text = action.help or ""
        if "default" not in text.lower():
            action.help = (text + " " if text else "") + "(default: %(default)s)"


if __name__ == "__main__":
    sys.exit(main())
