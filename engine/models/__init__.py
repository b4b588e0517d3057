"""Networks, their weights and preprocessing, and the model registry + factory (as in timm).

Importing this package registers every model; ``list_models`` / ``get_spec`` read the registry,
``create_model`` / ``load_model`` build instances (only :mod:`engine.factory` calls these two).
"""
from engine.models._hub import OFFLINE_MESSAGE, HubUnavailableError, hub_available
from engine.models._registry import ModelSpec, get_spec, list_models, register_model
from engine.models._factory import create_model, load_model
from engine.models.preprocess import Preprocess
from engine.models import _zoo, _seg_zoo, omniglot, scene_parser, scene_captioner, duda, scene_generator, cir  # noqa: F401,E402  (register the entries)

__all__ = ["HubUnavailableError", "ModelSpec", "OFFLINE_MESSAGE", "Preprocess", "create_model",
           "get_spec", "hub_available", "list_models", "load_model", "register_model"]
