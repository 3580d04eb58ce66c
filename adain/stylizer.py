"""The Stylizer: weights loaded once, jitted encode/generate, images in and out as numpy."""

from __future__ import annotations

import functools
import os

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from adain import color
from adain.errors import AdainError, WeightsError
from adain.models import MIN_SIDE, AdaIN, StyleCode
from adain.weights import model_from_state_dicts, resolve_weights

PRESERVE_COLOR = ("coral", "luminance")


@functools.partial(jax.jit, static_argnums=0)
def _encode_style(graphdef, state, images_bhwc):
  return nnx.merge(graphdef, state).encode_style(images_bhwc)


@functools.partial(jax.jit, static_argnums=0)
def _stylize(graphdef, state, content_bhwc, style: StyleCode, alpha, mask_bhw):
  """Encode, AdaIN, decode; the decoder's 8-aligned output is cropped to the input's size."""
  model = nnx.merge(graphdef, state)
  out = model.generate(model.encode_content(content_bhwc), style, alpha, mask_bhw)
  return out[:, :content_bhwc.shape[1], :content_bhwc.shape[2]]


def _check_size(img_hw3: np.ndarray, what: str) -> None:
  if min(img_hw3.shape[:2]) < MIN_SIDE:
    raise AdainError(None, f"{what} is {img_hw3.shape[1]}x{img_hw3.shape[0]} pixels; "
                     f"both sides must be at least {MIN_SIDE}")


def feature_hw(image_hw: tuple[int, int]) -> tuple[int, int]:
  """The content code's spatial size for an image: three ceil-mode poolings."""
  h, w = image_hw
  for _ in range(3):
    h, w = -(-h // 2), -(-w // 2)
  return h, w


class Stylizer:
  """Loads weights once and stylizes many images.

  Images are float32 HWC RGB in [0, 1] (see adain.imageio). Each image size compiles once;
  style codes can be computed once (``encode_style``) and reused for any number of contents.
  """

  def __init__(self, model: AdaIN):
    self.graphdef, self.state = nnx.split(model)

  @classmethod
  def from_files(cls, vgg: str | os.PathLike | None = None,
                 decoder: str | os.PathLike | None = None, *, download: bool = True,
                 progress: bool = True) -> "Stylizer":
    """Weights from the given files, else checkpoints/ or the cache, else the published URLs."""
    found, errors = {}, []
    for kind, flag in (("vgg", vgg), ("decoder", decoder)):
      try:
        found[kind] = resolve_weights(kind, flag, download=download, progress=progress)
      except WeightsError as e:
        errors.append(str(e))
    if errors:  # both problems at once, so that one message says everything to place
      raise WeightsError(None, "\n".join(errors))
    return cls(model_from_state_dicts(found["vgg"], found["decoder"]))

  def encode_style(self, style_hw3: np.ndarray) -> StyleCode:
    """The style code (relu4_1 mean and std) of one image: a batch of one."""
    _check_size(style_hw3, "style image")
    return _encode_style(self.graphdef, self.state, jnp.asarray(style_hw3)[None])

  def generate(self, content_hw3: np.ndarray, style: StyleCode, alpha: float = 1.0,
               mask_hw: np.ndarray | None = None) -> np.ndarray:
    """Stylizes one content image with a style code (two codes with a foreground mask)."""
    _check_size(content_hw3, "content image")
    if mask_hw is not None:
      if len(style) != 2:
        raise AdainError(None, f"a mask needs exactly two styles (foreground, background), got {len(style)}")
      mask_hw = jnp.asarray(mask_hw, jnp.float32)[None]
    elif len(style) != 1:
      raise AdainError(None, f"expected one style code, got {len(style)}: mix them first")
    out = _stylize(self.graphdef, self.state, jnp.asarray(content_hw3)[None], style,
                   jnp.float32(alpha), mask_hw)
    return np.asarray(out[0])

  def stylize(self, content_hw3: np.ndarray, style_hw3: np.ndarray, alpha: float = 1.0,
              preserve_color: str | None = None) -> np.ndarray:
    """Stylizes with a style image, optionally keeping the content's colours.

    ``coral`` recolours the style image to the content's colour statistics before encoding
    (pytorch-AdaIN's --preserve_color); ``luminance`` stylizes luminance only and puts the
    content's chroma back.
    """
    if preserve_color == "coral":
      return self.generate(content_hw3, self.encode_style(color.coral(style_hw3, content_hw3)), alpha)
    if preserve_color == "luminance":
      content_y, style_y = color.to_luminance_input(content_hw3, style_hw3)
      out_y = self.generate(content_y, self.encode_style(style_y), alpha)
      return color.merge_luminance(out_y, content_hw3)
    if preserve_color is not None:
      raise AdainError(None, f"preserve_color must be one of {PRESERVE_COLOR}, not {preserve_color!r}")
    return self.generate(content_hw3, self.encode_style(style_hw3), alpha)
