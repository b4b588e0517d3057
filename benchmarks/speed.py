"""Speed targets of issue 14, all printed by one run:

    python -m benchmarks.speed [--runs 5] [--repeats 5] [--no-server] [--out FILE]

* ``python -m engine caption IMAGE``: whole-process wall time (median of ``--runs``);
* ``python -m engine caption FOLDER``: images/s after start-up (from the first JSON line to
  the last, over the bundled 284-image gallery);
* gallery indexing: images/s of :meth:`RetrievalPipeline.index_folder` over a copy of that
  gallery without its shipped index (models loaded and warmed first);
* the app (``python app.py``): cold start to the first answered ``/caption``, each tab's main
  call p50 (engine in-process and through ``gradio_client``) and the server's peak RSS, as
  measured by :mod:`benchmarks.bench`.

The machine is shared: the 1-minute load average is printed beside every figure (taken when
that measurement starts), and the figures are medians of several runs.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
GALLERY = ROOT / "assets" / "galleries" / "default"
CAPTION_IMAGE = ROOT / "assets" / "examples" / "cat.jpg"
#: The issue's targets: name -> (comparison, value, unit).
TARGETS = {"cli_single_s": ("<=", 4.0, "s"), "cli_batch_ips": (">=", 30.0, "images/s"),
           "index_ips": (">=", 40.0, "images/s"), "cold_start_s": ("<=", 6.0, "s"),
           "app_peak_rss_mib": ("<=", 1337.0, "MiB")}


def _env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def load() -> float:
    """The 1-minute load average now."""
    return os.getloadavg()[0]


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def cli_single(runs: int) -> dict[str, Any]:
    """Wall seconds of ``python -m engine caption cat.jpg`` as a whole process, ``runs`` times,
    and its CPU seconds (less sensitive than wall time to other jobs on the machine)."""
    walls, cpus, loads = [], [], []
    for _ in range(runs):
        loads.append(load())
        t0, c0 = time.perf_counter(), _children_cpu()
        subprocess.run([sys.executable, "-m", "engine", "caption", str(CAPTION_IMAGE)],
                       cwd=ROOT, env=_env(), check=True, capture_output=True)
        walls.append(time.perf_counter() - t0)
        cpus.append(_children_cpu() - c0)
    return {"median_s": statistics.median(walls), "runs_s": walls,
            "median_cpu_s": statistics.median(cpus), "runs_cpu_s": cpus, "load": loads}


def cli_batch(folder: Path = GALLERY, runs: int = 1) -> dict[str, Any]:
    """Images/s of ``python -m engine caption FOLDER`` after start-up: (N - 1) lines divided by
    the time from the first JSON line to the last (the model loading is before the first)."""
    rates, loads, totals = [], [], []
    for _ in range(runs):
        loads.append(load())
        t0 = time.perf_counter()
        files = [str(p) for p in sorted(folder.iterdir())
                 if p.suffix.lower() in (".jpg", ".jpeg", ".png")]  # given one by one: the
        proc = subprocess.Popen([sys.executable, "-m", "engine", "caption", *files],  # old CLI
                                cwd=ROOT, env=_env(), stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL, text=True)
        stamps = [time.perf_counter() for line in proc.stdout if line.startswith("{")]
        proc.wait()
        totals.append(time.perf_counter() - t0)
        rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return {"median_ips": statistics.median(rates), "runs_ips": rates, "images": len(stamps),
            "process_s": totals, "load": loads}


def index_rate(runs: int = 3) -> dict[str, Any]:
    """Images/s of indexing the default gallery's images from scratch, in this process."""
    import torch
    from engine.factory import get_pipeline
    from engine.inputs.files import image_files
    pipe = get_pipeline("retrieve")
    pipe.encoder.prepare()
    rates, loads = [], []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "gallery"
        folder.mkdir()
        for p in image_files(GALLERY):
            shutil.copy(p, folder / p.name)
        n = len(image_files(folder))
        warm = Path(tmp) / "warm"
        warm.mkdir()
        for p in image_files(GALLERY)[:16]:
            shutil.copy(p, warm / p.name)
        pipe.index_folder(warm, cache=Path(tmp) / "warm-cache")  # warm-up
        for r in range(runs):
            loads.append(load())
            t0 = time.perf_counter()
            index, _ = pipe.index_folder(folder, cache=Path(tmp) / f"cache{r}")
            rates.append(len(index) / (time.perf_counter() - t0))
    return {"median_ips": statistics.median(rates), "runs_ips": rates, "images": n,
            "torch_threads": torch.get_num_threads(), "load": loads}


def run(runs: int, repeats: int, server: bool) -> dict[str, Any]:
    res: dict[str, Any] = {"time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                           "cpus": os.cpu_count(), "load_start": load()}
    res["cli_single"] = cli_single(runs)
    res["cli_batch"] = cli_batch(runs=max(1, runs // 2))
    res["index"] = index_rate(max(1, runs // 2))
    from benchmarks import bench
    res["load_app"] = load()
    res["app"] = bench.run(repeats, server=server, threads=1)
    res["load_end"] = load()
    return res


def format_report(res: dict[str, Any]) -> str:
    app = res["app"]
    figures = {"cli_single_s": res["cli_single"]["median_s"],
               "cli_batch_ips": res["cli_batch"]["median_ips"],
               "index_ips": res["index"]["median_ips"],
               "cold_start_s": (app.get("cold_start") or {}).get("first_caption_s"),
               "app_peak_rss_mib": app["peak_rss_mb"].get("server")}
    loads = {"cli_single_s": res["cli_single"]["load"], "cli_batch_ips": res["cli_batch"]["load"],
             "index_ips": res["index"]["load"], "cold_start_s": [res["load_app"]],
             "app_peak_rss_mib": [res["load_app"]]}
    labels = {"cli_single_s": "python -m engine caption IMAGE (whole process, median)",
              "cli_batch_ips": f"python -m engine caption FOLDER ({res['cli_batch']['images']} "
                               f"images, after start-up)",
              "index_ips": f"gallery indexing ({res['index']['images']} images, from scratch)",
              "cold_start_s": "app cold start -> first /caption answered",
              "app_peak_rss_mib": "app peak RSS (after all the tab calls)"}
    lines = [f"speed benchmark {res['time_utc']}, {res['cpus']} CPUs, load average "
             f"{res['load_start']:.1f} at start, {res['load_end']:.1f} at end", ""]
    head = f"{'target':<62} {'figure':>10}  {'goal':<16} {'load (1 min)'}"
    lines += [head, "-" * len(head)]
    for key, (op, goal, unit) in TARGETS.items():
        value = figures[key]
        shown = "n/a" if value is None else f"{value:.2f}"
        ok = "" if value is None else (" ok" if (value <= goal if op == "<=" else value >= goal)
                                       else " MISSED")
        lines.append(f"{labels[key]:<62} {shown:>10}  {op} {goal:g} {unit:<9} "
                     f"{', '.join(f'{x:.1f}' for x in loads[key])}{ok}")
    lines.append(f"  (single caption: median CPU {res['cli_single']['median_cpu_s']:.2f} s of user + "
                 f"system time)")
    lines += ["", "each tab's main call (p50 ms; benchmarks.bench, 1 torch thread):"]
    for name, paths in app["latency_ms"].items():
        lines.append(f"  {name:<18} " + "  ".join(f"{p} {st['p50_ms']:.1f}"
                                                  for p, st in paths.items()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.speed", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5,
                        help="whole-process runs of the single-image CLI (default 5; half as "
                             "many batch and indexing runs)")
    parser.add_argument("--repeats", type=int, default=5,
                        help="timed calls per tab (benchmarks.bench --repeats, default 5)")
    parser.add_argument("--no-server", action="store_true",
                        help="skip the launched app (no cold start, app p50 or server RSS)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.repeats < 1:
        parser.error("--runs and --repeats must be at least 1")
    res = run(args.runs, args.repeats, server=not args.no_server)
    print(format_report(res))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
