"""Few-shot methods, one file each, one interface (:class:`base.FewShotClassifier`).

Every module of this package is discovered by ``list_methods()``; ``create_method(name,
backbone=...)`` builds one and ``method_class(name)`` gives its titles, defaults and training setup.
"""
from engine.fewshot.methods.base import (FewShotClassifier, TrainSetup, create_method,
                                         list_methods, method_class, register_method)

__all__ = ["FewShotClassifier", "TrainSetup", "create_method", "list_methods", "method_class",
           "register_method"]
