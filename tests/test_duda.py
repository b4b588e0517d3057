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
