"""Issue 10 section 3: caption metrics (hand-computed values) and the DUDA change captioner."""
import math

import pytest

from engine.scenes import metrics


# ---------------------------------------------------------------- metrics, by hand

def test_tokenize_lowercases_and_drops_punctuation():
    assert metrics.tokenize("The red  Cube changed to blue.") == "the red cube changed to blue"


def test_bleu4_matches_hand_computed_precisions():
    # candidate "a b c d e" vs reference "a b c d f": p1 = 4/5, p2 = 3/4, p3 = 2/3, p4 = 1/2,
    # equal lengths (BP = 1): BLEU-4 = (4/5 * 3/4 * 2/3 * 1/2) ** (1/4) = 0.2 ** 0.25
    assert metrics.bleu4([["a b c d f"]], ["a b c d e"]) == pytest.approx(0.2 ** 0.25, abs=1e-6)


def test_bleu4_brevity_penalty_by_hand():
    # every n-gram of "a b c d" is in the 6-word reference; BP = exp(1 - 6/4)
    assert metrics.bleu4([["a b c d e f"]], ["a b c d"]) == pytest.approx(math.exp(-0.5), abs=1e-6)


def test_bleu4_picks_closest_reference_and_is_zero_without_4gram_overlap():
    assert metrics.bleu4([["x y z w", "a b c d"]], ["a b c d"]) == pytest.approx(1.0, abs=1e-6)
    assert metrics.bleu4([["a b c d"]], ["d c b a"]) < 1e-6


def test_cider_matches_hand_computed_tf_idf_cosines():
    # Two images; every n-gram occurs in one image's references only: idf = log(2) for each.
    # Exact captions: cosine 1 for 1- and 2-grams, no 3-/4-grams (0): 10 * (1 + 1 + 0 + 0) / 4 = 5.
    refs = [["a b"], ["c d"]]
    assert metrics.cider(refs, ["a b", "c d"]) == pytest.approx(5.0, abs=1e-6)
    # "a a" against "a b": unigram vectors (2l, 0) and (l, l), l = log 2; clipped dot
    # min(2l, l) * l = l^2 over norms 2l * sqrt(2) l -> 1 / (2 sqrt 2); bigrams disjoint; same
    # length (no penalty): 10 * (1 / (2 sqrt 2)) / 4 for image 1, 5 for image 2, mean of both.
    first = 10 * (1 / (2 * math.sqrt(2))) / 4
    assert metrics.cider(refs, ["a a", "c d"]) == pytest.approx((first + 5.0) / 2, abs=1e-6)


def test_cider_length_penalty_by_hand():
    # "a b c" vs "a b": unigram vectors (l, l, l) and (l, l) -> cosine 2 / sqrt(6); bigram
    # ("a b", "b c") vs ("a b") -> 1 / sqrt(2); trigram has no reference n-grams -> 0;
    # length difference 1: exp(-1 / (2 * 36)).
    refs = [["a b"], ["c d"]]
    pen = math.exp(-1 / 72)
    first = 10 * pen * (2 / math.sqrt(6) + 1 / math.sqrt(2)) / 4
    # "c d" in image 2's candidate; "c" is in image 2's references only (df 1), but the
    # candidate of image 1 also has "c": its idf is still log 2 and it is unmatched in image 1.
    assert metrics.cider(refs, ["a b c", "c d"]) == pytest.approx((first + 5.0) / 2, abs=1e-6)


def test_caption_scores_rejects_bad_input():
    with pytest.raises(ValueError, match="2 reference lists but 1"):
        metrics.caption_scores([["a"], ["b"]], ["a"])
    with pytest.raises(ValueError, match="non-empty list"):
        metrics.caption_scores(["a b"], ["a b"])
    s = metrics.caption_scores([["a b"], ["c d"]], ["a b", "c d"])
    assert s["n"] == 2 and s["cider"] == pytest.approx(5.0, abs=1e-6)


# ---------------------------------------------------------------- DUDA model

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from engine.models.duda import (ASSET, BOS, EOS, PAD, DudaConfig, DudaNet, caption_loss,  # noqa: E402
                                load_duda, save_duda)
from engine.scenes import duda as sduda  # noqa: E402
from engine.scenes.train_duda import train_step  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
CAPTIONS = ["the red cube changed to blue", "no change was made", "the small sphere has disappeared",
            "someone added a metal cube"]


def _tiny(size=32):
    torch.manual_seed(0)
    vocab = sduda.build_vocab(CAPTIONS)
    return DudaNet(DudaConfig(vocab=vocab, image_size=size, width=4, attention_hidden=8,
                              embed=8, hidden=16, max_len=8))


def _batch(net, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    S = net.config.image_size
    before = torch.rand(n, 3, S, S, generator=g)
    after = before.clone()
    after[:, :, :8, :8] = 1.0  # a "change" in one corner
    tokens = torch.from_numpy(np.stack([sduda.encode(CAPTIONS[i % 4], net.config.vocab, 10)
                                        for i in range(n)]))
    return before, after, tokens


def test_caption_tokens_round_trip():
    vocab = sduda.build_vocab(CAPTIONS)
    ids = sduda.encode("The red cube changed to blue.", vocab, 10)
    assert ids[0] == BOS and list(ids).count(EOS) == 1 and ids[-1] == PAD
    assert sduda.decode(ids, vocab) == "the red cube changed to blue"
    with pytest.raises(ValueError, match="more than 3"):
        sduda.encode("the red cube", vocab, 3)


def test_attention_maps_are_distributions_over_the_grid():
    net = _tiny().eval()
    before, after, tokens = _batch(net)
    out = net(before, after, tokens)
    g = net.config.grid
    for key in ("map_before", "map_after"):
        assert out[key].shape == (4, g, g)
        assert (out[key] >= 0).all()
        assert torch.allclose(out[key].sum((1, 2)), torch.ones(4), atol=1e-5)
    assert out["logits"].shape == (4, tokens.shape[1] - 1, len(net.config.vocab))
    assert torch.allclose(out["alpha"].sum(-1), torch.ones(4, tokens.shape[1] - 1), atol=1e-5)
    with pytest.raises(ValueError, match="expects two"):
        net.localise(before[:, :, :16], after[:, :, :16])


def test_training_steps_reduce_the_loss_on_a_small_batch():
    net = _tiny()
    before, after, tokens = _batch(net)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-2)
    with torch.no_grad():
        net.eval()
        first = float(caption_loss(net(before, after, tokens)["logits"], tokens))
    for _ in range(30):
        train_step(net, opt, before, after, tokens)
    with torch.no_grad():
        net.eval()
        last = float(caption_loss(net(before, after, tokens)["logits"], tokens))
    assert last < 0.5 * first


def test_checkpoint_round_trip(tmp_path):
    net = _tiny().eval()
    path = save_duda(net, tmp_path / "d.safetensors", {"card": {"steps_done": 3}})
    back = load_duda(path)
    assert back.config == net.config
    before, after, _ = _batch(net)
    a, b = net.generate(before, after), back.generate(before, after)
    assert torch.equal(a["tokens"], b["tokens"])
    assert torch.allclose(a["map_after"], b["map_after"])
    (tmp_path / "bad.safetensors").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a DUDA checkpoint"):
        load_duda(tmp_path / "bad.safetensors")


def test_captioner_returns_words_alphas_and_maps():
    net = _tiny()
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 255, (2, 48, 48, 3), dtype=np.uint8)  # resized to 32 inside
    out = sduda.DudaCaptioner(net)(imgs, imgs[::-1])
    assert len(out) == 2
    for r in out:
        assert r.alpha.shape == (len(r.words), 3)
        assert r.map_before.shape == (8, 8) and abs(r.map_before.sum() - 1) < 1e-4
        assert set(r.words) <= set(net.config.vocab)


def test_pointing_game_on_a_grid_by_hand():
    att = np.zeros((4, 4))
    att[1, 2] = 1.0
    mask = np.zeros((16, 16), bool)
    mask[5, 9] = True          # inside cell (1, 2): rows 4-7, columns 8-11
    assert sduda.peak_hits(att, mask) == (True, 1 / 16)
    mask[:] = False
    mask[0:8, 0:4] = True      # cells (0, 0) and (1, 0)
    assert sduda.peak_hits(att, mask) == (False, 2 / 16)


def _run(*args, cwd=ROOT):
    env = {"PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1",
           "HOME": str(Path.home())}
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)


def test_eval_duda_cli_scores_every_type(tmp_path):
    net = _tiny()
    ck = save_duda(net, tmp_path / "tiny.safetensors")
    r = _run("eval-duda", "--checkpoint", str(ck), "--split", "val", "--n", "12",
             "--data-dir", str(tmp_path / "data"))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["per_type"]) == {"color", "material", "add", "drop", "move", "distractor"}
    assert out["total"]["n"] == 12 and 0 <= out["total"]["bleu4"] <= 1
    assert "pointing_after" in out["per_type"]["add"]
    assert "pointing_before" not in out["per_type"]["add"]
    bad = _run("eval-duda", "--checkpoint", str(tmp_path / "nope.safetensors"))
    assert bad.returncode == 2 and "not found" in bad.stderr


def test_shipped_duda_captions_a_rendered_pair_with_attention_maps(tmp_path):
    assert ASSET.is_file(), "assets/scenes/duda.safetensors is missing"
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    r = _run("render-change", "--seed", "2000001", "--type", "distractor", "--size", "128",
             "--out-before", str(a), "--out-after", str(b))
    assert r.returncode == 0, r.stderr
    r = _run("change", "--model", "duda", str(a), str(b), "--attention", str(tmp_path))
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["model"] == "duda" and out["caption"]
    assert len(out["dynamic_attention"]) == len(out["caption"].split())
    for side in ("before", "after"):
        assert Path(out["attention"][side]).is_file()



def test_attention_supervision_targets_and_loss():
    from engine.scenes.dataset import DatasetSpec, _pairs
    from engine.scenes.train_duda import attention_loss, mask_targets
    # items: distractor, colour, distractor, material, distractor, add, distractor, drop
    data = _pairs(DatasetSpec("changes", "val", 8, 32, supersample=1), 0, 8)
    t = mask_targets(data, 8)
    assert t.shape == (8, 2, 8, 8)
    assert np.allclose(t[0].sum((1, 2)), 0)                     # distractor: no target
    assert np.allclose(t[1].sum((1, 2)), 1)                     # colour: object in both images
    assert t[5, 0].sum() == 0 and np.isclose(t[5, 1].sum(), 1)   # add: only after
    assert t[7, 1].sum() == 0 and np.isclose(t[7, 0].sum(), 1)   # drop: only before
    tt = torch.from_numpy(t)
    good = {"map_before": tt[:, 0] + 1e-6, "map_after": tt[:, 1] + 1e-6}
    flat = {"map_before": torch.full((8, 8, 8), 1 / 64), "map_after": torch.full((8, 8, 8), 1 / 64)}
    assert attention_loss(good, tt) < attention_loss(flat, tt)
    assert float(attention_loss(flat, tt)) == pytest.approx(np.log(64), rel=1e-5)


# --- issue 10 (H2): the paper's speaker regulariser, the frozen parser encoder, the shipped
# model's behaviour on held-out pairs ---------------------------------------------------------

from engine.models.duda import speaker_entropy  # noqa: E402


def test_speaker_entropy_by_hand_ignores_padding():
    # positions 0..3 predict tokens[1:] = (5, 6, EOS, PAD): the last one is padding
    tokens = torch.tensor([[BOS, 5, 6, EOS, PAD]])
    alpha = torch.tensor([[[1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0], [0.5, 0.5, 0.0],
                           [1.0, 0.0, 0.0]]])
    want = (math.log(3) + 0.0 + math.log(2)) / 3
    assert float(speaker_entropy(alpha, tokens)) == pytest.approx(want, rel=1e-5)
    alpha[0, 3] = torch.tensor([1 / 3, 1 / 3, 1 / 3])          # the padded position: ignored
    assert float(speaker_entropy(alpha, tokens)) == pytest.approx(want, rel=1e-5)


def test_entropy_bonus_keeps_the_speaker_from_collapsing():
    before, after, tokens = _batch(_tiny(), n=8)
    ents = {}
    for w in (0.0, 2.0):
        net = _tiny()
        opt = torch.optim.AdamW(net.parameters(), lr=3e-2)
        for _ in range(40):
            st = train_step(net, opt, before, after, tokens, entropy_weight=w)
        ents[w] = st["entropy"]
        assert len(st["alpha"]) == 3 and abs(sum(st["alpha"]) - 1) < 1e-2
    assert ents[2.0] > 0.9 * math.log(3)                       # all three features in use
    assert ents[2.0] > ents[0.0]


def test_caption_type_reads_every_template():
    from engine.scenes.changes import CHANGE_TYPES, sample_change_pair
    for seed in range(3):
        for typ in CHANGE_TYPES + ("distractor",):
            for c in sample_change_pair(seed, typ).captions:
                assert sduda.caption_type(c) == typ, c
    assert sduda.caption_type("the red cube") is None
    assert sduda.caption_type("") is None


def _parser_tiny(size=32):
    torch.manual_seed(0)
    vocab = sduda.build_vocab(CAPTIONS)
    return DudaNet(DudaConfig(vocab=vocab, image_size=size, width=4, attention_hidden=8,
                              embed=8, hidden=16, max_len=8, encoder="parser", parser_width=4))


def test_parser_encoder_stays_frozen_and_precomputed_features_match_images():
    net = _parser_tiny()
    before, after, tokens = _batch(net)
    z = net.frozen_features(before)
    assert z.shape == (4, 2 * 4 + 18, 4, 4) and not z.requires_grad
    parser0 = {k: v.clone() for k, v in net.encoder.parser.state_dict().items()}
    opt = torch.optim.AdamW([p for p in net.parameters() if p.requires_grad], lr=1e-2)
    train_step(net, opt, net.frozen_features(before), net.frozen_features(after), tokens,
               precomputed=True)
    assert not net.encoder.parser.training                      # BatchNorm statistics kept
    for k, v in net.encoder.parser.state_dict().items():
        assert torch.equal(v, parser0[k]), k
    net.eval()
    a = net(before, after, tokens)
    b = net(net.frozen_features(before), net.frozen_features(after), tokens, precomputed=True)
    assert torch.allclose(a["logits"], b["logits"], atol=1e-5)
    with pytest.raises(ValueError, match="multiple of 8"):
        DudaConfig(vocab=net.config.vocab, image_size=36, encoder="parser")
    with pytest.raises(ValueError, match="unknown DUDA encoder"):
        DudaConfig(vocab=net.config.vocab, encoder="resnet")


def test_frozen_feature_cache_is_reused(tmp_path):
    from engine.scenes.dataset import DatasetSpec, build_dataset
    from engine.scenes.train_duda import cache_frozen_features
    net = _parser_tiny().eval()
    spec = DatasetSpec("changes", "val", 3, 32, supersample=1, shard_size=2)
    build_dataset(spec, tmp_path)
    a = cache_frozen_features(net, spec, tmp_path, "k")
    assert a.shape == (3, 2, 26, 4, 4) and a.dtype == np.float16
    files = sorted((spec.folder(tmp_path) / "frozen-k").glob("shard-*.npy"))
    assert [f.name for f in files] == ["shard-00000.npy", "shard-00001.npy"]
    np.save(files[0], np.zeros_like(np.load(files[0])))         # read back, not recomputed
    b = cache_frozen_features(net, spec, tmp_path, "k")
    assert (b[:2] == 0).all() and np.array_equal(b[2:], a[2:])


def _held_out_pairs(types, per_type, size):
    from engine.scenes.changes import sample_change_pair
    from engine.scenes.dataset import SPLIT_SEEDS
    before, after, kinds = [], [], []
    for k, typ in enumerate(types):
        for j in range(per_type):
            pair = sample_change_pair(SPLIT_SEEDS["test"] + 500 + 10 * k + j, typ)
            r = pair.render(size)
            before.append(r.before.image)
            after.append(r.after.image)
            kinds.append(typ)
    return np.stack(before), np.stack(after), kinds


@pytest.fixture(scope="module")
def shipped():
    from engine.models.duda import load_duda
    assert ASSET.is_file(), "assets/scenes/duda.safetensors is missing"
    return sduda.DudaCaptioner(load_duda())


def test_shipped_duda_says_no_change_for_held_out_distractors(shipped):
    before, after, _ = _held_out_pairs(["distractor"], 10, shipped.image_size)
    said = [r.no_change for r in shipped(before, after)]
    assert sum(said) >= 8, said


def test_shipped_duda_names_the_change_type_and_uses_all_three_features(shipped):
    from engine.scenes.changes import CHANGE_TYPES
    before, after, kinds = _held_out_pairs(list(CHANGE_TYPES), 3, shipped.image_size)
    out = shipped(before, after)
    right = [sduda.caption_type(r.caption) == t for r, t in zip(out, kinds)]
    assert sum(right) >= 11, [(r.caption, t) for r, t in zip(out, kinds)]  # of 15 pairs
    assert not any(r.no_change for r in out[:3])                          # colour pairs
    alpha = np.concatenate([r.alpha for r in out])                        # (words, 3)
    # not collapsed: every feature (before, difference, after) carries real weight somewhere
    assert (alpha.max(0) > 0.3).all(), alpha.max(0)
    assert (alpha.mean(0) > 0.05).all(), alpha.mean(0)

