"""Few-shot segmentation: masked average pooling prototypes and cosine similarity (PANet), the
pipeline over an smp-style encoder, and its episodic mIoU evaluation."""
