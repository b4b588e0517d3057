"""Composed image retrieval: text parsing, ConSE, ARTEMIS-style scoring, the cached gallery
index, the bundled examples, the CLI, and hub mode with a tiny OpenCLIP."""
from __future__ import annotations

import csv
import json
import re
import shutil

import numpy as np
import pytest
import torch
from cases import ACCEPTED
from conftest import EXAMPLES, ROOT

from engine.inputs.images import load_image
from engine.retrieval.scoring import artemis_scores, image_attributes, parse_modification
from engine.retrieval.conse import conse_embed
from engine.retrieval.index import GalleryIndex, index_folder, index_images
from engine.retrieval.pipeline import RetrievalPipeline, image_digest

GALLERY = ROOT / "assets" / "galleries" / "default"
RETRIEVAL_EXAMPLES = json.loads((ROOT / "assets" / "galleries" / "examples.json").read_text())


@pytest.fixture(scope="module")
def default_index():
    index, notes = index_folder(GALLERY)
    assert notes == []
    return index


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
    names = torch.nn.functional.normalize(torch.randn(20, 8, generator=torch.Generator().manual_seed(0)), dim=-1)
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


@pytest.mark.parametrize("example", RETRIEVAL_EXAMPLES, ids=lambda e: e["text"])
def test_bundled_example_puts_a_satisfying_image_in_the_top_5(default_index, example):
    rows = {r["file"]: " ".join(r.values()) for r in csv.DictReader(open(GALLERY / "SOURCES.csv"))}
    ref = load_image(ROOT / example["reference"]).image
    result = RetrievalPipeline()(ref, example["text"], index=default_index,
                                 weight=example["weight"], top_k=5)
    names = [m.path.rsplit("/", 1)[-1] for m in result.results]
    assert any(re.search(example["satisfies"], rows[n]) for n in names), (example, names)


def test_reference_taken_from_the_gallery_is_left_out(default_index):
    path = GALLERY / "photo_cat.jpg"
    result = RetrievalPipeline()(load_image(path).image, "in black and white",
                                 index=default_index, top_k=5,
                                 reference_hash=image_digest(str(path)))
    assert "photo_cat.jpg" not in [m.path.rsplit("/", 1)[-1] for m in result.results]
    assert result.results[0].path.endswith("photo_cat_bw.jpg")


def test_text_naming_nothing_ranks_by_reference_and_says_so(default_index, cat_image):
    result = RetrievalPipeline()(cat_image, "the same", index=default_index, top_k=3)
    assert all(m.explicit == 0 for m in result.results) and result.notes
    with pytest.raises(ValueError, match="empty"):
        RetrievalPipeline()(cat_image, " \n", index=default_index)
    with pytest.raises(ValueError, match="top_k"):
        RetrievalPipeline()(cat_image, "a dog", index=default_index, top_k=0)


def test_folder_index_is_cached_and_only_changed_files_are_encoded(tmp_path):
    gallery, cache = tmp_path / "g", tmp_path / "cache"
    gallery.mkdir()
    for name in ("cat.jpg", "coffee.jpg", "rocket.jpg"):
        shutil.copy(EXAMPLES / name, gallery / name)
    (gallery / "notes.png").write_bytes(b"<html>not an image</html>")
    calls = []
    index, notes = index_folder(gallery, cache=cache, progress=lambda d, t: calls.append(t))
    assert index.names == ["cat.jpg", "coffee.jpg", "rocket.jpg"] and calls == [3]
    assert any("notes.png" in n for n in notes)
    assert index.semantic.shape == (3, 384) and index.visual.shape == (3, 1280)
    calls.clear()
    again, _ = index_folder(gallery, cache=cache, progress=lambda d, t: calls.append(t))
    assert calls == [] and np.array_equal(again.visual, index.visual)
    shutil.copy(EXAMPLES / "flower.jpg", gallery / "coffee.jpg")  # one file changed
    changed, _ = index_folder(gallery, cache=cache, progress=lambda d, t: calls.append(t))
    assert calls == [1]
    assert np.array_equal(changed.visual[0], index.visual[0])
    assert not np.allclose(changed.visual[1], index.visual[1])
    assert len(list(cache.glob("*.npz"))) == 1


def test_odd_but_valid_images_index_and_query_to_finite_scores(cases_dir, cat_image):
    items = [(n, load_image(cases_dir / n).image) for n in sorted(ACCEPTED)]
    index = index_images(items)
    for arr in (index.semantic, index.visual, index.attributes):
        assert np.isfinite(arr).all()
    black = load_image(cases_dir / "all_black_8.png").image
    result = RetrievalPipeline()(black, "at night", index=index, top_k=len(items))
    assert all(np.isfinite(m.score) for m in result.results)


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


def test_hub_retrieval_with_a_tiny_openclip_uses_clip_embeddings(cat_image, coffee_image):
    from tiny_models import tiny_openclip

    from engine.models._zoo import CLIP_PREPROCESS
    from engine.models._factory import use_model
    from dataclasses import replace
    with use_model("openclip-vit-b-32", tiny_openclip(), preprocess=replace(CLIP_PREPROCESS, size=32)):
        index = index_images([("cat", cat_image), ("coffee", coffee_image),
                              ("cat_gray", cat_image.convert("L").convert("RGB"))],
                             model="openclip-vit-b-32")
        assert index.semantic.shape == (3, 16) and index.model == "openclip-vit-b-32"
        result = RetrievalPipeline()(cat_image, "a cup in black and white", index=index, top_k=3)
    assert result.model == "openclip-vit-b-32" and len(result.results) == 2  # the cat itself left out
    assert all(np.isfinite([m.score, m.explicit, m.implicit]).all() for m in result.results)
    assert isinstance(GalleryIndex.load(ROOT / "nonexistent"), type(None))
