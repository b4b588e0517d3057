"""``python -m engine doctor [--json]``: what this machine will do with the app, before a class.

Prints Python / PyTorch / Gradio (and the model libraries') versions; the device decision
(``VL_DEVICE``, CUDA, where the diffusion editors and BLIP run, in which dtype); whether the
model hub is switched off (``HF_HUB_OFFLINE``) or reachable; which hub models the tabs offer
are in the local hub cache already (a Space's ``preload_from_hub`` puts them there at build
time); and the expected latency class of each tab's models on this machine. Never downloads;
the hub check is one TCP connection (none with ``HF_HUB_OFFLINE=1``).
"""
from __future__ import annotations

import os
import sys

from engine.cli import emit

#: Each tab's embedded main call through the app, p50 ms, as measured in docs/benchmarks.md
#: (table "Each tab's main call", column "after", 2-core CPU, load about 3).
EMBEDDED_P50_MS = {"caption": 381.4, "fewshot": 675.2, "change": 1408.9, "edit": 773.4,
                   "retrieve": 879.5, "segment": 864.5}
#: Latency classes: (upper bound in seconds, name).
CLASSES = ((2.0, "interactive (< 2 s)"), (10.0, "short wait (2-10 s)"),
           (60.0, "long wait (10-60 s)"), (float("inf"), "very long (> 1 min)"))


def latency_class(seconds: float) -> str:
    """The class name of a duration in seconds (see :data:`CLASSES`)."""
    return next(name for bound, name in CLASSES if seconds < bound)


def device_report() -> dict:
    """The device decision (:mod:`engine.device`) and where each kind of model goes."""
    import torch

    from engine.device import ENV_VAR, accelerator, device_name, placement
    try:
        acc = accelerator()
        error = None
    except ValueError as exc:  # a bad VL_DEVICE: reported, not a crash of the doctor
        acc, error = torch.device("cpu"), str(exc)
    return {"setting": os.environ.get(ENV_VAR, "auto"), "cuda_available":
            torch.cuda.is_available(), "accelerator": str(acc), "name": device_name(acc),
            "error": error, "torch_threads": torch.get_num_threads(),
            "diffusion_and_blip": placement("edit", "hub", acc).label(),
            "everything_else": placement("backbone", "embedded", acc).label()}


def hub_report() -> dict:
    """Offline switch, endpoint, reachability (cached 5 min by engine.models)."""
    from engine.models import hub_available
    from engine.models._hub import _endpoint, hub_offline_forced
    forced = hub_offline_forced()
    return {"offline_forced": forced, "endpoint": _endpoint(),
            "reachable": False if forced else hub_available()}


def cache_report(cache_dir: str | None = None) -> list[dict]:
    """Each hub model a tab offers: its repository and whether (and how much of it) is in the
    local hub cache (``cache_dir``; default huggingface_hub's, ``HF_HUB_CACHE``)."""
    from engine.factory import offered_hub_models
    cached: dict[str, float] = {}
    try:
        from huggingface_hub import scan_cache_dir
        info = scan_cache_dir(cache_dir)
        cache_dir = str(getattr(info, "cache_dir", "") or "")
        cached = {r.repo_id: r.size_on_disk / 1e6 for r in info.repos if r.repo_type == "model"}
    except Exception:  # noqa: BLE001  (no cache folder yet: nothing is cached)
        pass
    return [{"model": name, "repo": repo, "cached": repo in cached,
             "size_mb": round(cached.get(repo, 0.0), 1), "cache_dir": cache_dir}
            for name, repo in offered_hub_models().items()]


def latency_report() -> list[dict]:
    """Each tab's models with their expected latency class on this machine and why."""
    from engine.factory import TASKS, model_info, sampling_defaults, task_models
    rows = []
    for task in TASKS:
        for name in task_models(task):
            spec = model_info(name)
            if spec.source == "embedded":
                ms = EMBEDDED_P50_MS.get(task)
                rows.append({"tab": task, "model": name,
                             "class": latency_class(ms / 1000) if ms else "unknown",
                             "basis": f"p50 {ms:.0f} ms through the app, docs/benchmarks.md"
                             if ms else "embedded, no per-call figure in docs/benchmarks.md"})
                continue
            defaults = sampling_defaults(name)
            if defaults is not None:
                est = defaults["estimate"]
                rows.append({"tab": task, "model": name,
                             "class": latency_class(est.seconds) if est else "unknown",
                             "basis": (f"{defaults['steps']} steps at {defaults['work_side']} "
                                       f"px: {est.text(defaults['device'])}" if est else
                                       f"not measured on {defaults['device']} yet")})
            else:
                rows.append({"tab": task, "model": name, "class": "unknown",
                             "basis": "hub model, not timed on this machine"})
    return rows


def report() -> dict:
    """Everything the doctor checks, as one JSON-ready dict."""
    from engine.recipe import versions
    return {"versions": versions(), "device": device_report(), "hub": hub_report(),
            "hub_models": cache_report(), "latency": latency_report()}


def render(rep: dict) -> str:
    """The report as text for a terminal."""
    v, d, h = rep["versions"], rep["device"], rep["hub"]
    lines = ["versions: " + ", ".join(f"{k} {val}" for k, val in v.items())]
    lines.append(f"device: {d['name']} (VL_DEVICE={d['setting']}, CUDA available: "
                 f"{d['cuda_available']}, torch threads {d['torch_threads']}); diffusion and "
                 f"BLIP on {d['diffusion_and_blip']}, everything else on "
                 f"{d['everything_else']}")
    if d["error"]:
        lines.append(f"  device error: {d['error']}")
    hub = ("off (HF_HUB_OFFLINE)" if h["offline_forced"] else
           "reachable" if h["reachable"] else "unreachable")
    lines.append(f"hub: {hub} ({h['endpoint']})" + ("" if h["reachable"] else
                 "; a tab asked for a hub model answers with its embedded model"))
    lines.append("hub models (local cache):")
    lines += [f"  {m['model']:<20} {m['repo']:<52} "
              + (f"cached, {m['size_mb']:.0f} MB" if m["cached"] else "not cached")
              for m in rep["hub_models"]]
    lines.append("expected latency per tab and model:")
    lines += [f"  {r['tab']:<12} {r['model']:<26} {r['class']:<26} {r['basis']}"
              for r in rep["latency"]]
    return "\n".join(lines)


def register(sub) -> None:
    p = sub.add_parser("doctor", help="versions, device, hub status, cached models, expected "
                                      "latency per tab (offline-safe)")
    p.add_argument("--json", action="store_true", help="one JSON object instead of text")
    p.set_defaults(func=run)


def run(args) -> int:
    rep = report()
    if args.json:
        emit(rep)
    else:
        sys.stdout.write(render(rep) + "\n")
    return 0
