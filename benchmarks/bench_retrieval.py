"""Retrieval at gallery scale: query latency for 1k and 10k images, and indexing throughput.

    python -m benchmarks.bench_retrieval [--repeats N] [--index-images M] [--out FILE]

* scoring: ARTEMIS-style scoring + ranking of a query against a synthetic index of N random
  unit vectors (384-d semantic, 1280-d visual, 2 attributes), i.e. everything a query does
  after its own encoding (two matrix-vector products, standardisation, sort);
* query encoding: the real per-query cost with the embedded models (reference image through
  EfficientNet-Lite0 + ConSE, text through MiniLM), independent of the gallery size;
* end to end: the embedded :class:`engine.retrieval.pipeline.RetrievalPipeline` (from
  :func:`engine.factory.get_pipeline`) on the synthetic index;
* indexing: decode + encode M images of the bundled gallery (images per second).

``--examples`` instead prints, for each bundled retrieval example, the ranks (top 10) of the
gallery images that satisfy its text (SOURCES.csv rows matching the example's pattern).

Times are wall milliseconds, p50 / p95 over ``--repeats`` runs after one warm-up.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GALLERY = ROOT / "assets" / "galleries" / "default"
REFERENCE = ROOT / "assets" / "examples" / "cat.jpg"
TEXT = "the same but with a dog at night"


def _stats(fn, repeats: int) -> dict:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return {"p50_ms": float(np.percentile(times, 50)), "p95_ms": float(np.percentile(times, 95)),
            "n": repeats}


def synthetic_index(n: int, seed: int = 0):
    """A GalleryIndex of ``n`` random unit vectors (embedded model's dimensions)."""
    from engine.retrieval.index import GalleryIndex
    rng = np.random.default_rng(seed)

    def unit(d):
        x = rng.standard_normal((n, d)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)
    return GalleryIndex("efficientnet_lite0", [f"img{i}.jpg" for i in range(n)], [""] * n,
                        unit(384), unit(1280), rng.random((n, 2)).astype(np.float32))


def run(repeats: int = 10, index_images_n: int = 64) -> dict:
    from engine.factory import get_pipeline
    from engine.inputs.images import load_image
    from engine.retrieval.index import index_images
    from engine.retrieval.scoring import artemis_scores, parse_modification
    pipe = get_pipeline("retrieve")
    reference = load_image(REFERENCE).image
    mod = parse_modification(TEXT)
    out: dict = {"scoring": {}, "end_to_end": {}}
    for n in (1000, 10000):
        index = synthetic_index(n)
        q_vis = index.visual[0]
        q_txt = index.semantic[1]

        def score(index=index, q_vis=q_vis, q_txt=q_txt):
            s, _, _ = artemis_scores(index.semantic @ q_txt, index.attributes, mod,
                                     index.visual @ q_vis, 0.5)
            return np.argsort(-s, kind="stable")[:10]
        out["scoring"][n] = _stats(score, max(repeats, 20))
        out["end_to_end"][n] = _stats(
            lambda index=index: pipe(reference, TEXT, index=index, top_k=10), repeats)
    out["query_encoding"] = _stats(lambda: (pipe.encoder.embed_images([reference]),
                                            pipe.encoder.embed_text("dog")), repeats)
    files = sorted(GALLERY.glob("*.jpg"))[:index_images_n]
    t0 = time.perf_counter()
    items = [(f.name, load_image(f).image) for f in files]
    decode_s = time.perf_counter() - t0
    index_images(items[:8], pipe.encoder)  # warm-up
    t0 = time.perf_counter()
    index_images(items, pipe.encoder)
    encode_s = time.perf_counter() - t0
    out["indexing"] = {"images": len(items), "decode_s": decode_s, "encode_s": encode_s,
                       "images_per_s": len(items) / (decode_s + encode_s)}
    import torch
    out["meta"] = {"cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                   "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    return out


def format_report(res: dict) -> str:
    lines = [f"retrieval benchmark ({res['meta']['cpu_count']} CPUs, torch threads "
             f"{res['meta']['torch_threads']})", ""]
    for n in res["scoring"]:
        s, e = res["scoring"][n], res["end_to_end"][n]
        lines.append(f"gallery {int(n):>6}: scoring+ranking p50 {s['p50_ms']:.2f} ms "
                     f"(p95 {s['p95_ms']:.2f}); full query p50 {e['p50_ms']:.0f} ms "
                     f"(p95 {e['p95_ms']:.0f})")
    q = res["query_encoding"]
    lines.append(f"query encoding (reference image + text): p50 {q['p50_ms']:.0f} ms "
                 f"(p95 {q['p95_ms']:.0f})")
    ix = res["indexing"]
    lines.append(f"indexing: {ix['images']} images, decode {ix['decode_s']:.2f} s + encode "
                 f"{ix['encode_s']:.2f} s = {ix['images_per_s']:.1f} images/s")
    return "\n".join(lines)


def example_ranks() -> list[dict]:
    """Rank of the first gallery images satisfying each bundled example's text (top 10)."""
    import csv
    import re

    from engine.factory import get_pipeline
    from engine.inputs.images import load_image
    rows = {r["file"]: " ".join(r.values()) for r in csv.DictReader(open(GALLERY / "SOURCES.csv"))}
    pipe = get_pipeline("retrieve")
    index, _ = pipe.index_folder(GALLERY)
    out = []
    for e in json.loads((ROOT / "assets" / "galleries" / "examples.json").read_text()):
        res = pipe(load_image(ROOT / e["reference"]).image, e["text"], index=index,
                   weight=e["weight"], top_k=10)
        names = [Path(m.path).name for m in res.results]
        out.append({"reference": e["reference"], "text": e["text"], "weight": e["weight"],
                    "ranks": [i + 1 for i, n in enumerate(names)
                              if re.search(e["satisfies"], rows[n])], "top1": names[0]})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_retrieval",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--index-images", type=int, default=64)
    parser.add_argument("--out", type=Path)
    parser.add_argument("--examples", action="store_true",
                        help="only print where the bundled examples' true answers rank")
    args = parser.parse_args(argv)
    if args.examples:
        for row in example_ranks():
            print(json.dumps(row))
        return
    res = run(args.repeats, args.index_images)
    print(format_report(res))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(res, indent=2) + "\n")


if __name__ == "__main__":
    main()
