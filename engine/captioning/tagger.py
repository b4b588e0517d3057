"""ImageNet tags of a photo, grouped into objects, and the class activation map of the top one.

EfficientNet-Lite0's 1,000 ImageNet classes are the vocabulary. Near-synonymous candidates
("tabby cat", "tiger cat") are grouped when they share a head noun or their MiniLM embeddings
are similar, and their probabilities summed. Each group's class activation map (CAM, Zhou et
al., "Learning Deep Features for Discriminative Localization", CVPR 2016) is the
probability-weighted sum of its classes' CAMs; its peak places the object.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image

from engine.captioning.sentence import Tag
from engine.errors import UserInputError

if TYPE_CHECKING:
    from engine.models.efficientnet import EfficientNetLite0
    from engine.models.minilm import MiniLMEncoder
    from engine.models.preprocess import Preprocess

#: Cosine similarity (MiniLM) above which two tag names count as the same kind of object.
SYNONYM_SIMILARITY = 0.6
#: The number of tag groups a caller may ask for.
TOP_K_RANGE = (1, 20)


class ImageNetTagger:
    """Tags (grouped ImageNet classes) and the top tag's CAM of one image.

    Args:
        backbone: the ImageNet classifier; it must expose ``class_names`` (1,000 names in logit
            order), ``classifier_weight`` (1000, C) and a forward giving ``logits`` (B, 1000)
            and ``head_map`` (B, C, H/32, W/32) (as :class:`EfficientNetLite0` does).
        text_encoder: sentence encoder with ``encode(texts).embeddings`` (N, D) unit vectors
            (as :class:`MiniLMEncoder`), used to group synonyms.
        preprocess: the backbone's preprocessing (whole image, aspect ratio kept).
    """

    def __init__(self, backbone: EfficientNetLite0, text_encoder: MiniLMEncoder,
                 preprocess: Preprocess) -> None:
        self.backbone, self.text_encoder, self.preprocess = backbone, text_encoder, preprocess

    def _group(self, names: list[str]) -> list[list[int]]:
        """Indices of ``names`` grouped greedily: a name joins the first group whose leader
        shares its last word or is similar (>= :data:`SYNONYM_SIMILARITY`) in meaning."""
        emb = self.text_encoder.encode(names).embeddings  # (K, D) unit vectors
        sim = emb @ emb.T  # (K, K) cosine similarity
        groups: list[list[int]] = []
        for k in range(len(names)):
            for g in groups:
                same_noun = names[k].split()[-1].lower() == names[g[0]].split()[-1].lower()
                if same_noun or float(sim[k, g[0]]) >= SYNONYM_SIMILARITY:
                    g.append(k)
                    break
            else:
                groups.append([k])
        return groups

    def tags_and_cam(self, image: Image.Image, top_k: int = 5
                     ) -> tuple[list[Tag], np.ndarray]:
        """ImageNet tags (grouped) and the top group's CAM.

        Args:
            image: RGB image.
            top_k: number of tag groups returned (1..20).

        Returns:
            (tags, cam): at most ``top_k`` tags, most probable first, and cam an (h, w) float32
            array >= 0 on the backbone's stride-32 grid (h, w = H/32, W/32 of the resized
            image), unnormalised.

        Raises:
            UserInputError: ``top_k`` outside 1..20.
        """
        lo, hi = TOP_K_RANGE
        if not lo <= top_k <= hi:
            raise UserInputError(f"top_k must be in {lo}..{hi}, got {top_k}")
        x = self.preprocess.whole_image(image)  # (1, 3, H, W)
        with torch.no_grad():
            out = self.backbone(x)
            probs = out.logits.float().softmax(-1)[0]  # (1000,)
            top_p, top_i = probs.topk(max(10, 2 * top_k))  # (K,), K candidate classes
            # CAM of each candidate class: (K, C) x (C, h, w) -> (K, h, w)
            cams = torch.einsum("kc,chw->khw", self.backbone.classifier_weight[top_i],
                                out.head_map[0]).clamp(min=0)
        names = [self.backbone.class_names[i] for i in top_i.tolist()]
        groups = self._group(names)
        h, w = cams.shape[1:]
        tags = []
        for g in groups:
            cam = sum(cams[k] * top_p[k] for k in g)  # (h, w)
            peak = int(torch.argmax(cam))  # flat index into (h, w)
            tags.append(Tag(names[g[0]], float(top_p[g].sum()), [names[k] for k in g],
                            ((peak % w + 0.5) / w, (peak // w + 0.5) / h)))
        tags.sort(key=lambda t: -t.probability)
        best = next(g for g in groups if names[g[0]] == tags[0].name)
        cam = sum(cams[k] * top_p[k] for k in best).numpy()
        return tags[:top_k], np.nan_to_num(cam.astype(np.float32))
