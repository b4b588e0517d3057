"""Few-shot methods, one file each, one interface (:class:`engine.fewshot.methods.base.FewShotClassifier`).

``list_methods()`` / ``create_method(name, backbone=...)`` are the registry of methods.
"""
from engine.fewshot.methods.base import FewShotClassifier, create_method, list_methods, register_method

__all__ = ["FewShotClassifier", "create_method", "list_methods", "register_method"]
