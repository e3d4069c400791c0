"""The `sweep` and `compare` commands of `qmix-workbench`: argument parsing and printing over
`models.sweeps.sweep` and `models.sweeps.compare` (which hold the logic)."""
from __future__ import annotations

import math
import sys

EXIT_RUNS_FAILED = 1  # the sweep ran, but some run failed (its error is printed; a rerun retries it)
EXIT_INTERRUPTED = 130


def add_parsers(sub) -> dict:
    """Add the subcommands to `sub`; their handlers by name."""
    s = sub.add_parser("sweep", help="train presets x seeds x a grid of values, resumably, into one directory",
                       description="Runs every combination of --preset, --seeds and --grid as ordinary run "
                                   "directories under --out, with sweep.toml describing the sweep. Rerunning "
                                   "the same command (or --resume SWEEP_DIR) skips finished runs and resumes "
                                   "the others from their checkpoints.")
    s.add_argument("--preset", dest="presets", action="append", default=[], metavar="NAME",
                   help="preset (see `presets`) or TOML file; repeatable, or comma-separated")
    s.add_argument("--seeds", default=None,
                   help="seeds: 0,1,2 or a range 0-4 (default 0); more seeds than the sweep in --out has grow it")
    s.add_argument("--grid", action="append", default=[], metavar="SECTION.KEY=V1,V2,...",
                   help="a key and the values to sweep over, e.g. --grid learner.lr=0.001,0.0005 (repeatable)")
    s.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="a fixed override for every run, e.g. --set run.t_max=500000 (repeatable)")
    s.add_argument("--out", metavar="SWEEP_DIR", help="the sweep directory (new, empty, or this sweep's own)")
    s.add_argument("--resume", metavar="SWEEP_DIR", help="go on with the sweep in SWEEP_DIR, as its sweep.toml says")
    s.add_argument("--backend", choices=["local", "ray"], default=None,
                   help="local: a pool of processes on this machine (default); ray: Ray Tune")
    s.add_argument("--address", default=None, help="with --backend ray: auto (a running cluster) or "
                                                   "ray://HOST:PORT; default: start Ray on this machine")
    s.add_argument("--workers", type=int, default=None,
                   help="runs at once (default: the cores divided by the cores one run uses)")
    s.add_argument("--threads", type=int, default=None,
                   help="threads per process of a run (default 1; a run with a learner process has two)")
    s.add_argument("--final-episodes", type=int, default=None,
                   help="greedy episodes evaluated at the end of each run, into final_eval.json (default 200; "
                        "0 skips)")
    s.add_argument("--absolute-factor", type=int, default=None,
                   help="the absolute metric: each run's best checkpoint (by its evaluations) re-evaluated with this "
                        "many times its run.test_episodes, into absolute_eval.json (default 10; 0 skips)")
    c = sub.add_parser("compare", help="compare runs across seeds: a markdown table, and curves with bands to a PNG")
    c.add_argument("paths", nargs="+", metavar="SWEEP_DIR|RUN_DIR|FILE.json", help="sweep directories and/or run directories")
    c.add_argument("--metric", default=None,
                   help="an evaluation column of metrics.csv (default: each map's own, test_win_rate for a battle, "
                        "test_return for a matrix game) or a "
                        "training-episode one, as means over 100 episodes (overestimation: Qtot - discounted return; "
                        "return; won)")
    c.add_argument("--stat", choices=["median", "mean", "iqm"], default="median",
                   help="the curves and the table at --at: median and interquartile range (default, as SMAC "
                        "reports), or the mean or the interquartile mean with a 95%% bootstrap interval")
    c.add_argument("--at", default=None, metavar="STEPS,...",
                   help="env steps to tabulate the metric at, e.g. 500000,1000000 (default: a quarter, half "
                        "and all of the shortest run)")
    c.add_argument("--out", default=None, metavar="FIG.png", help="also draw the curves to this PNG")
    c.add_argument("--out-stats", default=None, metavar="FIG.png",
                   help="also draw the final metric's performance profile and the probability of improvement "
                        "between groups, with their 95%% intervals, to this PNG")
    c.add_argument("--export-marl-eval", default=None, metavar="FILE.json",
                   help="also write the runs in marl-eval's JSON layout (a .json given among the paths is such a "
                        "file, imported and drawn beside the runs)")
    c.add_argument("--per-run", action="store_true",
                   help="also a row per run: env steps and wall time to its first evaluation >= 50%% and >= 80%%, "
                        "and its final evaluation")
    c.add_argument("--force", action="store_true",
                   help="replace existing files at --out, --out-stats and --export-marl-eval (never an input)")
    return {"sweep": sweep_command, "compare": compare_command}


def _out(msg: str) -> None:
    print(msg, flush=True)


def sweep_command(args) -> int:
    from models.sweeps.sweep import SweepError, SweepSpec, parse_grid, parse_seeds, plan_sweep, run_sweep

    if args.workers is not None and args.workers < 1:
        raise SweepError(f"--workers: expected a whole number >= 1, got {args.workers} (leave it out to size the pool "
                         f"to the machine)")
    if args.resume:
        given = [o for o, v in (("--preset", args.presets), ("--grid", args.grid), ("--set", args.overrides),
                                ("--seeds", args.seeds)) if v]
        if given:
            raise SweepError(f"--resume takes the sweep's own presets, seeds, grid and overrides from its "
                             f"sweep.toml; drop {', '.join(given)}")
        from pathlib import Path

        if args.out and Path(args.out).resolve() != Path(args.resume).resolve():
            raise SweepError("--resume SWEEP_DIR writes into SWEEP_DIR; drop --out")
        old = SweepSpec.read(args.resume)
        spec = plan_sweep(old.presets, old.seeds, old.grid, old.fixed,
                          threads=old.threads if args.threads is None else args.threads,
                          final_episodes=old.final_episodes if args.final_episodes is None else args.final_episodes,
                          absolute_factor=old.absolute_factor if args.absolute_factor is None else args.absolute_factor,
                          backend=args.backend or old.backend,
                          address=args.address if args.address is not None else
                          (old.address if (args.backend or old.backend) == "ray" else None),
                          workers=old.workers if args.workers is None else args.workers)
        out = args.resume
    else:
        if not args.out:
            raise SweepError("sweep needs --out SWEEP_DIR (or --resume SWEEP_DIR)")
        presets = [p.strip() for item in args.presets for p in item.split(",") if p.strip()]
        seeds, grid = parse_seeds(args.seeds or "0"), parse_grid(args.grid)
        n = len(presets) * len(seeds) * math.prod(len(v) for v in grid.values())
        if n > 50:  # each run's config is built and checked before anything runs: a long plan takes seconds
            _out(f"planning {n:,} runs ...")
        spec = plan_sweep(presets, seeds, grid, args.overrides,
                          threads=1 if args.threads is None else args.threads,
                          final_episodes=200 if args.final_episodes is None else args.final_episodes,
                          absolute_factor=10 if args.absolute_factor is None else args.absolute_factor,
                          backend=args.backend or "local", address=args.address,
                          workers=0 if args.workers is None else args.workers)
        out = args.out
    res = run_sweep(spec, out, log=_out)
    done = [r for r in res.results if r.finished]
    _out(f"{len(done)} of {len(res.results)} run(s) finished in {res.sweep_dir}"
         + (f"; compare them with: qmix-workbench compare {res.sweep_dir}" if done else ""))
    if res.failed:
        for r in res.failed:
            print(f"qmix-workbench: run {r.name} failed: {r.error}", file=sys.stderr)
        print("qmix-workbench: rerun the same command to retry the failed runs", file=sys.stderr)
        return EXIT_RUNS_FAILED
    if res.interrupted or res.unfinished:
        print(f"qmix-workbench: sweep interrupted; {len(res.unfinished)} run(s) unfinished (saved where they "
              f"stopped); go on with: qmix-workbench sweep --resume {res.sweep_dir}", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 0


def compare_command(args) -> int:
    from models.sweeps.compare import CompareError, compare_runs

    at = None
    if args.at:
        try:
            at = [int(float(s)) for s in args.at.split(",") if s.strip()]
        except ValueError:
            raise CompareError(f"--at {args.at!r}: expected env steps separated by commas, e.g. "
                               f"500000,1000000") from None
    from models.files.guard import Output, check_outputs

    # before any work: an output that cannot be written, or would replace or write into an input or earlier work,
    # is refused now
    check_outputs([Output(f, o) for f, o in (("--out", args.out), ("--out-stats", args.out_stats),
                                             ("--export-marl-eval", args.export_marl_eval)) if o],
                  args.paths, args.force)
    c = compare_runs(args.paths, metric=args.metric, stat=args.stat, at=at)
    print(c.table())
    print()
    print(c.aggregate_table())
    print()
    print(c.improvement_table())
    if args.per_run:
        print()
        print(c.runs_table())
    if args.export_marl_eval:
        from models.sweeps.marl_eval import export_marl_eval

        print(f"wrote {export_marl_eval(c, args.export_marl_eval)}")
    if args.out:
        from workbench.plot import plot_compare

        print(f"wrote {plot_compare(c, args.out)}")
    if args.out_stats:
        from workbench.plot import plot_statistics

        print(f"wrote {plot_statistics(c, args.out_stats)}")
    return 0
