"""adain: arbitrary style transfer in real time with adaptive instance normalization (JAX/Flax).

The package's layers, top to bottom: ``commands`` (argv, printing, exit codes; ``python -m
adain.X``), ``app`` and ``export`` (the web app and the ONNX/browser export), ``pipelines``
(clips, datasets) and ``augment`` (style augmentation for training), ``inference`` (Stylizer,
saved programs, tiling), ``models`` (the networks), ``weights`` (file formats) and ``hub``
(finding and fetching them), ``media`` (image and video files), with ``errors``, ``files`` and
``runtime`` at the bottom. Nothing imports upward.
"""

from __future__ import annotations

import importlib

from adain.errors import AdainError, ImageError, WeightsError

__all__ = ["AdaIN", "AdainError", "ImageError", "StyleCode", "Stylizer", "WeightsError", "video"]

_LAZY = {"AdaIN": "adain.models.adain.network", "StyleCode": "adain.models.adain.codes",
         "Stylizer": "adain.inference.stylizer"}


def __getattr__(name: str):
  """The library's front, imported on first use: it loads JAX, which the commands need only
  later (after their process set-up, and not at all for --help)."""
  if name in _LAZY:
    return getattr(importlib.import_module(_LAZY[name]), name)
  if name == "video":  # the clip pipeline: ``from adain import video``
    return importlib.import_module("adain.pipelines.video")
  raise AttributeError(f"module 'adain' has no attribute {name!r}")
