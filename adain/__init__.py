"""adain: arbitrary style transfer in real time with adaptive instance normalization (JAX/Flax)."""

from adain.errors import AdainError, ImageError, WeightsError
from adain.models import AdaIN, Decoder, Encoder, StyleCode

__all__ = ["AdaIN", "AdainError", "Decoder", "Encoder", "ImageError", "StyleCode", "WeightsError"]
