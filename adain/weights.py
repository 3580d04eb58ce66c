"""State dicts (PyTorch naming, OIHW arrays) to and from the Flax model.

Every weights format we read (.pth in both torch.save layouts, Lua Torch .t7, our native .npz)
first becomes a plain ``{"29.weight": ndarray, ...}`` dict keyed like pytorch-AdaIN's
nn.Sequential; this module checks names and shapes against the architecture and fills the model.
"""

from __future__ import annotations

import os

import jax.numpy as jnp
import numpy as np
from flax import nnx

from adain.errors import WeightsError
from adain.models import DECODER_LAYERS, ENCODER_LAYERS, VGG_UNUSED_LAYERS, AdaIN

StateDict = dict[str, np.ndarray]


def _expected_shapes(layers) -> dict[str, tuple[int, ...]]:
  shapes = {}
  for idx, cin, cout, k in layers:
    shapes[f"{idx}.weight"] = (cout, cin, k, k)
    shapes[f"{idx}.bias"] = (cout,)
  return shapes


VGG_SHAPES = _expected_shapes([(l.torch_index, l.cin, l.cout, l.ksize) for l in ENCODER_LAYERS])
VGG_OPTIONAL_SHAPES = _expected_shapes([(i, cin, cout, 3) for i, cin, cout in VGG_UNUSED_LAYERS])
DECODER_SHAPES = _expected_shapes([(l.torch_index, l.cin, l.cout, 3) for l in DECODER_LAYERS])


def check_state_dict(sd: StateDict, kind: str, path: str | os.PathLike | None = None) -> StateDict:
  """Returns the arrays the model uses (float32), or raises WeightsError naming what is wrong.

  ``kind`` is "vgg" or "decoder". A vgg file may hold the layers past relu4_1 too, as the
  published vgg_normalised does; they must have VGG-19's shapes and are dropped.
  """
  required = VGG_SHAPES if kind == "vgg" else DECODER_SHAPES
  optional = VGG_OPTIONAL_SHAPES if kind == "vgg" else {}
  what = "a normalised VGG-19 (vgg_normalised)" if kind == "vgg" else "an AdaIN decoder"
  missing = [k for k in required if k not in sd]
  if missing:
    raise WeightsError(path, f"not {what}: missing {len(missing)} tensor(s), e.g. {missing[0]!r}")
  unexpected = [k for k in sd if k not in required and k not in optional]
  if unexpected:
    raise WeightsError(path, f"not {what}: unexpected tensor {unexpected[0]!r}")
  out = {}
  for key, arr in sd.items():
    want = required.get(key) or optional[key]
    if tuple(arr.shape) != want:
      raise WeightsError(path, f"not {what}: {key} has shape {tuple(arr.shape)}, expected {want}")
    if not np.issubdtype(arr.dtype, np.floating):
      raise WeightsError(path, f"{key} has dtype {arr.dtype}, expected floating point")
    if key in required:
      if not np.all(np.isfinite(arr)):
        raise WeightsError(path, f"{key} holds NaN or Inf values")
      out[key] = np.asarray(arr, np.float32)
  return out


def _load_convs(convs, layers, sd: StateDict) -> None:
  for conv, layer in zip(convs, layers):
    w_oihw = sd[f"{layer.torch_index}.weight"]
    conv.kernel[...] = jnp.asarray(np.transpose(w_oihw, (2, 3, 1, 0)))
    conv.bias[...] = jnp.asarray(sd[f"{layer.torch_index}.bias"])


def _dump_convs(convs, layers) -> StateDict:
  sd = {}
  for conv, layer in zip(convs, layers):
    sd[f"{layer.torch_index}.weight"] = np.transpose(np.asarray(conv.kernel[...]), (3, 2, 0, 1))
    sd[f"{layer.torch_index}.bias"] = np.asarray(conv.bias[...])
  return sd


def model_from_state_dicts(vgg: StateDict, decoder: StateDict | None = None) -> AdaIN:
  """An AdaIN model holding these weights (a decoder left out stays at its random init)."""
  model = AdaIN(rngs=nnx.Rngs(0))
  _load_convs(model.encoder.convs, ENCODER_LAYERS, check_state_dict(vgg, "vgg"))
  if decoder is not None:
    _load_convs(model.decoder.convs, DECODER_LAYERS, check_state_dict(decoder, "decoder"))
  return model


def encoder_state_dict(model: AdaIN) -> StateDict:
  return _dump_convs(model.encoder.convs, ENCODER_LAYERS)


def decoder_state_dict(model: AdaIN) -> StateDict:
  return _dump_convs(model.decoder.convs, DECODER_LAYERS)
