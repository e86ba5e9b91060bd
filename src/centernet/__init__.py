"""CenterNet, "Objects as Points" (Zhou, Wang, Krähenbühl, 2019), in pure PyTorch."""

from .api import CenterNet, Detections
from .errors import CenterNetError
from .models import create_model, list_models, register_model

__version__ = "0.1.0"
__all__ = ["CenterNet", "CenterNetError", "Detections", "create_model", "list_models", "register_model"]
