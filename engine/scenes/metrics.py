"""Caption metrics of the captioning and change-captioning papers: BLEU-4 and CIDEr-D.

Both are computed by ``pycocoevalcap`` (the MS-COCO caption evaluation code that the DUDA,
Show-Attend-Tell and VIVO papers report with), so our figures are the same numbers a paper's
table holds:

* BLEU-4: Papineni et al., "BLEU: a method for automatic evaluation of machine translation",
  ACL 2002. Corpus level (n-gram counts summed over all captions before the precisions are
  taken), geometric mean of the 1- to 4-gram precisions with the brevity penalty against the
  closest reference length. In [0, 1].
* CIDEr(-D): Vedantam et al., "CIDEr: Consensus-based Image Description Evaluation", CVPR 2015.
  ``pycocoevalcap``'s ``Cider`` is the CIDEr-D variant (TF-IDF n-gram vectors with clipping and
  a Gaussian length penalty, sigma = 6, times 10). The IDF is taken over the references of the
  evaluated set, so a score depends on the whole set (as in every paper). In [0, 10] (10 only
  when every n-gram is unique to its image); a paper's "CIDEr 112.3" is our 1.123 x 100.

Tokenisation: the COCO code runs the Java PTB tokenizer; our captions are plain lower-case
words, so :func:`tokenize` lower-cases and strips punctuation in Python (the same tokens for
such text, no Java).

Example::

    >>> from engine.scenes.metrics import caption_scores
    >>> caption_scores([["the red cube changed to blue"]], ["the red cube changed to blue"])
    {'bleu4': 0.9999999998..., 'cider': 0.0, 'n': 1}  # CIDEr's IDF is 0 on a one-image set
"""
from __future__ import annotations

import re
from typing import Dict, List, Sequence

__all__ = ["tokenize", "bleu4", "cider", "meteor", "meteor_available", "caption_scores"]

_PUNCT = re.compile(r"[^\w\s]")


def tokenize(text: str) -> str:
    """Lower-case ``text``, drop punctuation and collapse whitespace.

    Args:
        text: a caption, e.g. ``"The red cube changed to blue."``.

    Returns:
        The space-joined tokens, e.g. ``"the red cube changed to blue"``.
    """
    return " ".join(_PUNCT.sub(" ", text.lower()).split())


def _as_dicts(references: Sequence[Sequence[str]], candidates: Sequence[str]):
    if len(references) != len(candidates):
        raise ValueError(f"{len(references)} reference lists but {len(candidates)} candidates")
    if not candidates:
        raise ValueError("no captions to score")
    gts: Dict[int, List[str]] = {}
    res: Dict[int, List[str]] = {}
    for i, (refs, cand) in enumerate(zip(references, candidates)):
        if isinstance(refs, str) or not refs:
            raise ValueError(f"item {i}: references must be a non-empty list of strings, got {refs!r}")
        gts[i] = [tokenize(r) for r in refs]
        res[i] = [tokenize(cand)]
    return gts, res


def bleu4(references: Sequence[Sequence[str]], candidates: Sequence[str]) -> float:
    """Corpus BLEU-4 (pycocoevalcap's ``Bleu(4)``).

    Args:
        references: per item, one or more reference captions.
        candidates: per item, the generated caption (same length as ``references``).

    Returns:
        BLEU-4 in [0, 1].

    Raises:
        ValueError: lengths differ, nothing to score, or an item without references.
    """
    from pycocoevalcap.bleu.bleu import Bleu
    gts, res = _as_dicts(references, candidates)
    score, _ = Bleu(4).compute_score(gts, res, verbose=0)
    return float(score[3])


def cider(references: Sequence[Sequence[str]], candidates: Sequence[str]) -> float:
    """Corpus CIDEr-D (pycocoevalcap's ``Cider``): the mean of the per-item scores.

    Args and Raises as :func:`bleu4`.

    Returns:
        CIDEr-D in [0, 10] (multiply by 100 to compare with a paper's table).
    """
    from pycocoevalcap.cider.cider import Cider
    gts, res = _as_dicts(references, candidates)
    score, _ = Cider().compute_score(gts, res)
    return float(score)


def meteor_available() -> bool:
    """True when a ``java`` executable is on the PATH (``pycocoevalcap``'s METEOR 1.5 is a
    jar run by Java)."""
    import shutil
    return shutil.which("java") is not None


def meteor(references: Sequence[Sequence[str]], candidates: Sequence[str]) -> float:
    """METEOR 1.5 (Denkowski and Lavie, 2014) by ``pycocoevalcap``'s bundled jar.

    Args and Raises as :func:`bleu4`; also RuntimeError when Java is missing.

    Returns:
        METEOR in [0, 1].
    """
    if not meteor_available():
        raise RuntimeError("METEOR needs Java (pycocoevalcap runs meteor-1.5.jar); none found")
    from pycocoevalcap.meteor.meteor import Meteor
    gts, res = _as_dicts(references, candidates)
    scorer = Meteor()
    try:
        score, _ = scorer.compute_score(gts, res)
    finally:
        del scorer  # its __del__ ends the Java process
    return float(score)


def caption_scores(references: Sequence[Sequence[str]], candidates: Sequence[str],
                   with_meteor: bool = False) -> dict:
    """BLEU-4 and CIDEr-D (and METEOR if asked) of a set of captions.

    Args and Raises as :func:`bleu4`; ``with_meteor`` adds METEOR when Java is there.

    Returns:
        ``{"bleu4": float in [0, 1], "cider": float in [0, 10], "n": number of items}`` plus
        ``"meteor"`` in [0, 1].
    """
    out = {"bleu4": bleu4(references, candidates), "cider": cider(references, candidates),
           "n": len(candidates)}
    if with_meteor and meteor_available():
        out["meteor"] = meteor(references, candidates)
    return out
