"""Soak test: many mixed requests in a row; memory and temporary files must stay bounded.

    python -m benchmarks.soak --requests 500

Launches the app on a free localhost port with its own Gradio temp folder, sends the requests
from one gradio_client session, and prints the server's RSS and the number of files in the temp
folder at the start (after a warm-up request of each kind) and at the end.
"""
from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from benchmarks.workload import REQUESTS, rss_kib, running_app


def count_files(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.is_file())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--requests", type=int, default=500)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from gradio_client import Client
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="soak_gradio_") as tmp:
        temp_dir = Path(tmp)
        with running_app(env={"GRADIO_TEMP_DIR": str(temp_dir)}) as server:
            client = Client(server.url, verbose=False)
            for kind in sorted(REQUESTS):  # warm-up: models loaded, caches created
                REQUESTS[kind](client, rng)
            start = {"rss_mib": rss_kib(server.process.pid) / 1024, "temp_files": count_files(temp_dir)}
            errors, t0 = 0, time.perf_counter()
            for i in range(args.requests):
                try:
                    REQUESTS[rng.choice(sorted(REQUESTS))](client, rng)
                except Exception as exc:  # noqa: BLE001  (counted)
                    errors += 1
                    print(f"request {i}: {' '.join(str(exc).split())[:160]}")
            end = {"rss_mib": rss_kib(server.process.pid) / 1024, "temp_files": count_files(temp_dir)}
            wall = time.perf_counter() - t0
    report = {"requests": args.requests, "errors": errors, "wall_s": round(wall, 1),
              "rss_mib_start": round(start["rss_mib"], 1), "rss_mib_end": round(end["rss_mib"], 1),
              "temp_files_start": start["temp_files"], "temp_files_end": end["temp_files"]}
    print(f"requests {report['requests']}  errors {errors}  wall {report['wall_s']} s")
    print(f"server RSS   start {report['rss_mib_start']} MiB  end {report['rss_mib_end']} MiB")
    print(f"temp files   start {report['temp_files_start']}  end {report['temp_files_end']}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
