"""Few-shot classification: the support-set type, one pipeline for photos and drawings, the
methods (one file each in ``methods/``), Omniglot data, the episodic trainer and evaluation."""
