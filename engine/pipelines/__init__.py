"""One pipeline per task, each a callable with the same argument names (image, text, seed...)."""
