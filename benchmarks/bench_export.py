"""What exporting an episode costs: frames, seconds and MB on disk, GIF and MP4, arena alone and beside panels.

Usage: python benchmarks/bench_export.py [--panels arena,qvalues,qtot] [--fps 8] [--out DIR]
Plays one 2c_vs_64zg battle with an untrained RES-QMIX policy (the panels then show real network values) that
lasts the map's 400-step limit: the agents mostly walk at random, attack with probability 3%, and their health
is topped up before each step, so the colossi live to the limit while the zerglings swarm them and die under the
beams (random play loses in ~25 steps; healed, it wins in ~60). Records it with the episode recorder, then times
`export_episode` for each format and panel set. Prints a table.
"""
import argparse
import os
import tempfile
import time

os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def long_episode(seed: int = 0, attack_p: float = 0.03):
    import numpy as np
    import torch

    from models.config import load_config
    from models.core.envs import make_env_for
    from models.files.episode_file import EpisodeRecorder
    from models.core.networks import build_networks
    from models.core.probe import Probe
    from models.files.episode_file import episode_header
    from models.core.runner import Runner

    cfg = load_config("res_qmix_2c_vs_64zg")
    env = make_env_for(cfg, 1, seed, autoreset=False)
    dims = {"map_name": cfg.env.map_name, "n_agents": env.n_agents, "n_actions": env.n_actions,
            "obs_dim": env.obs_dim, "state_dim": env.state_dim, "mixer": cfg.algo.mixer,
            "agent_hidden": cfg.algo.agent_hidden, "mixing_embed": cfg.algo.mixing_embed,
            "hypernet_embed": cfg.algo.hypernet_embed}
    torch.manual_seed(seed)
    agent, mixer = build_networks(cfg, dims, "cpu")
    runner = Runner(env, agent, torch.device("cpu"), cfg.learner.gamma)
    runner.recorder = EpisodeRecorder(0)
    rng = np.random.default_rng(seed)
    n = env.n_agents

    def hook(_runner, t, rec, q, acts):
        w = env.world
        w.health[:, :n] = w.max_health[:n]
        w.shield[:, :n] = w.max_shield[:n]
        moves = rec.avail.copy()
        moves[..., :2] = moves[..., 6:] = False
        stuck = ~moves.any(-1)
        moves[stuck] = rec.avail[stuck]
        walk = (rng.random(moves.shape) * moves).argmax(-1)
        return np.where(rng.random(walk.shape) < attack_p, acts, walk)

    runner.hook = hook
    runner.run(1.0, rng)
    hdr = episode_header(cfg, "bench", checkpoint=None, t_env=0, epsilon=1.0, seed=seed, episode_index=0,
                         algorithm="RES-QMIX", dims=dims)
    return runner.recorder.finish(Probe(agent, mixer, cfg.algo.res_beta), hdr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--panels", default="arena,qvalues,qtot", help="the panel set timed besides arena alone")
    ap.add_argument("--fps", type=float, default=8.0)
    ap.add_argument("--out", default=None, help="keep the files here (default: a temporary directory)")
    a = ap.parse_args()

    from workbench.export import export_episode

    out = a.out or tempfile.mkdtemp(prefix="qmix-bench-export-")
    os.makedirs(out, exist_ok=True)
    ep = long_episode()
    print(f"episode: {ep.length} steps, {int((~ep.arrays['alive'][-1, ep.n_agents:]).sum())} enemies killed")
    rows = []
    for panels in ("arena", a.panels):
        for fmt in ("gif", "mp4"):
            path = os.path.join(out, f"{panels.replace(',', '+')}.{fmt}")
            t0 = time.perf_counter()
            _, frames = export_episode(ep, path, fmt=fmt, panels=panels, fps=a.fps)
            dt = time.perf_counter() - t0
            rows.append((fmt, panels, _frame_size(path), frames, dt, os.path.getsize(path) / 1e6))
    print(f"{'format':6s} {'panels':24s} {'frame':>10s} {'frames':>6s} {'seconds':>8s} {'ms/frame':>8s} {'MB':>7s}")
    for fmt, panels, size, frames, dt, mb in rows:
        print(f"{fmt:6s} {panels:24s} {size:>10s} {frames:6d} {dt:8.1f} {1e3 * dt / frames:8.1f} {mb:7.2f}")
    print(f"files in {out}")


def _frame_size(path) -> str:
    import imageio.v2 as iio

    h, w = iio.get_reader(path).get_data(0).shape[:2]
    return f"{w}x{h}"


if __name__ == "__main__":
    main()
