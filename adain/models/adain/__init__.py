"""The paper's network (Huang & Belongie 2017): normalised VGG-19 to relu4_1, AdaIN, decoder.

``architecture`` (layer tables, variants; no Flax), ``network`` (the Flax NNX modules),
``codes`` (StyleCode), ``weights`` (its state dicts and published files). This package is its
registration (adain.models.interface), importable without JAX or Flax.
"""

from __future__ import annotations

from adain.models.adain.architecture import MIN_SIDE, Variant  # noqa: F401  (the interface's)

NAME = "adain"
DOWNSAMPLE = 8  # image pixels per code pixel: three 2x2 poolings
OWN_CODE = False  # alpha blends with the content code inside generate
STAGES = 1  # generate's stages, each normalising its input over the whole image
TILE_MARGIN = 4  # code pixels around a tile's core (adain.inference.tiling)
BYTES_PER_PIXEL = 1200  # host memory per image pixel, untiled (adain.inference.memory)


def code_size(n: int) -> int:
  """Code pixels along an axis of n image pixels: three ceil-mode 2x2 poolings."""
  return -(-n // 8)


def code_type():
  from adain.models.adain.codes import StyleCode

  return StyleCode


def bind(spec: Variant, arrays: dict):
  """The Flax module of variant ``spec`` holding ``arrays`` (adain.models.adain.weights' names)."""
  from adain.models.adain.weights import model_from_arrays

  return model_from_arrays(spec, arrays)
