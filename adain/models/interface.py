"""What a network is to the rest of adain: the interface that inference, tiling, the pipelines,
the app, export and training rely on, so that a network plugs in by registering one subpackage
of adain/models (``adain.models.NETWORKS``, ``adain.models.network``). Two do: ``adain`` (the
paper's) and ``microast`` (MicroAST, the real-time one).

A network registers, in its package (``adain/models/NAME/__init__.py``, importable without Flax):

- ``NAME``: its name, the value of ``--model``.
- ``MIN_SIDE``: the smallest image side it takes; ``DOWNSAMPLE``: image pixels per code pixel;
  ``code_size(n)``: the content code's length along an image axis of n pixels (rounding up).
  Outputs are cropped to the input's size from the top-left.
- ``bind(spec, arrays)``: the Flax NNX module holding ``arrays`` (numpy, device arrays or
  tracers: programs build it inside their trace, so a warm run never imports Flax); the
  module's ``spec`` is the static half of ``Params``.
- ``code_type()``: its style code's class. ``OWN_CODE``: whether alpha blends the style's code
  with the content's own code (generate's ``own_code``: the code of the content image as a
  style), rather than inside generate.
- ``STAGES``: generate's stages, each normalising its input with statistics over the whole
  image; ``TILE_MARGIN``: code pixels of context a tile needs; ``BYTES_PER_PIXEL``: host memory
  an untiled stylization takes (adain.inference.tiling, adain.inference.memory).
- its weights: a ``weights`` module that reads its published files (a format of adain.weights),
  checks them and names its arrays (``model_arrays``); ``adain.models.read_weights`` is how the
  commands find them.

The module ``bind`` returns has:

- ``encode_content(images_bhwc, valid_hw=None)``: the **content code**, the encoder's features
  (B, h, w, C) at ``code_size`` resolution. ``valid_hw`` (traced (h, w)) marks the image in the
  top-left of a larger, padded array, so that one compiled shape serves many sizes.
- ``encode_style(images_bhwc, mask_bhw=None, valid_hw=None)``: the **style code**, a pytree of
  per-image statistics, batch-first (AdaIN: relu4_1's channel means and stds, ``StyleCode``;
  MicroAST: two levels' and its modulator's, ``MicroASTCode``). Codes concatenate (``concat``),
  index (``code[i:i+1]``), save to and load from ``.npz``, and mix linearly (``mix(weights)``).
  ``style_maps(images_bhwc)`` are the maps whose statistics the code is, and ``code_of(stats)``
  the code from each map's (mean, std): tiles merge the statistics of huge images.
- ``generate(content_code, style_code, alpha, mask_bhw=None, content_stats=None,
  valid_hw=None)`` (and ``own_code`` where ``OWN_CODE``): the stylized images. ``alpha`` (a
  number, or one per image) interpolates the style's code with the content's own code (alpha 1: the style; 0: the content
  re-rendered). ``mask_bhw`` (at code resolution) takes the first of two codes where it is 1
  and the second where it is 0, statistics taken within each region. ``content_stats`` are the
  content code's statistics over the whole image, in (mean, std) rows per region.
- ``stage(k, x, style, alpha, mask_bhw, stats)``: generate's stage k, which tiling runs tile by
  tile with ``stats``, the statistics of the stage's input over the whole image, merged from
  the tiles' (counts, means and squared deviations), so that tiles equal the whole image.

Export (adain.export) writes ``encode_content``/``encode_style`` and ``generate`` as ONNX graphs
with symbolic sizes, from the bound module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Hashable
from typing import Any

import jax


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
  """A network's weights as a pytree: ``spec`` (static: which network and variant, hashable,
  e.g. adain.models.adain.architecture.Variant, whose ``network`` names its package) and
  ``arrays``, its variables by name ("encoder/convs/3/kernel", ...)."""

  spec: Hashable = dataclasses.field(metadata=dict(static=True))
  arrays: dict[str, Any]

  def bind(self):
    """The network's Flax module holding these arrays."""
    from adain.models import network

    return network(self.spec.network).bind(self.spec, self.arrays)


def fill(module, arrays: dict):
  """``module`` (built with placeholders) holding ``arrays``, its variables by name: their Flax
  NNX paths joined by "/" ("encoder/convs/3/kernel")."""
  from flax import nnx

  for path, node in nnx.iter_graph(module):
    if isinstance(node, nnx.Variable):
      node.set_value(arrays["/".join(map(str, path))])
  return module


def arrays_of(module) -> dict[str, Any]:
  """A module's variables by name (see ``fill``)."""
  from flax import nnx

  return {"/".join(map(str, path)): node.get_value() for path, node in nnx.iter_graph(module)
          if isinstance(node, nnx.Variable)}
