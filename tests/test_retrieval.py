"""Composed image retrieval: text parsing, ConSE, ARTEMIS-style scoring, the two encoders (the
embedded ConSE one and a tiny OpenCLIP one, built directly from their components), the cached
gallery index, uploaded galleries, the bundled examples, the CLI and the tab's session state."""
from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
import threading
import zipfile
from dataclasses import replace

import numpy as np
import pytest
import torch
from cases import ACCEPTED
from conftest import EXAMPLES, ROOT
from PIL import Image

from engine.errors import UserInputError
from engine.inputs.images import load_image
from engine.models.class_text import ClassNameEmbeddings
from engine.retrieval import pipeline as pipeline_module
from engine.retrieval.conse import conse_embed
from engine.retrieval.encoders import ClipEncoder, ConseEncoder
from engine.retrieval.index import GalleryIndex, index_folder, index_images
from engine.retrieval.pipeline import RetrievalPipeline, image_digest
from engine.retrieval.scoring import artemis_scores, image_attributes, parse_modification

GALLERY = ROOT / "assets" / "galleries" / "default"
RETRIEVAL_EXAMPLES = json.loads((ROOT / "assets" / "galleries" / "examples.json").read_text())


@pytest.fixture(scope="module")
def conse_encoder():
    """The embedded encoder, built from its components (no registry)."""
    from engine.models.efficientnet import LITE0_PREPROCESS, EfficientNetLite0
    from engine.models.minilm import MiniLMEncoder
    backbone, text = EfficientNetLite0(), MiniLMEncoder()
    return ConseEncoder(backbone, LITE0_PREPROCESS, text,
                        ClassNameEmbeddings(text, backbone.class_names))


@pytest.fixture(scope="module")
def pipeline(conse_encoder):
    return RetrievalPipeline(conse_encoder)


@pytest.fixture(scope="module")
def default_index(pipeline, tmp_path_factory):
    index, notes = pipeline.index_folder(GALLERY, cache=tmp_path_factory.mktemp("cache"))
    assert notes == []
    return index


def tiny_clip_encoder() -> ClipEncoder:
    """OpenCLIP with 1 layer per tower, 32x32 input, 16-d embeddings (seeded random weights)."""
    from tiny_models import tiny_openclip

    from engine.models._zoo import CLIP_PREPROCESS
    return ClipEncoder(tiny_openclip(), replace(CLIP_PREPROCESS, size=32))


def gradient_image() -> Image.Image:
    """A fixed 48x40 RGB image (no file decoding involved)."""
    y, x = np.mgrid[0:40, 0:48]
    return Image.fromarray(np.stack([x * 5, y * 6, (x + y) * 3], -1).astype(np.uint8), "RGB")


# --- text, ConSE, scoring -------------------------------------------------------------------

def test_default_gallery_has_200_images_with_provenance():
    rows = list(csv.DictReader(open(GALLERY / "SOURCES.csv")))
    files = sorted(p.name for p in GALLERY.glob("*.jpg"))
    assert len(files) >= 200 and sorted(r["file"] for r in rows) == files
    assert all(r["origin"] and r["licence"] for r in rows)


def test_modification_text_splits_into_content_and_attributes():
    assert parse_modification("in black and white").attributes == ((0, -1.0),)
    assert parse_modification("in black and white").content == ""
    night = parse_modification("a red car at night")
    assert night.content == "red car" and night.attributes == ((1, -1.0),)
    assert parse_modification("the same but with a dog").content == "dog"
    assert parse_modification("🐱 مرحبا").content == "🐱 مرحبا"


def test_image_attributes_measure_saturation_and_brightness():
    gray = np.full((8, 8, 3), 128, np.uint8)
    red = np.zeros((8, 8, 3), np.uint8)
    red[..., 0] = 255
    assert image_attributes(gray)[0] == pytest.approx(0.0)
    assert image_attributes(red)[0] == pytest.approx(1.0)
    assert image_attributes(np.zeros((4, 4, 3), np.uint8))[1] == 0.0


def test_conse_embedding_is_unit_and_finite_even_for_uniform_probabilities():
    names = torch.nn.functional.normalize(
        torch.randn(20, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
    probs = torch.cat([torch.full((1, 20), 1 / 20), torch.eye(20)[:1]])
    emb = conse_embed(probs, names, top_t=5)
    assert emb.shape == (2, 8) and torch.isfinite(emb).all()
    assert torch.allclose(emb.norm(dim=-1), torch.ones(2), atol=1e-5)
    assert torch.allclose(emb[1], names[0], atol=1e-5)  # one certain class -> its name
    with pytest.raises(ValueError, match="top_t"):
        conse_embed(probs, names, top_t=0)


def test_scores_are_the_sum_of_weighted_explicit_and_implicit_parts():
    rng = np.random.default_rng(0)
    sem, vis, attrs = rng.normal(size=50), rng.normal(size=50), rng.random((50, 2))
    mod = parse_modification("a dog at night")
    score, ex, im = artemis_scores(sem, attrs, mod, vis, 0.3)
    assert np.allclose(score, ex + im)
    _, ex1, im1 = artemis_scores(sem, attrs, mod, vis, 1.0)
    assert np.all(im1 == 0) and np.any(ex1 != 0)
    score, _, _ = artemis_scores(np.zeros(5), np.zeros((5, 2)), mod, np.zeros(5), 0.5)
    assert np.isfinite(score).all()
    with pytest.raises(ValueError, match="weight"):
        artemis_scores(sem, attrs, mod, vis, 1.5)


# --- the embedded pipeline on the bundled gallery --------------------------------------------

def test_bundled_gallery_ships_its_index_and_nothing_is_encoded(pipeline, tmp_path):
    calls = []
    index, notes = pipeline.index_folder(GALLERY, progress=lambda d, t: calls.append(t),
                                         cache=tmp_path)
    assert calls == [] and notes == [] and len(index) >= 200
    assert index.model == pipeline.name == "efficientnet_lite0"
    assert list(tmp_path.iterdir()) == []  # the shipped index is used as it is, not copied


@pytest.mark.parametrize("example", RETRIEVAL_EXAMPLES, ids=lambda e: e["text"])
def test_bundled_example_puts_a_satisfying_image_in_the_top_5(pipeline, default_index, example):
    rows = {r["file"]: " ".join(r.values()) for r in csv.DictReader(open(GALLERY / "SOURCES.csv"))}
    ref = load_image(ROOT / example["reference"]).image
    result = pipeline(ref, example["text"], index=default_index, weight=example["weight"],
                      top_k=5)
    names = [m.path.rsplit("/", 1)[-1] for m in result.results]
    assert any(re.search(example["satisfies"], rows[n]) for n in names), (example, names)


def test_reference_taken_from_the_gallery_is_left_out(pipeline, default_index):
    path = GALLERY / "photo_cat.jpg"
    result = pipeline(load_image(path).image, "in black and white", index=default_index,
                      top_k=5, reference_hash=image_digest(str(path)))
    assert "photo_cat.jpg" not in [m.path.rsplit("/", 1)[-1] for m in result.results]
    assert result.results[0].path.endswith("photo_cat_bw.jpg")
    assert result.model == "efficientnet_lite0" and result.attributes == ["black and white"]


def test_text_naming_nothing_ranks_by_reference_and_says_so(pipeline, default_index, cat_image):
    result = pipeline(cat_image, "the same", index=default_index, top_k=3)
    assert all(m.explicit == 0 for m in result.results) and result.notes
    assert "ranked by similarity to the reference only" in result.notes[0]


@pytest.mark.parametrize("kwargs,words", [
    (dict(text=" \n"), "empty"),
    (dict(text="a dog", top_k=0), "top_k"),
    (dict(text="a dog", weight=1.5), "weight"),
])
def test_bad_query_options_are_user_errors(pipeline, default_index, cat_image, kwargs, words):
    with pytest.raises(UserInputError, match=words):
        pipeline(cat_image, index=default_index, **kwargs)


def test_text_longer_than_minilm_context_is_cut_and_says_so(pipeline, default_index, cat_image):
    result = pipeline(cat_image, "1,2 " * 200, index=default_index, top_k=1)  # 400+ tokens
    assert any("256 tokens" in n for n in result.notes)
    assert np.isfinite(result.results[0].score)


def test_pipeline_refuses_an_index_built_with_another_model(pipeline, cat_image):
    other = GalleryIndex("openclip-vit-b-32", ["a.jpg"], [""], np.ones((1, 16), np.float32),
                         np.ones((1, 16), np.float32), np.zeros((1, 2), np.float32))
    with pytest.raises(ValueError, match="openclip-vit-b-32"):
        pipeline(cat_image, "a dog", index=other)


def test_folder_index_is_cached_and_only_changed_files_are_encoded(conse_encoder, tmp_path):
    gallery, cache = tmp_path / "g", tmp_path / "cache"
    gallery.mkdir()
    for name in ("cat.jpg", "coffee.jpg", "rocket.jpg"):
        shutil.copy(EXAMPLES / name, gallery / name)
    (gallery / "notes.png").write_bytes(b"<html>not an image</html>")
    calls = []
    index, notes = index_folder(gallery, conse_encoder, cache=cache,
                                progress=lambda d, t: calls.append(t))
    assert index.names == ["cat.jpg", "coffee.jpg", "rocket.jpg"] and calls == [3]
    assert any("notes.png" in n for n in notes)
    assert index.semantic.shape == (3, 384) and index.visual.shape == (3, 1280)
    assert index.hashes[0] == hashlib.sha256((gallery / "cat.jpg").read_bytes()).hexdigest()
    calls.clear()
    again, _ = index_folder(gallery, conse_encoder, cache=cache,
                            progress=lambda d, t: calls.append(t))
    assert calls == [] and np.array_equal(again.visual, index.visual)
    shutil.copy(EXAMPLES / "flower.jpg", gallery / "coffee.jpg")  # one file changed
    changed, _ = index_folder(gallery, conse_encoder, cache=cache,
                              progress=lambda d, t: calls.append(t))
    assert calls == [1]
    assert np.array_equal(changed.visual[0], index.visual[0])
    assert not np.allclose(changed.visual[1], index.visual[1])
    assert len(list(cache.glob("*.npz"))) == 1


def test_folder_that_is_missing_or_has_no_image_is_a_user_error(conse_encoder, tmp_path):
    with pytest.raises(UserInputError, match="does not exist"):
        index_folder(tmp_path / "nope", conse_encoder, cache=tmp_path)
    (tmp_path / "junk.jpg").write_bytes(b"junk")
    with pytest.raises(UserInputError, match="no usable image"):
        index_folder(tmp_path, conse_encoder, cache=tmp_path / "cache")


def test_odd_but_valid_images_index_and_query_to_finite_scores(pipeline, cases_dir):
    items = [(n, load_image(cases_dir / n).image) for n in sorted(ACCEPTED)]
    index = index_images(items, pipeline.encoder)
    for arr in (index.semantic, index.visual, index.attributes):
        assert np.isfinite(arr).all()
    black = load_image(cases_dir / "all_black_8.png").image
    result = pipeline(black, "at night", index=index, top_k=len(items))
    assert all(np.isfinite(m.score) for m in result.results)


# --- the hub encoder (tiny OpenCLIP) ---------------------------------------------------------

def test_tiny_openclip_encoder_gives_seeded_unit_embeddings():
    encoder = tiny_clip_encoder()
    out = encoder.embed_images([gradient_image()])
    assert {k: v.shape for k, v in out.items()} == {"semantic": (1, 16), "visual": (1, 16),
                                                   "attributes": (1, 2)}
    assert np.array_equal(out["semantic"], out["visual"])
    assert np.linalg.norm(out["semantic"][0]) == pytest.approx(1.0, abs=1e-5)
    expected_image = [0.252982, 0.419862, -0.191539, 0.331538, -0.430625, 0.023444,
                      -0.06493, -0.088627, -0.153826, -0.319665, 0.379155, 0.304286,
                      0.027243, -0.10777, 0.095515, 0.177134]
    assert np.allclose(out["semantic"][0], expected_image, atol=1e-4)
    assert np.allclose(out["attributes"][0], [0.519594, 0.464715], atol=1e-5)
    text, truncated = encoder.embed_text("a red cup")
    expected_text = [-0.321591, 0.255761, 0.315328, 0.289054, -0.202196, -0.156719,
                     0.093557, -0.357296, -0.069408, -0.51444, 0.239576, 0.242031,
                     0.026756, 0.157376, 0.042011, 0.183399]
    assert text.shape == (16,) and not truncated
    assert np.allclose(text, expected_text, atol=1e-4)
    assert np.linalg.norm(text) == pytest.approx(1.0, abs=1e-5)


def test_hub_retrieval_with_a_tiny_openclip_uses_clip_embeddings(cat_image, coffee_image):
    pipe = RetrievalPipeline(tiny_clip_encoder())
    index = index_images([("cat", cat_image), ("coffee", coffee_image),
                          ("cat_gray", cat_image.convert("L").convert("RGB"))], pipe.encoder)
    assert index.semantic.shape == (3, 16) and index.model == pipe.name == "openclip-vit-b-32"
    result = pipe(cat_image, "a cup in black and white", index=index, top_k=3)
    assert result.model == "openclip-vit-b-32" and len(result.results) == 2  # the cat left out
    assert "cat" not in [m.path for m in result.results]
    assert all(np.isfinite([m.score, m.explicit, m.implicit]).all() for m in result.results)
    assert all(m.score == pytest.approx(m.explicit + m.implicit) for m in result.results)
    assert GalleryIndex.load(ROOT / "nonexistent") is None


def test_default_index_is_built_once_per_pipeline_even_from_many_threads(tmp_path, monkeypatch):
    monkeypatch.setenv("ENGINE_CACHE_DIR", str(tmp_path / "cache"))
    gallery = tmp_path / "g"
    gallery.mkdir()
    for name in ("cat.jpg", "coffee.jpg"):
        shutil.copy(EXAMPLES / name, gallery / name)
    encoder = tiny_clip_encoder()
    encoded = []
    embed = encoder.embed_images
    monkeypatch.setattr(encoder, "embed_images", lambda ims: encoded.append(len(ims)) or embed(ims))
    pipe = RetrievalPipeline(encoder, default_gallery=gallery)
    seen = []
    threads = [threading.Thread(target=lambda: seen.append(pipe.default_index()))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(seen) == 4 and all(s is seen[0] for s in seen)
    assert encoded == [2] and seen[0].names == ["cat.jpg", "coffee.jpg"]


# --- uploaded galleries ------------------------------------------------------------------------

def _zip(path, members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def test_uploads_and_zip_members_are_indexed_with_their_hashes(tmp_path):
    coffee = (EXAMPLES / "coffee.jpg").read_bytes()
    archive = _zip(tmp_path / "mine.zip", {"../../outside/coffee.jpg": coffee,
                                           "notes.png": b"not an image", "__MACOSX/": b"",
                                           ".hidden.jpg": coffee})
    pipe = RetrievalPipeline(tiny_clip_encoder())
    progress = []
    gallery = pipe.index_uploads([archive, EXAMPLES / "rocket.jpg"],
                                 progress=lambda d, t: progress.append((d, t)))
    assert gallery.index.names == ["coffee.jpg", "rocket.jpg"]  # a name, never a path
    assert gallery.index.hashes == [hashlib.sha256(coffee).hexdigest(),
                                    image_digest(EXAMPLES / "rocket.jpg")]
    assert gallery.index.model == "openclip-vit-b-32" and gallery.index.root is None
    assert len(gallery.images) == 2 and max(gallery.images[1].size) <= 192
    assert len(gallery.notes) == 1 and "notes.png" in gallery.notes[0]
    assert progress == [(2, 2)]
    result = pipe(load_image(EXAMPLES / "rocket.jpg").image, "a cup", index=gallery.index,
                  reference_hash=image_digest(EXAMPLES / "rocket.jpg"))
    assert [m.path for m in result.results] == ["coffee.jpg"]  # the reference's bytes left out


def test_zip_bomb_and_oversized_archives_are_refused(tmp_path, monkeypatch):
    pipe = RetrievalPipeline(tiny_clip_encoder())
    bomb = _zip(tmp_path / "bomb.zip", {"big.png": b"\0" * (4 * 2**20)})
    with pytest.raises(UserInputError, match="zip bomb guard"):
        pipe.index_uploads([bomb])
    from engine.inputs import files
    monkeypatch.setattr(files, "MAX_ZIP_MEMBERS", 2)
    many = _zip(tmp_path / "many.zip", {f"{i}.jpg": b"x" for i in range(3)})
    with pytest.raises(UserInputError, match="holds 3 files; the limit is 2"):
        pipe.index_uploads([many])


def test_upload_with_no_usable_or_too_many_images_is_refused(tmp_path, monkeypatch):
    pipe = RetrievalPipeline(tiny_clip_encoder())
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"<html>")
    with pytest.raises(UserInputError, match="No usable image in the upload: .*junk.jpg"):
        pipe.index_uploads([junk])
    monkeypatch.setattr(pipeline_module, "MAX_GALLERY", 1)
    with pytest.raises(UserInputError, match="2 images were uploaded; at most 1 can be used"):
        pipe.index_uploads([EXAMPLES / "cat.jpg", EXAMPLES / "coffee.jpg"])


# --- CLI and the tab -----------------------------------------------------------------------------

def test_cli_retrieve_prints_ranked_json(capsys, tmp_path, monkeypatch):
    from engine.cli import main
    monkeypatch.setenv("ENGINE_CACHE_DIR", str(tmp_path))
    status = main(["retrieve", "--gallery", str(GALLERY), "--reference",
                   str(EXAMPLES / "china_temple.jpg"), "--text", "at night", "--top-k", "4"])
    out = json.loads(capsys.readouterr().out)
    assert status == 0 and out["model"] == "efficientnet_lite0" and out["ms"] > 0
    assert [set(r) for r in out["results"]] == [{"path", "score", "explicit", "implicit"}] * 4
    scores = [r["score"] for r in out["results"]]
    assert scores == sorted(scores, reverse=True)
    assert out["results"][0]["path"].endswith("photo_china_temple_night.jpg")
    assert main(["retrieve", "--gallery", str(GALLERY), "--reference",
                 str(EXAMPLES / "cat.jpg"), "--text", ""]) == 2
    assert "empty" in capsys.readouterr().err


@pytest.mark.parametrize("args,words", [
    (["--model", "nope"], "unknown retrieve model 'nope'; valid: efficientnet_lite0, "
                          "openclip-vit-b-32"),
    (["--model", "openclip-vit-b-32"], "cannot be reached"),
    (["--gallery", "/no/such/dir"], "does not exist"),
])
def test_cli_retrieve_refusals_are_one_line_with_exit_2(capsys, tmp_path, monkeypatch, args,
                                                        words):
    from engine.cli import main
    monkeypatch.setenv("ENGINE_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    base = {"--gallery": str(GALLERY), "--reference": str(EXAMPLES / "cat.jpg"),
            "--text": "a dog"}
    base.update(dict(zip(args[::2], args[1::2])))
    assert main(["retrieve", *[x for kv in base.items() for x in kv], "--no-fallback"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and words in err[0]


def test_tab_keeps_a_session_gallery_for_3_hours():
    import gradio as gr

    from demos import retrieval
    with gr.Blocks() as blocks:
        retrieval.build()
    states = [b for b in blocks.blocks.values() if isinstance(b, gr.State)]
    # the session gallery, its shown results and the Scenes source's shown results
    assert len(states) == 3 and {s.time_to_live for s in states} == {3 * 3600}
    assert {d.api_name for d in blocks.fns.values()} >= {
        "retrieve", "retrieval_index_gallery", "retrieval_use_default", "retrieval_select"}
