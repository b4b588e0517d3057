"""Meta-learned few-shot methods on Omniglot: methods, MAML's gradients, data, pipeline, models.

Fast (< ~60 s CPU): tiny Conv-4 backbones, random or synthetic images; the shipped checkpoints are
only loaded and run on one episode.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw
from torch import nn

from engine.errors import UserInputError
from engine.fewshot import omniglot
from engine.fewshot.episodic import trainable_methods
from engine.fewshot.methods import create_method, method_class
from engine.models.conv4 import Conv4

HIDDEN = 8


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models: extra threads only add contention on a shared CPU (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_method(name: str, **kwargs):
    """A method as it is meta-trained (its ``train_setup``), around a Conv-4 with 8 channels
    (features 8-d, or 8x7x7 for Relation Nets)."""
    torch.manual_seed(0)
    setup = method_class(name).train_setup
    return create_method(name, Conv4(hidden=HIDDEN, **setup.backbone),
                         **{**setup.kwargs, **kwargs})


def episodic(name: str) -> bool:
    return method_class(name).train_setup.trainer == "episodic"


def toy_episode(way=3, shot=2, query=2, seed=0):
    """Random 'images' whose class is a shifted mean, so the task is learnable."""
    g = torch.Generator().manual_seed(seed)
    means = torch.rand(way, 1, 28, 28, generator=g)
    def draw(k):
        x = means.repeat_interleave(k, 0) + 0.3 * torch.rand(way * k, 1, 28, 28, generator=g)
        return x, torch.arange(way).repeat_interleave(k)
    s, sl = draw(shot)
    q, ql = draw(query)
    return s, sl, q, ql


def test_every_method_of_the_shipped_models_is_meta_trainable():
    assert set(trainable_methods()) >= {"protonet", "matching", "matching-fce", "relation",
                                        "siamese", "maml", "maml-fo", "baseline", "baseline++",
                                        "hallucination"}


@pytest.mark.parametrize("name", [m for m in trainable_methods() if episodic(m)])
def test_episode_loss_decreases_over_a_few_steps_on_a_toy_task(name):
    model = tiny_method(name).train()
    s, sl, q, ql = toy_episode(seed=1)
    opt = torch.optim.Adam(model.parameters(), lr=0.01)
    loss_fn = getattr(model, "episode_loss", None)
    losses = []
    for _ in range(12):
        model.process_support_set(s, sl)
        logits = model(q)
        loss = loss_fn(logits, ql) if loss_fn else nn.functional.cross_entropy(logits, ql)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", [m for m in trainable_methods() if not episodic(m)])
def test_baseline_head_fit_reduces_the_support_loss(name):
    model = tiny_method(name).eval()
    s, sl, _, _ = toy_episode()
    with torch.no_grad():
        model.process_support_set(s, sl)
    assert model.losses[-1] < model.losses[0]


def test_baseline_pretraining_step_reduces_the_loss_on_a_fixed_batch():
    from engine.fewshot.episodic import TrainConfig
    from engine.fewshot.pretrain import pretrain_baseline
    model = tiny_method("baseline")
    train = toy_episode(way=4, shot=5)[0].reshape(4, 5, 1, 28, 28)
    step, _ = pretrain_baseline(model, train, TrainConfig("baseline", batch_size=20, seed=0))
    losses = [step(0.01) for _ in range(15)]
    assert np.mean(losses[-3:]) < np.mean(losses[:3])


def test_first_order_maml_gradient_matches_a_hand_computed_reference():
    """Linear backbone f(x) = x A^T + c, zero head, 2 inner steps: gradients written out."""
    torch.manual_seed(0)
    S, Q, Din, D, N, alpha = 4, 6, 5, 3, 2, 0.5
    body = nn.Linear(Din, D)
    model = create_method("maml-fo", body, feature_dim=D, inner_steps=2, inner_lr=alpha).train()
    xs, xq = torch.randn(S, Din), torch.randn(Q, Din)
    ys, yq = torch.tensor([0, 1, 0, 1]), torch.tensor([0, 1, 1, 0, 0, 1])
    model.process_support_set(xs, ys)
    nn.functional.cross_entropy(model(xq), yq).backward()

    A, c = body.weight.detach().clone(), body.bias.detach().clone()
    W, b = torch.zeros(N, D), torch.zeros(N)
    Ys, Yq = torch.eye(N)[ys], torch.eye(N)[yq]
    for _ in range(2):  # inner steps, gradients of the mean cross-entropy by hand
        F = xs @ A.T + c
        g_logits = (torch.softmax(F @ W.T + b, 1) - Ys) / S  # (S, N)
        gW, gb = g_logits.T @ F, g_logits.sum(0)
        gF = g_logits @ W  # (S, D)
        gA, gc = gF.T @ xs, gF.sum(0)
        A, c, W, b = A - alpha * gA, c - alpha * gc, W - alpha * gW, b - alpha * gb
    Fq = xq @ A.T + c
    g_logits = (torch.softmax(Fq @ W.T + b, 1) - Yq) / Q
    gFq = g_logits @ W
    # first order: the query gradient at the adapted parameters is the meta-gradient
    assert torch.allclose(body.weight.grad, gFq.T @ xq, atol=1e-6)
    assert torch.allclose(body.bias.grad, gFq.sum(0), atol=1e-6)
    assert model.inner_losses[0] == pytest.approx(np.log(N), abs=1e-6)


def test_second_order_maml_gradient_differs_from_first_order():
    torch.manual_seed(0)
    grads = {}
    for name in ("maml", "maml-fo"):
        torch.manual_seed(0)
        body = nn.Sequential(nn.Linear(5, 3), nn.Tanh())
        model = create_method(name, body, feature_dim=3, inner_steps=3, inner_lr=0.5).train()
        g = torch.Generator().manual_seed(1)
        xs, xq = torch.randn(4, 5, generator=g), torch.randn(6, 5, generator=g)
        model.process_support_set(xs, torch.tensor([0, 1, 0, 1]))
        nn.functional.cross_entropy(model(xq), torch.tensor([0, 1, 1, 0, 0, 1])).backward()
        grads[name] = body[0].weight.grad.clone()
    assert not torch.allclose(grads["maml"], grads["maml-fo"])


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_maml_adapts_a_copy_and_never_mutates_the_shared_module(mode):
    model = tiny_method("maml", inner_steps=3)
    model.train(mode == "train")
    params = copy.deepcopy({k: v for k, v in model.named_parameters()})
    buffers = copy.deepcopy(dict(model.named_buffers()))
    s, sl, q, _ = toy_episode()
    with torch.no_grad():
        model.process_support_set(s, sl)
        first = model(q)
    for k, v in model.named_parameters():
        assert torch.equal(v, params[k]), k
    if mode == "eval":
        for k, v in model.named_buffers():
            assert torch.equal(v, buffers[k]), k
        other = tiny_method("maml", inner_steps=3).eval()
        other.load_state_dict(model.state_dict())
        with torch.no_grad():
            other.process_support_set(s, sl)
            assert torch.allclose(other(q), first)
    assert len(model.inner_losses) == 4
    assert model.inner_losses[-1] < model.inner_losses[0]


def sketch(size=(300, 200), offset=(40, 30), rgba=False, width=8) -> Image.Image:
    """A synthetic drawing: a dark 'T' and a circle, on white or on a transparent layer."""
    mode, bg = ("RGBA", (0, 0, 0, 0)) if rgba else ("RGB", (255, 255, 255))
    img = Image.new(mode, size, bg)
    d = ImageDraw.Draw(img)
    ox, oy = offset
    ink = (0, 0, 0, 255) if rgba else (0, 0, 0)
    d.line([(ox, oy), (ox + 100, oy)], fill=ink, width=width)
    d.line([(ox + 50, oy), (ox + 50, oy + 120)], fill=ink, width=width)
    d.ellipse([ox + 70, oy + 60, ox + 110, oy + 100], outline=ink, width=width)
    return img


def test_preprocess_drawing_crops_centres_and_matches_for_rgba_and_rgb():
    rgb = omniglot.preprocess_drawing(sketch())
    rgba = omniglot.preprocess_drawing(sketch(rgba=True))
    moved = omniglot.preprocess_drawing(sketch(size=(800, 600), offset=(500, 400)))
    for x in (rgb, rgba, moved):
        assert x.shape == (1, 28, 28) and x.dtype == torch.float32
        assert 0 <= x.min() and x.max() <= 1 and x.max() > 0.5
        assert x[0, 0].sum() == 0 and x[0, -1].sum() == 0  # margin around the ink
        ys, xs = np.nonzero(x[0].numpy() > 0.1)
        assert abs((ys.min() + ys.max()) / 2 - 13.5) <= 1.5
    assert torch.allclose(rgb, rgba, atol=1e-6)
    assert (rgb - moved).abs().mean() < 0.05  # position and canvas size do not matter


def test_preprocess_drawing_refuses_a_blank_drawing():
    with pytest.raises(ValueError, match="blank"):
        omniglot.preprocess_drawing(Image.new("RGBA", (100, 100), (0, 0, 0, 0)))


def _fake_runs(root, n_runs=2, way=3):
    for r in range(1, n_runs + 1):
        run = root / f"run{r:02d}"
        (run / "training").mkdir(parents=True)
        (run / "test").mkdir()
        lines = []
        for c in range(way):
            sketch(offset=(10 + 20 * c, 10)).save(run / "training" / f"class{c + 1:02d}.png")
        for k, c in enumerate(reversed(range(way))):
            sketch(offset=(10 + 20 * c, 10)).save(run / "test" / f"item{k + 1:02d}.png")
            lines.append(f"run{r:02d}/test/item{k + 1:02d}.png "
                         f"run{r:02d}/training/class{c + 1:02d}.png")
        (run / "class_labels.txt").write_text("\n".join(lines) + "\n")


def test_lake_runs_reader_reads_a_generated_folder(tmp_path):
    _fake_runs(tmp_path)
    runs = omniglot.read_runs(tmp_path)
    assert [r.name for r in runs] == ["run01", "run02"]
    assert len(runs[0].support) == 3 and len(runs[0].queries) == 3
    assert runs[0].query_labels == (2, 1, 0)
    assert runs[0].queries[0].name == "item01.png"


def test_lake_runs_reader_refuses_a_folder_without_runs(tmp_path):
    with pytest.raises(FileNotFoundError, match="class_labels"):
        omniglot.read_runs(tmp_path)


def test_episode_sampler_is_seeded_and_balanced():
    x = torch.arange(10 * 6).reshape(10, 6, 1).float()
    a = omniglot.EpisodeSampler(x, 4, 2, 3, seed=5).sample()
    b = omniglot.EpisodeSampler(x, 4, 2, 3, seed=5).sample()
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    s, sl, q, ql = a
    assert s.shape == (8, 1) and q.shape == (12, 1)
    assert torch.equal(torch.bincount(sl), torch.full((4,), 2))
    assert not set(s.flatten().tolist()) & set(q.flatten().tolist())  # disjoint drawers
    assert torch.equal((s[:, 0] // 6).reshape(4, 2)[:, 0], (q[:, 0] // 6).reshape(4, 3)[:, 0])


def test_rotations_make_four_classes_per_character():
    x = torch.arange(2 * 3 * 4 * 4).reshape(2, 3, 4, 4)
    r = omniglot.with_rotations(x)
    assert r.shape == (8, 3, 4, 4)
    assert torch.equal(r[1], torch.rot90(x[0], 1, dims=(1, 2)))


# ---- shipped models and the handwriting pipeline -------------------------------------------

def _fewshot_models():
    from engine.factory import handwriting_models
    return handwriting_models(include_variants=True)


def test_every_shipped_checkpoint_loads_offline_and_gives_finite_outputs():
    from engine.factory import default_model
    from engine.fewshot.checkpoints import load_checkpoint
    from engine.models.omniglot import ASSET_DIR
    names = _fewshot_models()
    shipped = sorted(p for p in ASSET_DIR.glob("*.safetensors") if p.with_suffix(".json").exists())
    assert {n.removeprefix("omniglot-") for n in names} <= {p.stem for p in shipped}
    if shipped:
        assert default_model("handwriting") in names
    s, sl, q, _ = toy_episode(way=5, shot=1, query=2)
    for name in shipped:
        model = load_checkpoint(name)
        with torch.no_grad():
            model.process_support_set(s.clamp(0, 1), sl)
            logits = model(q.clamp(0, 1))
        assert logits.shape == (10, 5) and torch.isfinite(logits).all(), name


def test_shipped_checkpoints_store_only_arguments_their_method_takes():
    import inspect

    from engine.models.omniglot import ASSET_DIR, read_checkpoint
    for path in sorted(ASSET_DIR.glob("*.safetensors")):
        ckpt = read_checkpoint(path)
        params = inspect.signature(method_class(ckpt.method)).parameters
        assert set(ckpt.method_kwargs) <= set(params), path.name
        assert not {"first_order", "fce"} & set(ckpt.method_kwargs), path.name


def _pipeline(name: str):
    """The handwriting pipeline of a shipped checkpoint, built from its parts."""
    from engine.fewshot.checkpoints import load_checkpoint
    from engine.fewshot.handwriting import DRAWING_LIMITS, DrawingEncoder, MetaLearned
    from engine.fewshot.pipeline import FewShotPipeline
    from engine.models.omniglot import ASSET_DIR
    path = ASSET_DIR / f"{name.removeprefix('omniglot-')}.safetensors"
    if not path.is_file():
        pytest.skip(f"no shipped checkpoint {path.name}")
    return FewShotPipeline(DrawingEncoder(), MetaLearned(load_checkpoint(path)), DRAWING_LIMITS,
                           name=name)


@pytest.fixture(scope="module")
def protonet():
    return _pipeline("omniglot-protonet")


@pytest.fixture(scope="module")
def maml():
    return _pipeline("omniglot-maml")


def circle() -> Image.Image:
    img = Image.new("RGB", (200, 200), "white")
    ImageDraw.Draw(img).ellipse([30, 30, 170, 170], outline="black", width=10)
    return img


def labelled(images, labels, classes=None):
    from engine.fewshot.support import SupportSet
    return SupportSet.from_labels(images, labels, classes)


def test_handwriting_pipeline_classifies_two_way_one_shot(protonet):
    t = sketch(offset=(10, 10))
    res = protonet(labelled([t, circle()], ["T", "O"]), [sketch(offset=(60, 40)),
                                                           circle().rotate(20)])
    assert [p.label for p in res.predictions] == ["T", "O"]
    for p in res.predictions:
        assert sum(p.probabilities.values()) == pytest.approx(1.0, abs=1e-5)
    assert res.support_xy.shape == (2, 2) and res.prototype_xy.shape == (2, 2)
    assert res.query_xy.shape == (2, 2) and res.inner_losses is None
    assert res.query_inputs.shape == (2, 28, 28)
    assert res.model == "omniglot-protonet" and res.method == "protonet"


def test_handwriting_pipeline_answers_the_bundled_held_out_symbols(protonet):
    from conftest import EXAMPLES

    from engine.fewshot.support import read_support_folder
    from engine.inputs.images import load_image
    support = read_support_folder(EXAMPLES / "handwriting" / "support")
    queries = [load_image(EXAMPLES / "handwriting" / "query" / f"symbol_{i}_query.png").image
               for i in (1, 3)]
    assert [p.label for p in protonet(support, queries).predictions] == ["symbol_1", "symbol_3"]


def test_handwriting_pipeline_never_changes_its_loaded_classifier(maml):
    shared = maml.classifiers.classifier
    before = {k: v.clone() for k, v in shared.state_dict().items()}
    support = labelled([sketch(), circle()], ["T", "O"])
    a = maml(support, [sketch()], maml_steps=4)
    b = maml(support, [sketch()])
    assert len(a.inner_losses) == 5 and len(b.inner_losses) == 3  # 2 steps, as trained
    assert shared.inner_steps == 2 and shared.fast is None
    for k, v in shared.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("labels, classes, message", [
    (["A", "A"], None, r"only one class \('A', 2 example"),
    (["A", " "], None, "support image 2 has a blank label"),
    (["A", "a "], None, "'A' and 'a' differ only in case"),
    (["A", "B"], ["A", "B", "C"], r"class 'C' has 0 support examples.*'A': 1, 'B': 1, 'C': 0"),
    (["A"], None, "got 2 support images but 1 labels"),
    (["A", "B"], ["A", "A"], "class 'A' is declared twice"),
])
def test_support_validation_names_the_class_and_counts(protonet, labels, classes, message):
    img = sketch()
    with pytest.raises(UserInputError, match=message):
        protonet(labelled([img, img], labels, classes), [img])


def test_empty_support_set_and_missing_query_are_explained(protonet):
    from engine.fewshot.support import SupportSet
    with pytest.raises(UserInputError, match="the support set is empty: draw"):
        protonet(SupportSet(), [sketch()])
    with pytest.raises(UserInputError, match="no query image: draw or upload"):
        protonet(labelled([sketch(), circle()], ["T", "O"]), [])


def test_support_validation_refuses_more_classes_than_the_model_supports(protonet):
    labels = [f"c{i}" for i in range(21)]
    with pytest.raises(UserInputError, match="21 classes given; .* at most 20"):
        protonet(labelled([sketch()] * 21, labels), [sketch()])


def test_support_validation_refuses_more_than_100_drawings(protonet):
    labels = ["A", "B"] * 51
    with pytest.raises(UserInputError, match="102 support images; at most 100"):
        protonet(labelled([sketch()] * 102, labels), [sketch()])


def test_a_blank_drawing_is_named(protonet):
    blank = Image.new("RGB", (50, 50), "white")
    with pytest.raises(UserInputError, match="support image 2: the drawing .* is blank"):
        protonet(labelled([sketch(), blank], ["T", "O"]), [sketch()])


def test_maml_settings_are_refused_for_other_models(protonet):
    with pytest.raises(UserInputError, match="MAML models only"):
        protonet(labelled([sketch(), sketch(rgba=True)], ["A", "B"]), [sketch()], maml_steps=3)
    with pytest.raises(UserInputError, match="unknown method 'maml'; valid: protonet"):
        protonet.classifier("maml")


@pytest.mark.parametrize("steps, size, message", [(51, None, r"maml_steps must be in \[0, 50\]"),
                                                  (None, 0, r"maml_step_size must be in \(0, 10\]")])
def test_maml_settings_out_of_range_are_refused(maml, steps, size, message):
    with pytest.raises(UserInputError, match=message):
        maml.classifier(maml_steps=steps, maml_step_size=size)


def test_maml_pipeline_reports_the_support_loss_per_step(maml):
    res = maml(labelled([sketch(), circle()], ["T", "O"]), [sketch()], maml_steps=4,
               maml_step_size=0.4)
    assert len(res.inner_losses) == 5 and all(np.isfinite(res.inner_losses))
    assert res.to_json()["inner_losses"] == res.inner_losses


def test_fewshot_eval_cli_on_runs_prints_a_json_accuracy_last(protonet, tmp_path, capsys):
    from engine.cli import main
    _fake_runs(tmp_path)
    assert main(["fewshot-eval", "--runs", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3
    last = json.loads(lines[-1])
    assert 0 <= last["accuracy"] <= 1 and last["runs"] == 2


def test_handwriting_models_list_the_default_first_and_hide_the_nk_variants(protonet):
    from engine.factory import default_model, handwriting_models, task_models
    names = task_models("handwriting")
    assert names[0] == default_model("handwriting") == "omniglot-protonet"
    assert names == handwriting_models()
    assert not any(n.endswith(("-5w1s", "-5w5s", "-20w1s", "-20w5s")) for n in names)
    assert set(names) < set(handwriting_models(include_variants=True))


def test_unknown_handwriting_model_lists_the_valid_ones():
    from engine.factory import get_pipeline, handwriting_pipeline
    with pytest.raises(UserInputError, match="unknown handwriting model 'nope'; valid: omniglot-"):
        get_pipeline("handwriting", "nope")
    with pytest.raises(UserInputError, match="unknown handwriting model 'nope'; valid: .*-5w1s"):
        handwriting_pipeline("nope")


def test_factory_builds_the_handwriting_pipeline_once_and_accepts_variants_for_the_cli(protonet):
    from engine.factory import get_pipeline, handwriting_pipeline
    pipe = get_pipeline("handwriting")
    assert pipe is get_pipeline("handwriting", "omniglot-protonet") is handwriting_pipeline()
    assert pipe.methods == ["protonet"] and not pipe.adapts_weights
    assert handwriting_pipeline("omniglot-protonet-5w1s").name == "omniglot-protonet-5w1s"
