"""Backbones, the upsampling neck, the heads and the assembled CenterNet model.

Importing the package registers the built-in architectures (:mod:`.registry`).
"""

from . import centernet, dla, hourglass  # noqa: F401  (each registers its builders)
from .registry import create_model, list_models, register_model

__all__ = ["create_model", "list_models", "register_model"]
