"""Captioning: ImageNet tags grouped into objects, a sentence written from them (VIVO/Oscar
idea), the class activation map of the top tag, and a hub captioner (BLIP) behind one interface."""
