"""Few-shot classification: the support-set type (support.py), one FewShotPipeline for photos
(photos.py) and drawings (handwriting.py), the methods (methods/, one file each, discovered
automatically), Omniglot data, the episodic trainer, evaluation and checkpoints."""
