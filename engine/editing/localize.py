"""Find the region a text names: text -> ImageNet classes (MiniLM), class activation map (CAM,
Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016), refined to
the object's outline with SLIC superpixels (Achanta et al., TPAMI 2012).

The CAM of the matched classes is averaged inside each superpixel; superpixels with a high CAM
are the object, those with a low CAM background, and the uncertain ones in between join the side
whose colours (mean CIELAB) they match, a superpixel version of GrabCut's colour models (Rother
et al., SIGGRAPH 2004); then neighbours of the same colour join (region growing, 3 rings), and
the connected part holding the CAM peak is the object (holes filled). "The background" is the
complement of the image's most probable object.

:class:`Localiser` is the component (built by :mod:`engine.factory` from EfficientNet-Lite0, its
preprocessing, MiniLM and the shared class-name table); :func:`refine` is the pure CAM -> mask step.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from engine.colours import rgb_to_lab
from engine.errors import UserInputError
from engine.models.class_text import ClassNameEmbeddings
from engine.models.preprocess import Preprocess

#: MiniLM cosine similarity a phrase needs with some ImageNet class name to be localised.
MIN_SIMILARITY = 0.45
#: Smallest summed probability the classifier must give the matched classes for the object to
#: count as *in the image*; below it nothing is edited (the CAM of an absent class highlights
#: whatever looks most like it: "the dog" on the coffee photo was the cup and saucer).
#: Measured with ``python -m benchmarks.edit_presence`` on the 7 bundled photos: the objects
#: the examples, docs and tests name (cat, flower, cup, coffee cup, helmet) score 0.028-0.71
#: and all edit; 109 of 112 (photo, absent object) pairs score 0.0001-0.0072 (median 0.0007)
#: and are refused; the 3 that pass are "bird" on the flower photo (0.013) and "piñata" (no
#: ImageNet class: matched to daisy / bow tie, which those photos show) on the flower and
#: Grace Hopper photos. Things a photo shows but the classifier does not see (a flag, a spoon:
#: 0.0009-0.0054) are refused too; painting a mask is the way to edit them.
MIN_PROBABILITY = 0.01
#: Classes within this similarity of the best match are localised together (synonyms).
SIMILARITY_BAND = 0.08
#: Superpixels whose mean CAM is above this fraction of the maximum belong to the object.
CAM_KEEP = 0.35
#: Superpixels above this fraction of the peak CAM are surely the object; those below
#: 0.45 x ``CAM_KEEP`` surely background; the rest join the side whose colours they match.
SURE_OBJECT = 0.6
#: An uncertain superpixel joins the object if its colour distance to the object is below
#: this times its distance to the background (> 1 favours the object).
FG_BIAS = 1.3
#: Region growing: colour difference (CIELAB ΔE) and smallest CAM fraction for a neighbouring
#: superpixel to join the object.
GROW_DELTA_E, GROW_MIN_CAM = 10.0, 0.08
#: Long side (pixels) at which superpixels are computed.
SEGMENT_SIDE = 320


@dataclass
class Localisation:
    """Where a phrase is in an image.

    Attributes:
        mask: (H, W) bool at the image's size.
        classes: matched ImageNet class names, best first.
        similarity: MiniLM similarity of the phrase and the best class, in [-1, 1].
        probability: the classifier's summed probability of the matched classes, in [0, 1].
    """

    mask: np.ndarray
    classes: list[str]
    similarity: float
    probability: float


def _grow(segments: np.ndarray, colours: np.ndarray, means: np.ndarray, chosen: np.ndarray,
          rounds: int = 3) -> np.ndarray:
    """Region growing over superpixels: a neighbour of the object whose mean colour is within
    ``GROW_DELTA_E`` (CIELAB) of an adjacent object superpixel, and whose CAM is not negligible
    (>= ``GROW_MIN_CAM``), joins it; up to ``rounds`` rings."""
    pairs = np.concatenate([np.stack([segments[:, :-1].ravel(), segments[:, 1:].ravel()], 1),
                            np.stack([segments[:-1].ravel(), segments[1:].ravel()], 1)])
    pairs = np.unique(pairs[pairs[:, 0] != pairs[:, 1]], axis=0)
    pairs = np.concatenate([pairs, pairs[:, ::-1]])  # (P, 2) both directions
    close = np.linalg.norm(colours[pairs[:, 0]] - colours[pairs[:, 1]], axis=1) < GROW_DELTA_E
    chosen = chosen.copy()
    for _ in range(rounds):
        src, dst = pairs[:, 0], pairs[:, 1]
        join = chosen[src] & ~chosen[dst] & close & (means[dst] >= GROW_MIN_CAM)
        if not join.any():
            break
        chosen[dst[join]] = True
    return chosen


def refine(image: Image.Image, cam: np.ndarray, keep: float = CAM_KEEP) -> np.ndarray:
    """CAM -> object mask following superpixel outlines.

    Args:
        image: RGB image (W x H).
        cam: (h, w) float >= 0.
        keep: superpixels above ``keep`` x max mean-CAM are kept.

    Returns:
        (H, W) bool (empty if the CAM is all zero).
    """
    from scipy import ndimage
    from skimage.segmentation import slic
    W, H = image.size
    scale = min(1.0, SEGMENT_SIDE / max(W, H))
    small = image.resize((max(8, round(W * scale)), max(8, round(H * scale))),
                         Image.Resampling.BILINEAR)
    heat = np.asarray(Image.fromarray(cam).resize(small.size, Image.Resampling.BILINEAR))
    if heat.max() <= 0:
        return np.zeros((H, W), bool)
    segments = slic(np.asarray(small), n_segments=150, compactness=10, start_label=0)
    index = np.arange(segments.max() + 1)
    means = np.asarray(ndimage.mean(heat, labels=segments, index=index)) / float(heat.max())
    lab = rgb_to_lab(np.asarray(small, np.float32) / 255.0)
    colours = np.stack([ndimage.mean(lab[..., c], labels=segments, index=index)
                        for c in range(3)], 1)  # (S, 3) mean Lab of each superpixel
    sure_fg, sure_bg = means >= SURE_OBJECT, means < keep * 0.45
    chosen_sp = means >= keep
    unknown = ~sure_fg & ~sure_bg
    if sure_fg.any() and sure_bg.any() and unknown.any():
        # GrabCut-like step: an uncertain superpixel joins the side whose colours it matches
        d = np.linalg.norm(colours[unknown][:, None] - colours[None], axis=-1)  # (U, S)
        d_fg = np.where(sure_fg[None], d, np.inf).min(1)
        d_bg = np.where(sure_bg[None], d, np.inf).min(1)
        chosen_sp[unknown] = d_fg < FG_BIAS * d_bg
    chosen_sp = _grow(segments, colours, means, chosen_sp)
    chosen = chosen_sp[segments]
    labels, _ = ndimage.label(chosen)
    peak = labels[np.unravel_index(np.argmax(np.where(chosen, heat, -1)), heat.shape)]
    mask = ndimage.binary_fill_holes(labels == peak) if peak else chosen
    big = Image.fromarray(mask.astype(np.uint8) * 255).resize((W, H), Image.Resampling.NEAREST)
    return np.asarray(big) > 127




class Localiser:
    """Finds the region a phrase names, with an ImageNet classifier and a sentence encoder.

    Args:
        backbone: the classifier (:class:`engine.models.efficientnet.EfficientNetLite0`):
            ``backbone(x)`` gives ``.logits`` (1, C) and ``.head_map`` (1, K, h, w), and
            ``backbone.classifier_weight`` is (C, K), the final linear layer CAM weights with.
        preprocess: the backbone's preprocessing (its ``whole_image`` keeps the aspect ratio).
        text_encoder: sentence encoder with ``encode(list[str]) -> .embeddings`` (N, D) unit
            vectors (:class:`engine.models.minilm.MiniLMEncoder`).
        class_text: the backbone's C class names embedded by ``text_encoder`` (shared, one
            per process), in logit order.
        min_probability: summed probability of the matched classes below which a named
            object counts as not in the image (:data:`MIN_PROBABILITY`).

    Raises:
        ValueError: ``class_text`` does not have one name per row of the classifier.
    """

    def __init__(self, backbone, preprocess: Preprocess, text_encoder,
                 class_text: ClassNameEmbeddings,
                 min_probability: float = MIN_PROBABILITY) -> None:
        rows = backbone.classifier_weight.shape[0]
        if len(class_text.class_names) != rows:
            raise ValueError(f"{len(class_text.class_names)} class names for a classifier of "
                             f"{rows} classes")
        self.backbone, self.preprocess = backbone, preprocess
        self.text_encoder, self.class_text = text_encoder, class_text
        self.min_probability = float(min_probability)

    def match_classes(self, phrase: str, probs: torch.Tensor) -> tuple[list[int], float]:
        """Classes a phrase names, ordered by the image's probability.

        Args:
            phrase: object words ("cat", "coffee cup").
            probs: (C,) float32 softmax probabilities of the image.

        Returns:
            (class indices, best cosine similarity in [-1, 1]).

        Raises:
            UserInputError: no class name is similar enough (the message names the closest).
        """
        query = self.text_encoder.encode([phrase]).embeddings  # (1, D)
        sim = (query @ self.class_text.table.T)[0]  # (C,)
        best = float(sim.max())
        names = self.class_text.class_names
        if best < MIN_SIMILARITY:
            closest = ", ".join(names[i] for i in sim.topk(3).indices.tolist())
            raise UserInputError(f"\"{phrase}\" does not match any of the 1,000 ImageNet object "
                                 f"names the offline editor can find (closest: {closest}). "
                                 f"Paint the region in caption + mask mode instead.")
        cand = torch.nonzero(sim >= best - SIMILARITY_BAND).flatten()
        order = cand[probs[cand].argsort(descending=True)]
        return order.tolist(), best

    def _classify(self, image: Image.Image) -> tuple[torch.Tensor, torch.Tensor]:
        """One backbone pass: (K, h, w) head feature map and (C,) float32 probabilities."""
        x = self.preprocess.whole_image(image)  # (1, 3, H', W'), aspect ratio kept
        with torch.no_grad():
            out = self.backbone(x)
            probs = out.logits.float().softmax(-1)[0]  # (C,)
        return out.head_map[0], probs

    def _cam(self, head_map: torch.Tensor, probs: torch.Tensor, classes: list[int]) -> np.ndarray:
        """(h, w) float32 CAM (>= 0) of the first 5 ``classes``, weighted by probability."""
        idx = torch.tensor(classes[:5])
        weights = probs[idx] + 1e-4  # (k,)
        with torch.no_grad():
            cams = torch.einsum("kc,chw->khw", self.backbone.classifier_weight[idx], head_map)
            cam = (cams.clamp(min=0) * weights[:, None, None]).sum(0) / weights.sum()  # (h, w)
        return np.nan_to_num(cam.numpy().astype(np.float32))

    def __call__(self, image: Image.Image, phrase: str | None) -> Localisation:
        """Mask of the object ``phrase`` names (None: the image's most probable object).

        The backbone runs once; the CAM is taken of the matched classes (or the top class).

        Args:
            image: RGB image (W x H).
            phrase: object words, or None.

        Returns:
            :class:`Localisation` with an (H, W) bool mask.

        Raises:
            UserInputError: the phrase matches no class; the classifier gives the matched
                classes less than ``min_probability`` (the object is not in the image, or not
                visible to the classifier); nothing could be localised.
        """
        head_map, probs = self._classify(image)
        names = self.class_text.class_names
        if phrase is None:
            classes, sim = [int(probs.argmax())], 1.0
        else:
            classes, sim = self.match_classes(phrase, probs)
            probability = float(probs[classes].sum())
            if probability < self.min_probability:
                raise UserInputError(
                    f"\"{phrase}\" was not found in this image, so nothing was edited: it "
                    f"matched ImageNet classes {', '.join(names[i] for i in classes[:3])}, which "
                    f"the classifier gives probability {probability:.3f} here (at least "
                    f"{self.min_probability:g} is needed). To edit it anyway, paint a mask over "
                    f"it in 'Caption + mask' mode.")
        mask = refine(image, self._cam(head_map, probs, classes))
        if not mask.any():
            raise UserInputError(f"could not find {phrase or 'the main object'} in this image; "
                                 "paint the region in caption + mask mode instead.")
        return Localisation(mask, [names[i] for i in classes], sim, float(probs[classes].sum()))
