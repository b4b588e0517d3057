"""Latency, cold start and memory of each tab's main call.

    python -m benchmarks.bench [--repeats N] [--out FILE] [--threads N] [--no-server]

For every entry of :data:`MAIN_CALLS` it times the engine pipeline called directly and the same
request end-to-end through ``gradio_client`` against ``python app.py`` launched in a subprocess
(offline, free localhost port), and reports p50 / p95 over ``--repeats`` runs after one warm-up
call (whose time is shown as "first"). It also measures the app's cold start (process start to
the first ``/caption`` answer) and the peak RSS of this process and of the server.

A new tab adds its main call in one place: one :class:`MainCall` entry in ``MAIN_CALLS``.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "assets" / "examples"
FEWSHOT = EXAMPLES / "fewshot"
CAPTION_IMAGE = EXAMPLES / "cat.jpg"
QUERY_IMAGES = sorted((FEWSHOT / "query").glob("*.jpg"))
#: Long side of support images as the Few-shot tab keeps them (demos.common.STATE_IMAGE_SIDE).
SUPPORT_SIDE = 384


@dataclass(frozen=True)
class MainCall:
    """One tab's main call, timed two ways.

    Attributes:
        direct: zero-argument callable running the engine pipeline in this process.
        client: callable given a ``gradio_client.Client`` (one session) that makes the same
            request through the app's API; None to skip the end-to-end timing.
        note: what is being timed, shown under the table.
    """

    direct: Callable[[], Any]
    client: Callable[[Any], Any] | None = None
    note: str = ""


# ---- inputs, loaded once ---------------------------------------------------------------------
@functools.cache
def _caption_inputs():
    from engine.inputs.images import load_image
    from engine.factory import get_pipeline
    return get_pipeline("caption"), load_image(CAPTION_IMAGE).image


@functools.cache
def _fewshot_inputs():
    from engine.factory import get_pipeline
    from engine.fewshot.support import read_support_folder
    from engine.inputs.images import load_image
    support = read_support_folder(FEWSHOT / "support", max_side=SUPPORT_SIDE)
    queries = [load_image(f).image for f in QUERY_IMAGES]
    return get_pipeline("fewshot", "efficientnet_lite0"), support, queries


# ---- the calls -------------------------------------------------------------------------------
def _caption_direct():
    pipe, image = _caption_inputs()
    return pipe(image, top_k=5)


def _caption_client(client):
    from gradio_client import handle_file
    return client.predict(handle_file(str(CAPTION_IMAGE)), "efficientnet_lite0", "beam", 0, 5,
                          api_name="/caption")


def _fewshot_direct(method: str):
    pipe, support, queries = _fewshot_inputs()
    pipe.clear_cache()  # time the support set's embedding too
    return pipe(support, queries, method=method)


def _fewshot_client(method: str, client):
    from gradio_client import handle_file
    if not getattr(client, "_bench_support_loaded", False):  # the session's support set
        client.predict(api_name="/fewshot_load_example")
        client._bench_support_loaded = True
    return client.predict([handle_file(str(p)) for p in QUERY_IMAGES], None, method,
                          "efficientnet_lite0", api_name="/fewshot_classify")


CHANGE_PAIR = (EXAMPLES / "changes" / "moved_cup_before.jpg",
               EXAMPLES / "changes" / "moved_cup_after.jpg")
EDIT_IMAGE, EDIT_TEXT = EXAMPLES / "cat.jpg", "make the cat purple"


@functools.cache
def _change_inputs():
    from engine.inputs.images import load_image
    from engine.factory import get_pipeline
    return get_pipeline("change"), [load_image(p).image for p in CHANGE_PAIR]


def _change_direct():
    pipe, (before, after) = _change_inputs()
    return pipe(before, after)


def _change_client(client):
    from gradio_client import handle_file
    return client.predict(*[handle_file(str(p)) for p in CHANGE_PAIR], "efficientnet_lite0",
                          api_name="/change")


@functools.cache
def _edit_inputs():
    from engine.inputs.images import load_image
    from engine.factory import get_pipeline
    return get_pipeline("edit"), load_image(EDIT_IMAGE).image


def _edit_direct():
    pipe, image = _edit_inputs()
    return pipe(image, EDIT_TEXT)


def _edit_client(client):
    from gradio_client import handle_file
    return client.predict(handle_file(str(EDIT_IMAGE)), EDIT_TEXT, "efficientnet_lite0", 20,
                          7.5, 1.5, 0, api_name="/edit")


RETRIEVE_IMAGE, RETRIEVE_TEXT = EXAMPLES / "cat.jpg", "in black and white"
SEGMENT = EXAMPLES / "segment"


@functools.cache
def _retrieve_inputs():
    from engine.factory import get_pipeline
    from engine.inputs.images import load_image
    pipe = get_pipeline("retrieve")
    return pipe, pipe.default_index(), load_image(RETRIEVE_IMAGE).image


def _retrieve_direct():
    pipe, index, image = _retrieve_inputs()
    return pipe(image, RETRIEVE_TEXT, index=index, top_k=10)


def _retrieve_client(client):
    from gradio_client import handle_file
    return client.predict(handle_file(str(RETRIEVE_IMAGE)), RETRIEVE_TEXT, 0.5, 10,
                          "efficientnet_lite0", api_name="/retrieve")


@functools.cache
def _segment_inputs():
    from engine.factory import get_pipeline
    from engine.inputs.images import load_image, load_mask
    support = load_image(SEGMENT / "support.jpg").image
    return (get_pipeline("segment"), [(support, load_mask(SEGMENT / "support_mask.png",
                                                          size=support.size))],
            load_image(SEGMENT / "query.jpg").image)


def _segment_direct():
    pipe, support, query = _segment_inputs()
    return pipe(support, query)


def _segment_client(client):
    from gradio_client import handle_file
    editor = {"background": handle_file(str(SEGMENT / "support.jpg")),
              "layers": [handle_file(str(SEGMENT / "support_layer.png"))], "composite": None}
    return client.predict(editor, None, None, None, None, handle_file(str(SEGMENT / "query.jpg")),
                          "efficientnet_lite0", 0.5, api_name="/segment")


_FEWSHOT_NOTE = ("fewshot/*: 2 query photos vs the example cat/coffee support set (3 shots "
                 "each);\n    direct embeds the support set on every call, the app's pipeline "
                 "caches its features\n    (so 'app' p50/p95 exclude support embedding)")

#: Each tab's main call. Add a tab here: name -> MainCall(direct, client, note).
MAIN_CALLS: dict[str, MainCall] = {
    "caption": MainCall(_caption_direct, _caption_client,
                        "caption: efficientnet_lite0 tags + sentence + CAM of "
                        "assets/examples/cat.jpg"),
    **{f"fewshot/{m}": MainCall(functools.partial(_fewshot_direct, m),
                                functools.partial(_fewshot_client, m), _FEWSHOT_NOTE)
       for m in ("protonet", "cosine", "linear")},
    "change": MainCall(_change_direct, _change_client,
                       "change: align + pixel/feature difference + naming of "
                       "assets/examples/changes/moved_cup_*"),
    "edit": MainCall(_edit_direct, _edit_client,
                     "edit: 'make the cat purple' on cat.jpg (localise with CAM + superpixels, "
                     "recolour)"),
    "retrieve": MainCall(_retrieve_direct, _retrieve_client,
                         "retrieve: cat.jpg + 'in black and white' against the bundled "
                         "284-image gallery (index cached)"),
    "segment": MainCall(_segment_direct, _segment_client,
                        "segment: PANet, 1 support (horse example) -> query, 448 px short side"),
}


# ---- measuring -------------------------------------------------------------------------------
def time_call(fn: Callable[[], Any], repeats: int) -> dict[str, float]:
    """Time ``fn`` once as a warm-up, then ``repeats`` times.

    Returns:
        {"first_ms", "p50_ms", "p95_ms", "mean_ms", "n"} (milliseconds of wall time).
    """
    t0 = time.perf_counter()
    fn()
    first = (time.perf_counter() - t0) * 1000.0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    arr = np.asarray(times)
    return {"first_ms": first, "p50_ms": float(np.percentile(arr, 50)),
            "p95_ms": float(np.percentile(arr, 95)), "mean_ms": float(arr.mean()),
            "n": repeats}


def self_peak_rss_mb() -> float:
    """Peak RSS of this process (ru_maxrss is KiB on Linux, bytes on macOS), in MiB."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0


def bench_server(calls: dict[str, MainCall], repeats: int,
                 env: dict[str, str] | None = None) -> dict[str, Any]:
    """Launch the app, measure its cold start, time the calls through gradio_client.

    Args:
        calls: the main calls; those with a ``client`` are timed.
        repeats: timed runs per call.
        env: extra environment variables for the server (e.g. OMP_NUM_THREADS).

    Returns:
        {"cold_start": {...}, "latency": {name: stats}, "server_peak_rss_mb": float | None}.
    """
    sys.path.insert(0, str(ROOT / "tests"))
    from app_server import running_app
    from gradio_client import Client

    out: dict[str, Any] = {"latency": {}}
    with running_app(poll=0.1, env=env) as server:
        http_s = time.perf_counter() - server.started_at
        client = Client(server.url, verbose=False)
        _caption_client(client)
        first_s = time.perf_counter() - server.started_at
        out["cold_start"] = {"http_up_s": http_s, "first_caption_s": first_s}
        for name, call in calls.items():
            if call.client is None:
                continue
            session = Client(server.url, verbose=False)  # a fresh session per call
            out["latency"][name] = time_call(functools.partial(call.client, session), repeats)
        out["server_peak_rss_mb"] = server.peak_rss_mb()
    return out


def format_report(res: dict[str, Any]) -> str:
    """The readable table of :func:`run`'s result."""
    lines = [f"benchmark: {res['meta']['repeats']} timed runs after 1 warm-up, "
             f"{res['meta']['cpu_count']} CPUs, torch threads {res['meta']['torch_threads']}, "
             f"python {res['meta']['python']}, load average {res['meta']['load_avg_1m_start']:.1f} "
             f"at start", ""]
    head = f"{'call':<18} {'path':<7} {'first ms':>9} {'p50 ms':>9} {'p95 ms':>9}"
    lines += [head, "-" * len(head)]
    for name, paths in res["latency_ms"].items():
        for path, st in paths.items():
            lines.append(f"{name:<18} {path:<7} {st['first_ms']:>9.1f} {st['p50_ms']:>9.1f} "
                         f"{st['p95_ms']:>9.1f}")
    lines.append("")
    if res.get("cold_start"):
        cs = res["cold_start"]
        lines.append(f"cold start: HTTP up after {cs['http_up_s']:.2f} s, first /caption answered "
                     f"after {cs['first_caption_s']:.2f} s (from process start)")
    rss = res["peak_rss_mb"]
    server = rss.get("server")
    lines.append(f"peak RSS: benchmark process {rss['benchmark']:.0f} MiB, app server "
                 + (f"{server:.0f} MiB" if server is not None else "n/a"))
    lines += ["", "direct = engine pipeline in this process; app = gradio_client -> python app.py"]
    lines += [f"  {n}" for n in dict.fromkeys(c.note for c in MAIN_CALLS.values() if c.note)]
    return "\n".join(lines)


def run(repeats: int = 10, server: bool = True, calls: dict[str, MainCall] | None = None,
        threads: int | None = None) -> dict[str, Any]:
    """Run every benchmark and return the figures (see :func:`format_report`).

    Args:
        repeats: timed runs per call, after one warm-up.
        server: also launch the app (end-to-end timings, cold start, server RSS).
        calls: the calls to time (default :data:`MAIN_CALLS`).
        threads: torch intra-op threads here and OMP_NUM_THREADS of the server (None keeps
            torch's default, one per core).
    """
    import torch
    calls = MAIN_CALLS if calls is None else calls
    if threads is not None:
        torch.set_num_threads(threads)
    res: dict[str, Any] = {
        "meta": {"repeats": repeats, "cpu_count": os.cpu_count(), "threads_option": threads,
                 "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                 "torch": torch.__version__, "load_avg_1m_start": os.getloadavg()[0],
                 "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                       time.gmtime())},
        "latency_ms": {name: {} for name in calls}, "cold_start": None, "peak_rss_mb": {}}
    for name, call in calls.items():
        res["latency_ms"][name]["direct"] = time_call(call.direct, repeats)
    if server:
        srv = bench_server(calls, repeats,
                           None if threads is None else {"OMP_NUM_THREADS": str(threads)})
        for name, st in srv["latency"].items():
            res["latency_ms"][name]["app"] = st
        res["cold_start"] = srv["cold_start"]
        res["peak_rss_mb"]["server"] = srv["server_peak_rss_mb"]
    res["peak_rss_mb"]["benchmark"] = self_peak_rss_mb()
    return res


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10,
                        help="timed runs per call after one warm-up (default 10)")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--threads", type=int,
                        help="torch threads here and OMP_NUM_THREADS of the app (default: "
                             "torch's default); 1 avoids oversubscription on a busy machine")
    parser.add_argument("--no-server", action="store_true",
                        help="skip the launched app (no end-to-end timing or cold start)")
    args = parser.parse_args(argv)
    if args.repeats < 1:
        parser.error(f"--repeats must be at least 1, got {args.repeats}")
    if args.threads is not None and args.threads < 1:
        parser.error(f"--threads must be at least 1, got {args.threads}")
    res = run(args.repeats, server=not args.no_server, threads=args.threads)
    print(format_report(res))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
