"""What a checkpoint costs: size on disk and seconds to write and to load, with and without the replay buffer.

Usage: python benchmarks/bench_checkpoint.py [--preset qmix_2c_vs_64zg] [--episodes N]
Builds the preset's trainer (learner process included), fills its buffer to N episodes (default: the
preset's whole buffer_size) by copying collected rounds, and times `Trainer.save` as a periodic save
(t*.pt without the buffer, latest.pt a hard link to it) and as a graceful stop's save (latest.pt with the
buffer), then `load_checkpoint` of each (digest check included). Prints a table.
"""
import argparse
import os
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="qmix_2c_vs_64zg")
    ap.add_argument("--episodes", type=int, default=0)
    a = ap.parse_args()

    from models.files.checkpoint import load_checkpoint
    from models.config import load_config
    from models.training.learner_host import compact
    from models.training.train import Trainer

    tmp = tempfile.mkdtemp(prefix="qmix-bench-ckpt-")
    cfg = load_config(a.preset, ["run.save_interval=0", "run.test_interval=100000000"])
    tr = Trainer(cfg, run_dir=os.path.join(tmp, "run"), log=lambda *x: None)
    target = a.episodes or cfg.learner.buffer_size
    batch = tr.runner.run(1.0, tr.rng)  # one real round, stored again and again: the size is what counts
    data = compact(batch)
    rounds = -(-target // batch.size)
    for _ in range(rounds):
        tr.host.submit(data)
    tr.catch_up()
    rows = []
    for label, with_buffer in (("periodic (no buffer)", False), ("graceful stop (with buffer)", True)):
        t0 = time.perf_counter()
        path = tr.save(with_buffer=with_buffer)
        t_save = time.perf_counter() - t0
        f = path.parent / "latest.pt"
        t0 = time.perf_counter()
        meta, tensors = load_checkpoint(f)
        t_load = time.perf_counter() - t0
        n = int(tensors["buffer"]["size"]) if "buffer" in tensors else 0
        rows.append((label, n, os.path.getsize(f) / 2**20, t_save, t_load))
        del tensors
    tr.close()
    print(f"# {os.cpu_count()} cores, preset {a.preset}, buffer filled to {min(target, cfg.learner.buffer_size)} "
          f"episodes of {batch.max_len}-step rounds")
    print("| save | episodes in latest.pt | latest.pt size | save s | load s (digest checked) |")
    print("|---|---:|---:|---:|---:|")
    for label, n, mib, ts, tl in rows:
        print(f"| {label} | {n:,} | {mib:,.1f} MiB | {ts:.2f} | {tl:.2f} |")


if __name__ == "__main__":
    main()
