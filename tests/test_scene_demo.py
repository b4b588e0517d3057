"""The scene pipelines behind the Caption and Describe-the-changes tabs' "Scenes" sources
(engine/scenes/demo.py) and the VIVO decoding helper (fill_shape_slots), on the shipped models."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import UserInputError
from engine.scenes import demo
from engine.scenes.language import describe_scene
from engine.scenes.scene import Scene, SceneObject


@pytest.fixture(scope="module")
def captioning():
    from engine.factory import scene_caption_pipeline
    return scene_caption_pipeline()


@pytest.fixture(scope="module")
def changing():
    from engine.factory import scene_change_pipeline
    return scene_change_pipeline()


@pytest.mark.parametrize("bad", [-1, 1.5, "seven", None, float("nan"), 2 ** 31])
def test_check_seed_refuses_what_is_not_a_whole_number_in_range(bad):
    with pytest.raises(UserInputError, match="seed"):
        demo.check_seed(bad)


def test_check_seed_accepts_whole_floats_from_a_number_box():
    assert demo.check_seed(7.0) == 7 and demo.check_seed("12") == 12


def test_new_scene_is_the_same_scene_and_image_for_the_same_seed():
    s1, im1 = demo.new_scene(5)
    s2, im2 = demo.new_scene(5)
    s3, _ = demo.new_scene(6)
    assert s1 == s2 and s1 != s3
    assert im1.size == (demo.DISPLAY_SIZE, demo.DISPLAY_SIZE)
    assert np.array_equal(np.asarray(im1), np.asarray(im2))


def test_scene_caption_has_one_attention_map_per_word_and_the_truth(captioning):
    scene, image = demo.new_scene(3)
    r = captioning(image, scene=scene)
    assert r.caption and len(r.words) == len(r.attention) > 5
    assert r.attention.shape[1:] == (16, 16)
    np.testing.assert_allclose(r.attention.reshape(len(r.words), -1).sum(1), 1.0, atol=1e-4)
    assert r.truth == describe_scene(scene)
    # the parser reads the shipped scene well (F1 0.98): as many tags as objects
    assert len(r.tags) == len(scene.objects)
    overlay = r.overlay(0)
    assert overlay.size == image.size and overlay.mode == "RGB"
    assert not np.array_equal(np.asarray(overlay), np.asarray(r.image))
    with pytest.raises(UserInputError):
        r.overlay(len(r.words))


def test_the_learned_caption_names_the_objects_of_the_scene(captioning):
    """Done-when of issue 10: the caption matches the scene (greedy, 5 seeds): most mentions
    name an object that is there, and most objects are named."""
    bad = total = named = objects = 0
    for seed in range(5):
        scene, image = demo.new_scene(seed)
        r = captioning(image, scene=scene)
        bad, total = bad + len(r.hallucinated), total + r.mentions
        words = set(r.words)
        named += sum(o.shape in words and o.color in words for o in scene.objects)
        objects += len(scene.objects)
    assert total > 0 and bad / total < 0.2, (bad, total)
    assert named / objects > 0.7, (named, objects)


def test_hallucinated_mentions_are_those_the_scene_does_not_have(captioning):
    scene, image = demo.new_scene(3)
    other = Scene((SceneObject("cube", "gray", "small", "rubber", 0.0, 0.0),))
    r = captioning(image, scene=scene)
    r_other = captioning(image, scene=other)   # the same caption checked against a wrong truth
    assert r_other.caption == r.caption
    assert len(r_other.hallucinated) > len(r.hallucinated)
    assert all("small gray rubber cube" != h for h in r_other.hallucinated)


def test_decodings_are_seeded_and_unknown_ones_refused(captioning):
    scene, image = demo.new_scene(4)
    a = captioning(image, scene=scene, decoding="nucleus", seed=1)
    b = captioning(image, scene=scene, decoding="nucleus", seed=1)
    assert a.caption == b.caption
    beam = captioning(image, scene=scene, decoding="beam")
    assert beam.caption and len(beam.words) == len(beam.attention)
    with pytest.raises(UserInputError, match="decoding"):
        captioning(image, decoding="sideways")


def test_an_upload_is_captioned_with_the_scene_world_note(captioning):
    photo = Image.fromarray(np.random.default_rng(0).integers(0, 255, (90, 140, 3), np.uint8))
    r = captioning(photo, uploaded=True)
    assert r.truth is None and demo.UPLOAD_NOTE in r.notes
    assert r.image.size == (demo.DISPLAY_SIZE, demo.DISPLAY_SIZE)
    assert np.isfinite(r.attention).all()


@pytest.mark.parametrize("kind", ["color", "add", "drop", "distractor"])
def test_new_change_pair_has_the_asked_type_and_its_truth(kind, changing):
    pair, before, after = demo.new_change_pair(9, kind)
    assert pair.type == kind and before.size == after.size == (256, 256)
    r = changing(before, after, pair)
    assert r.truth == pair.captions and r.change_type == kind
    assert r.caption and r.map_before.shape == r.map_after.shape
    np.testing.assert_allclose(r.map_before.sum(), 1.0, atol=1e-4)
    assert r.before_overlay.size == before.size
    assert len(r.dynamic_attention) == len(r.caption.split())


def test_a_random_change_pair_is_drawn_from_the_seed():
    p1, _, _ = demo.new_change_pair(21, "random")
    p2, _, _ = demo.new_change_pair(21, "random")
    assert p1.type == p2.type and p1.captions == p2.captions


def test_unknown_change_type_is_refused_with_the_valid_ones():
    with pytest.raises(UserInputError, match="valid: random, color"):
        demo.new_change_pair(1, "colour-ish")


def test_fill_shape_slots_names_the_shape_whose_embedding_matches_the_attended_cell():
    """The visual vocabulary picks the slot's word: make "cylinder"'s embedding the memory
    vector of cell 40 and let the noun attend there; every other word stays."""
    from engine.models.scene_captioner import SceneCaptionerConfig, SceneCaptionerNet
    from engine.scenes.captioner import CAPTION_WORDS, fill_shape_slots
    torch.manual_seed(0)
    net = SceneCaptionerNet(SceneCaptionerConfig(words=CAPTION_WORDS, d_model=32, heads=2,
                                                 ff=64, layers=1)).eval()
    feats = torch.randn(1, net.config.feature_channels, 16, 16)
    with torch.no_grad():
        m = net.memory(feats)[0]
        vocab = net.config.vocab
        for w in ("cube", "sphere", "cylinder"):
            net.embed.weight[vocab.index(w)] = 0.0
        net.embed.weight[vocab.index("cylinder")] = 5 * m[40]
        net.embed.weight[vocab.index("sphere")] = 5 * m[200]
    words = ["a", "large", "red", "metal", "cube", "is", "left", "of", "a", "sphere", "."]
    maps = torch.zeros(len(words), 16, 16)
    maps.view(len(words), -1)[:, 0] = 1.0
    maps[4] = 0
    maps[4].view(-1)[40] = 1.0        # the first noun looked at cell 40
    maps[9] = 0
    maps[9].view(-1)[200] = 1.0       # the second at cell 200
    out = fill_shape_slots(net, feats, words, maps)
    assert out[4] == "cylinder" and out[9] == "sphere"
    assert [w for k, w in enumerate(out) if k not in (4, 9)] == \
        [w for k, w in enumerate(words) if k not in (4, 9)]
    # gated by the image-level tags: a threshold no tag logit reaches leaves the decoder's words
    assert fill_shape_slots(net, feats, words, maps, threshold=1e9) == words
    with pytest.raises(ValueError):
        fill_shape_slots(net, feats, words, maps[:3])


def test_caption_images_without_held_out_needs_a_held_out_shape():
    from engine.scenes.captioner import CaptionerTrainConfig
    with pytest.raises(ValueError, match="needs held_out"):
        CaptionerTrainConfig(caption_images="without-held-out")
    with pytest.raises(ValueError, match="caption_images"):
        CaptionerTrainConfig(held_out="cylinder", caption_images="sometimes")
    cfg = CaptionerTrainConfig(held_out="cylinder", caption_images="without-held-out",
                               tag_weight=1.0)
    assert cfg.tag_weight == 1.0


def test_fill_shape_slots_from_objects_takes_the_shape_under_the_attention_peak():
    """Detector-tag slot filling: the noun whose map peaks on the parser's cylinder becomes
    "cylinder"; a noun whose peak is far from every object keeps its word."""
    from engine.scenes.captioner import fill_shape_slots_from_objects
    from engine.scenes.parser import ParsedObject
    objects = [ParsedObject(SceneObject("cylinder", "red", "large", "metal", 0.0, 0.0), 0.9,
                            (20.0, 100.0)),
               ParsedObject(SceneObject("cube", "blue", "small", "rubber", 1.0, 1.0), 0.9,
                            (100.0, 20.0))]
    words = ["a", "red", "sphere", "is", "left", "of", "a", "blue", "sphere", ".", "a", "sphere"]
    maps = torch.zeros(len(words), 16, 16)
    maps[:, 8, 8] = 1.0                     # default: the centre, far from both objects
    maps[2] = 0
    maps[2, 12, 2] = 1.0                    # cell centre (20, 100) px: the cylinder
    maps[8] = 0
    maps[8, 2, 12] = 1.0                    # cell centre (100, 20) px: the cube
    out = fill_shape_slots_from_objects(words, maps, objects)
    assert out[2] == "cylinder" and out[8] == "cube" and out[11] == "sphere"
    assert out[:2] == words[:2] and out[3:8] == words[3:8]
    assert fill_shape_slots_from_objects(words, maps, []) == words
