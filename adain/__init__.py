"""adain: arbitrary style transfer in real time with adaptive instance normalization (JAX/Flax)."""

from __future__ import annotations

import importlib

from adain.errors import AdainError, ImageError, WeightsError

__all__ = ["AdaIN", "AdainError", "Decoder", "Encoder", "ImageError", "StyleCode", "WeightsError"]


def __getattr__(name: str):
  """The model classes, imported on first use: they load JAX, which the CLIs need only later
  (after adain.runtime's re-exec, and not at all for --help)."""
  if name in ("AdaIN", "Decoder", "Encoder", "StyleCode"):
    return getattr(importlib.import_module("adain.codes" if name == "StyleCode" else "adain.models"), name)
  raise AttributeError(f"module 'adain' has no attribute {name!r}")
