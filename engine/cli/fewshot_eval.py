"""``python -m engine fewshot-eval``: accuracy of an Omniglot few-shot model.

* ``--way N --shot K [--episodes E]``: random episodes on the held-out test alphabets; prints
  the mean accuracy and its 95% confidence interval (>= 600 episodes by default). Several
  values (``--way 5 20 --shot 1 5``) give one line per (N, K), with the model loaded once.
* ``--runs DIR``: Lake et al.'s one-shot runs layout (``runNN/class_labels.txt``); prints one
  line per run, then a JSON object with the mean ``accuracy`` (0..1) as the last line. Images
  go through the same path as the app (load_image -> preprocess_drawing).
* ``--make-runs DIR``: write such runs from the test alphabets (for the check above).

Without ``--model`` the app's default handwriting model is used.
"""
from __future__ import annotations

from engine.cli import emit


def register(sub) -> None:
    p = sub.add_parser("fewshot-eval", help="evaluate an Omniglot few-shot model")
    p.add_argument("--model", default=None, help="omniglot-... (default: the app's default)")
    p.add_argument("--way", type=int, nargs="+", default=[5],
                   help="N; several values evaluate every (N, K) combination, one line each")
    p.add_argument("--shot", type=int, nargs="+", default=[1], help="K (one or more)")
    p.add_argument("--query", type=int, default=None,
                   help="queries per class (default 15 for N <= 5, else 5)")
    p.add_argument("--episodes", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="test", choices=["test", "val"])
    p.add_argument("--runs", metavar="DIR", help="folder of runs in Lake et al.'s layout")
    p.add_argument("--make-runs", metavar="DIR", help="write 20-way 1-shot runs from --split")
    p.add_argument("--n-runs", type=int, default=20)
    p.add_argument("--maml-steps", type=int, default=None)
    p.add_argument("--maml-step-size", type=float, default=None)
    p.add_argument("--record", action="store_true",
                   help="also write each (N, K) accuracy to docs/results.json (the Papers "
                        "panels and docs/results.md show it beside the published figure)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.make_runs:
        from engine.fewshot.omniglot import write_runs
        out = write_runs(args.make_runs, split=args.split, n_runs=args.n_runs, seed=args.seed)
        emit({"runs_written": str(out), "split": args.split, "n_runs": args.n_runs,
              "seed": args.seed})
        return 0
    from engine.factory import handwriting_pipeline
    pipeline = handwriting_pipeline(args.model)  # the hidden (N, K) variants are accepted
    if args.runs:
        return _runs(args, pipeline)
    return _episodes(args, pipeline)


def _overrides(args) -> dict:
    """The MAML settings given on the command line, by the pipeline's argument names."""
    out = {"maml_steps": args.maml_steps, "maml_step_size": args.maml_step_size}
    return {k: v for k, v in out.items() if v is not None}


def _episodes(args, pipeline) -> int:
    import torch

    from engine.errors import UserInputError
    from engine.fewshot.evaluate import evaluate_episodes
    from engine.fewshot.omniglot import load_split
    if args.episodes < 1:
        raise UserInputError(f"--episodes must be >= 1, got {args.episodes}")
    torch.set_num_threads(1)
    o = _overrides(args)
    if o and not pipeline.adapts_weights:
        raise UserInputError(f"--maml-steps / --maml-step-size apply to MAML models only, "
                             f"not {pipeline.name!r}")
    clf = pipeline.classifier(**o)
    images = load_split(args.split).float_images()
    for way in args.way:
        for shot in args.shot:
            query = args.query or (15 if way <= 5 else 5)
            score = evaluate_episodes(clf, images, way, shot, query, args.episodes,
                                      seed=args.seed)
            emit({"model": pipeline.name, "split": args.split, "way": way, "shot": shot,
                  "query": query, "seed": args.seed, **o, **score.as_dict(),
                  "summary": f"{100 * score.accuracy:.2f} +- {100 * score.ci95:.2f} %"})
            if args.record:
                _record(args, pipeline.name, way, shot, query, score, o)
    return 0


def _record(args, model: str, way: int, shot: int, query: int, score, overrides: dict) -> None:
    """One measured row of the handwriting tab in docs/results.json (engine.results)."""
    from engine.errors import UserInputError
    from engine.results import record
    if args.split != "test":
        raise UserInputError("--record writes test-alphabet figures only (drop --split val)")
    extra = "".join(f" --{k.replace('_', '-')} {v}" for k, v in overrides.items())
    query_opt = f" --query {args.query}" if args.query else ""
    record({"tab": "handwriting", "benchmark": f"Omniglot {way}-way {shot}-shot",
            "metric": "accuracy %", "value": round(100 * score.accuracy, 1),
            "ci95": round(100 * score.ci95, 1), "model": model,
            "setup": f"test alphabets, {args.episodes} episodes, {query} queries per class, "
                     f"seed {args.seed}",
            "command": f"python -m engine fewshot-eval --model {model} --way {way} --shot "
                       f"{shot}{query_opt} --episodes {args.episodes} --seed {args.seed}"
                       f"{extra} --record"})


def _runs(args, pipeline) -> int:
    from engine.fewshot.omniglot import read_runs
    from engine.fewshot.support import SupportSet
    from engine.inputs.images import load_image
    runs = read_runs(args.runs)
    accs = []
    for run in runs:
        names = [p.stem for p in run.support]
        support = SupportSet.from_labels([load_image(p).image for p in run.support], names)
        queries = [load_image(p).image for p in run.queries]
        res = pipeline(support, queries, **_overrides(args))
        correct = sum(p.label == names[y] for p, y in zip(res.predictions, run.query_labels))
        accs.append(correct / len(run.queries))
        emit({"run": run.name, "way": len(names), "queries": len(queries),
              "accuracy": round(accs[-1], 4)})
    mean = sum(accs) / len(accs)
    emit({"model": pipeline.name, "runs": len(runs), "accuracy": round(mean, 5),
          "error_rate": round(1 - mean, 5)})
    return 0
