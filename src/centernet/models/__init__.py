"""Backbones, the upsampling neck, the heads and the assembled CenterNet model."""
