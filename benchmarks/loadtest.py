"""Load test: N concurrent gradio_client sessions send a mix of every tab's requests.

    python -m benchmarks.loadtest --sessions 20 --duration 60 [--url http://127.0.0.1:7860/]

Without --url it launches the app itself on a free localhost port. Only localhost is allowed.
Prints requests served, errors, and p50/p95 latency (ms) per request kind and overall.
"""
from __future__ import annotations

import argparse
import json
import random
import threading
import time
from collections import defaultdict
from urllib.parse import urlparse

from benchmarks.workload import REQUESTS, percentile, rss_kib, running_app


def _session(url: str, seed: int, stop_at: float, max_requests: int, out: dict, lock) -> None:
    from gradio_client import Client
    rng = random.Random(seed)
    try:
        client = Client(url, verbose=False)
    except Exception as exc:  # noqa: BLE001  (counted, reported)
        with lock:
            out["errors"].append(f"connect: {exc}")
        return
    done = 0
    while time.monotonic() < stop_at and done < max_requests:
        kind = rng.choice(sorted(REQUESTS))
        t0 = time.perf_counter()
        try:
            REQUESTS[kind](client, rng)
            ok = True
        except Exception as exc:  # noqa: BLE001
            ok = False
            with lock:
                out["errors"].append(f"{kind}: {' '.join(str(exc).split())[:200]}")
        ms = (time.perf_counter() - t0) * 1000.0
        with lock:
            if ok:
                out["latency"][kind].append(ms)
        done += 1


def run(url: str, sessions: int, duration: float, max_requests: int) -> dict:
    host = urlparse(url).hostname or ""
    if not (host == "localhost" or host.startswith("127.") or host == "::1"):
        raise SystemExit(f"refusing to load-test {host!r}: only localhost targets are allowed")
    out = {"latency": defaultdict(list), "errors": []}
    lock = threading.Lock()
    stop_at = time.monotonic() + duration
    threads = [threading.Thread(target=_session, args=(url, i, stop_at, max_requests, out, lock))
               for i in range(sessions)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 600)
    wall = time.perf_counter() - t0
    all_ms = [ms for v in out["latency"].values() for ms in v]
    report = {"sessions": sessions, "duration_s": round(wall, 1), "served": len(all_ms),
              "errors": len(out["errors"]), "p50_ms": round(percentile(all_ms, 50), 1),
              "p95_ms": round(percentile(all_ms, 95), 1),
              "per_kind": {k: {"n": len(v), "p50_ms": round(percentile(v, 50), 1),
                               "p95_ms": round(percentile(v, 95), 1)}
                           for k, v in sorted(out["latency"].items())},
              "first_errors": out["errors"][:5]}
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of load")
    ap.add_argument("--max-requests", type=int, default=200, help="per session, upper bound")
    ap.add_argument("--url", help="a running app on localhost (default: launch one)")
    args = ap.parse_args()
    if args.url:
        report = run(args.url, args.sessions, args.duration, args.max_requests)
    else:
        with running_app() as server:
            report = run(server.url, args.sessions, args.duration, args.max_requests)
            report["server_rss_mib_end"] = round(rss_kib(server.process.pid) / 1024, 1)
    print(f"sessions {report['sessions']}  wall {report['duration_s']} s  served "
          f"{report['served']}  errors {report['errors']}  p50 {report['p50_ms']} ms  "
          f"p95 {report['p95_ms']} ms")
    for kind, row in report["per_kind"].items():
        print(f"  {kind:10s} n={row['n']:4d}  p50 {row['p50_ms']:8.1f} ms  p95 {row['p95_ms']:8.1f} ms")
    for err in report["first_errors"]:
        print(f"  error: {err}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
