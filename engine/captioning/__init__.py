"""Captioning: ImageNet tags grouped into objects with the top tag's CAM (``tagger``), a sentence
written from them (``sentence``), a hub captioner such as BLIP (``captioners``) -> ``pipeline``."""
