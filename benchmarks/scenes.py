"""Scenes per second of the scene world's renderer (and of sampling + rendering) on one core.

    python -m benchmarks.scenes [--n 200] [--size 128] [--supersample 2]

Renders ``--n`` sampled scenes (seeds 0..n-1, sampled once before timing) and prints one JSON
line per measurement: scenes/s by wall clock and by this process's CPU time (the CPU-time
figure is what one free core would give when other processes share the machine), plus the
same for sampling a scene (with its visibility check) and rendering it, and for CLEVR-Change
pairs (two renders each).
"""
from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _timed(fn, n: int) -> dict:
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"n": n, "per_s_wall": round(n / wall, 1), "per_s_cpu": round(n / cpu, 1)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--supersample", type=int, default=2)
    args = ap.parse_args(argv)
    import torch
    torch.set_num_threads(1)
    from engine.scenes.changes import sample_change_pair
    from engine.scenes.render import render
    from engine.scenes.sampling import sample_scene
    scenes = [sample_scene(i) for i in range(args.n)]
    render(scenes[0], args.size, args.supersample)  # warm-up (ray directions are cached)
    common = {"size": args.size, "supersample": args.supersample,
              "mean_objects": round(sum(map(len, scenes)) / len(scenes), 2)}
    print(json.dumps({"what": "render", **common,
                      **_timed(lambda i: render(scenes[i], args.size, args.supersample),
                               args.n)}))
    print(json.dumps({"what": "sample+render", **common,
                      **_timed(lambda i: render(sample_scene(10_000 + i), args.size,
                                                args.supersample), args.n)}))
    n_pairs = max(1, args.n // 4)
    print(json.dumps({"what": "change pair (sample + 2 renders)", **common,
                      **_timed(lambda i: sample_change_pair(20_000 + i).render(
                          args.size, args.supersample), n_pairs)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
