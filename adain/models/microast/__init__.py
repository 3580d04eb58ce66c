"""MicroAST (Wang et al., AAAI 2023): the AdaIN family's real-time member, 0.47 M parameters.

``architecture`` (layer tables with the published state dict names; no Flax), ``network`` (the
Flax NNX modules), ``codes`` (MicroASTCode), ``weights`` (its state dicts and published files).
This package is its registration (adain.models.interface), importable without JAX or Flax.
"""

from __future__ import annotations

from adain.models.microast.architecture import DOWNSAMPLE, MIN_SIDE, Spec, feature_size  # noqa: F401

NAME = "microast"
OWN_CODE = True  # alpha blends the style's code with the content's own (generate's own_code)
STAGES = 2  # generate's stages, each normalising its input over the whole image
TILE_MARGIN = 7  # code pixels around a tile's core: the least for float rounding (tests/test_tiling.py)
BYTES_PER_PIXEL = 400  # host memory per image pixel, untiled (adain.inference.memory)


def code_size(n: int) -> int:
  """Code pixels along an axis of n image pixels: two stride-2 convs, rounding up."""
  return feature_size(n)


def code_type():
  from adain.models.microast.codes import MicroASTCode

  return MicroASTCode


def bind(spec: Spec, arrays: dict):
  """The Flax module holding ``arrays`` (adain.models.microast.weights' names)."""
  from adain.models.microast.weights import model_from_arrays

  return model_from_arrays(arrays)
