"""The Stylizer: weights loaded once, jitted encode/generate, images in and out as numpy."""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Hashable
from typing import TYPE_CHECKING

import jax
import jax.numpy as jnp
import numpy as np

from adain.errors import AdainError
from adain.inference import color, memory, tiling
from adain.inference.programs import Program
from adain.media import images
from adain.models import load_code, network, read_weights
from adain.models.adain.codes import StyleCode
from adain.models.interface import Params, arrays_of

if TYPE_CHECKING:
  from adain.models.adain.network import AdaIN
  from adain.models.microast.codes import MicroASTCode
  from adain.models.microast.network import MicroAST

PRESERVE_COLOR = ("coral", "luminance")


def bucket(n: int) -> int:
  """The array length that an image side of n pixels is stylized in (see _in_bucket).

  n rounded up to a multiple of 64, or of 1/8 of the largest power of two <= n when that is
  more: a folder of mixed sizes compiles a few shapes, not one per size, for at most 64 pixels
  or 1/8 of extra work per side.
  """
  step = max(64, 1 << max(n.bit_length() - 4, 0))
  return -(-n // step) * step


def _in_bucket(imgs_bhw3: np.ndarray, dtype) -> tuple[jax.Array, np.ndarray]:
  """Images of one size in the top-left of a zero batch of bucket size, and their (h, w).

  The network takes the valid size as a traced value and mirrors each layer at the images' own
  edges (ops.reflect_pad), so each result is its image's alone, to float rounding. Inputs are
  made in numpy: jnp functions compile a program for each new shape (tens of ms at start-up).
  """
  b, h, w = imgs_bhw3.shape[:3]
  filled = np.zeros((b, bucket(h), bucket(w), 3), dtype)
  filled[:, :h, :w] = imgs_bhw3
  return jax.device_put(filled), np.array([h, w], np.int32)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class StyleFeatures:
  """A style as an Enc-Concat-Dec decoder needs it: relu4_1 features of one image, (1, h, w, 512)
  in a size bucket, of which the top-left ``valid_hw`` are the image's."""

  features: jax.Array
  valid_hw: jax.Array


# The network's programs, on its spec (static) and arrays by name (adain.models.interface.Params).
@Program
def _encode_style(spec, arrays, images_bhwc, valid_hw):
  """The style code's arrays (a Program returns arrays): its fields in order."""
  return tuple(jax.tree.leaves(Params(spec, arrays).bind().encode_style(images_bhwc, valid_hw=valid_hw)))


@Program
def _encode_content(spec, arrays, content_bhwc, valid_hw):
  return Params(spec, arrays).bind().encode_content(content_bhwc, valid_hw)


@Program
def _decode(spec, arrays, code_bhwc, style, alpha, mask_bhw, valid_hw, own_code):
  """Generate from the valid_hw part of a bucket's code (the caller crops the output). ``alpha``
  None: 1, for a network whose alpha needs the content's own code (``own_code``) and has none."""
  model = Params(spec, arrays).bind()
  code_hw = network(spec.network).code_size(valid_hw)
  own = {} if own_code is None else {"own_code": own_code}
  return model.generate(code_bhwc, style, 1.0 if alpha is None else alpha, mask_bhw,
                        valid_hw=code_hw, **own).astype(jnp.float32)


@Program
def _decode_concat(spec, arrays, code_bhwc, style: StyleFeatures, valid_hw):
  """_decode for an Enc-Concat-Dec decoder: the style's features resized to each content code."""
  model = Params(spec, arrays).bind()
  style_bhwc = jnp.broadcast_to(style.features, (code_bhwc.shape[0],) + style.features.shape[1:])
  code_hw = network(spec.network).code_size(valid_hw)
  return model.generate_concat(code_bhwc, style_bhwc, code_hw, style.valid_hw).astype(jnp.float32)


@dataclasses.dataclass(frozen=True)
class ContentCode:
  """B same-size content images encoded once (``Stylizer.encode_content``), to be stylized with
  any number of styles, alphas and masks at the cost of the generator alone.

  ``code``: their content code in the images' size bucket (see ``bucket``), ``images`` None.
  Images that need tiling keep ``images`` instead (tiles are encoded as they are decoded, see
  adain.inference.tiling) and ``code`` None. ``hw`` is the images' own size; ``single``: made
  from one (H, W, 3) image, so stylizing it gives one image. With ``preserve_color``, ``source``
  holds the content images themselves, whose colours the outputs keep. ``bucketed`` keeps the
  bucket's images for a network whose alpha needs the content's own code (MicroAST), which is
  computed from them only when an alpha below 1 asks for it.
  """

  hw: tuple[int, int]
  code: jax.Array | None = None
  images: np.ndarray | None = None
  tile: int = 0
  single: bool = False
  preserve_color: str | None = None
  source: np.ndarray | None = None
  bucketed: tuple[jax.Array, np.ndarray] | None = None


class Stylizer:
  """Loads weights once and stylizes many images, with either network (``network``: adain, the
  paper's, or microast; adain.models).

  Images are float32 HWC RGB in [0, 1] (see adain.media.images). Each size bucket (see ``bucket``)
  compiles once; style codes can be computed once (``encode_style``) and reused for any number
  of contents. ``tile`` arguments: None chooses tiling from the available memory
  (adain.inference.tiling), 0 never tiles, N uses tiles of N pixels (rounded up to the
  network's code grid). ``dtype`` bfloat16 runs the network in bfloat16 (statistics stay
  float32): meant for accelerators; on a CPU it is slower and off parity.

  Every AdaIN variant stylizes (``variant``, see adain.models.adain.architecture.Variant). An
  Enc-Concat-Dec (concat) decoder's styles are StyleFeatures rather than StyleCodes: no style
  codes, mixing, masks or alpha. Concat and instance-norm decoders see the whole image (never
  tiled), since their results depend on all of it.
  """

  def __init__(self, model: AdaIN | MicroAST, dtype=jnp.float32):
    """A Stylizer with a copy of the model's weights."""
    self._hold(model.spec, arrays_of(model), dtype)

  @classmethod
  def from_arrays(cls, spec: Hashable, arrays: dict, dtype=jnp.float32) -> "Stylizer":
    """From the model's spec (AdaIN's Variant, MicroAST's Spec) and variables by name (its
    weights module's ``model_arrays``), without the Flax model: that is built only inside a
    program's trace, so a run whose programs are saved (adain.inference.programs) never imports
    Flax."""
    self = cls.__new__(cls)
    self._hold(spec, arrays, dtype)
    return self

  def _hold(self, spec: Hashable, arrays: dict, dtype) -> None:
    self.dtype = jnp.dtype(dtype)
    # Cast in numpy: a jnp cast compiles a program for each shape.
    self.params = Params(spec, {k: jax.device_put(np.asarray(v).astype(self.dtype, copy=False))
                                for k, v in arrays.items()})
    self.net = network(spec.network)

  @property
  def network(self) -> str:
    """The network's name: adain or microast (``--model``)."""
    return self.net.NAME

  @property
  def variant(self) -> Hashable:
    """The network's spec: AdaIN's variant (adain.models.adain.architecture.Variant), MicroAST's Spec."""
    return self.params.spec

  @property
  def concat(self) -> bool:
    """An Enc-Concat-Dec decoder (an AdaIN ablation): styles are images, not codes."""
    return self.network == "adain" and self.variant.fusion == "concat"

  def concat_codes(self, codes: list):
    """Style codes of this network as one batch of codes (to mix, or for a mask)."""
    return self.net.code_type().concat(codes)

  def model(self) -> AdaIN | MicroAST:
    """The Flax model of these weights (adain.export builds its graphs from it)."""
    return self.params.bind()

  def on(self, device: jax.Device) -> "Stylizer":
    """A copy whose weights live on ``device``, so that its calls run there.

    Inputs given as numpy follow the weights; one thread per copy keeps several devices busy.
    """
    twin = copy.copy(self)
    twin.params = jax.device_put(self.params, device)
    return twin

  def _check_size(self, img_hw3: np.ndarray, what: str) -> None:
    if min(img_hw3.shape[:2]) < self.net.MIN_SIDE:
      raise AdainError(None, f"{what} is {img_hw3.shape[1]}x{img_hw3.shape[0]} pixels; "
                       f"both sides must be at least {self.net.MIN_SIDE}")

  def _tile(self, img_hw3: np.ndarray, tile: int | None) -> int:
    h, w = img_hw3.shape[:2]
    if self.network == "adain" and (self.concat or self.variant.decoder_norm == "instance"):
      if tile:
        raise AdainError(None, f"a {self.variant.name} decoder stylizes whole images: no tiles")
      return 0
    if tile is None:
      return memory.choose_tile(h, w, self.net)
    return self.net.DOWNSAMPLE * self.net.code_size(tile)

  def code_hw(self, image_hw: tuple[int, int]) -> tuple[int, int]:
    """The content code's spatial size for an image (masks are given at it, see ``code_mask``)."""
    return self.net.code_size(image_hw[0]), self.net.code_size(image_hw[1])

  def code_mask(self, mask_hw: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """A foreground mask of any resolution as ``generate``'s ``mask_hw`` for an image of
    ``image_hw``: at its content code's size (nearest), thresholded at 0.5, as ``--mask`` is."""
    return images.resize_mask(mask_hw, self.code_hw(image_hw))

  def load_style_code(self, path: str | os.PathLike) -> StyleCode | MicroASTCode:
    """A style code from .npz (see StyleCode.save, MicroASTCode.save), if this network can use
    it: another network's code is refused naming the file."""
    if self.concat:
      raise AdainError(path, "a style code cannot drive an Enc-Concat-Dec (concat) decoder: "
                       "it needs the style image")
    return load_code(path, self.network)

  @classmethod
  def from_files(cls, vgg: str | os.PathLike | None = None,
                 decoder: str | os.PathLike | None = None, *, model: str = "adain",
                 weights: str | os.PathLike | None = None, download: bool = True,
                 progress: bool = True, dtype=jnp.float32) -> "Stylizer":
    """Weights from the given files (AdaIN: ``vgg``, ``decoder``; MicroAST: ``weights``, the
    folder of its four files), else checkpoints/ or the cache, else the published URLs."""
    return cls.from_arrays(*read_weights(model, vgg, decoder, weights, download=download,
                                         progress=progress), dtype)

  def encode_style(self, style_hw3: np.ndarray, tile: int | None = None):
    """The style code of one image, a batch of one (StyleFeatures for a concat decoder)."""
    self._check_size(style_hw3, "style image")
    tile = self._tile(style_hw3, tile)
    if self.concat:
      images, valid_hw = _in_bucket(style_hw3[None], self.dtype)
      return StyleFeatures(_encode_content(self.params.spec, self.params.arrays, images, valid_hw),
                           self.net.code_size(valid_hw))
    if tiling.is_tiled(*style_hw3.shape[:2], tile, self.net):
      return tiling.encode_style(self.params, np.asarray(style_hw3, self.dtype), tile)
    return self._style_code(*_in_bucket(style_hw3[None], self.dtype))

  def _style_code(self, images_bhwc: jax.Array, valid_hw: np.ndarray):
    return self.net.code_type()(*_encode_style(self.params.spec, self.params.arrays, images_bhwc, valid_hw))

  def encode_content(self, content: np.ndarray, preserve_color: str | None = None,
                     tile: int | None = None) -> ContentCode:
    """A content image (H, W, 3), or B of one size (B, H, W, 3), encoded once, to stylize with
    many styles (``generate``, ``stylize``), each of which then costs the generator alone.

    ``preserve_color`` (coral or luminance, see ``stylize``) encodes what colour preservation
    needs and keeps the images, whose colours the outputs then keep.
    """
    if preserve_color not in (None, *PRESERVE_COLOR):
      raise AdainError(None, f"preserve_color must be one of {PRESERVE_COLOR}, not {preserve_color!r}")
    content = np.asarray(content)
    single = content.ndim == 3
    source = content[None] if single else content
    inputs = source if preserve_color is None else np.stack([color.content_input(c, preserve_color)
                                                             for c in source])
    self._check_size(inputs[0], "content image")
    h, w = inputs.shape[1:3]
    tile = self._tile(inputs[0], tile)
    kept = {"single": single, "preserve_color": preserve_color,
            "source": source if preserve_color else None}
    if tiling.is_tiled(h, w, tile, self.net):
      return ContentCode((h, w), images=inputs, tile=tile, **kept)
    bucketed = _in_bucket(inputs, self.dtype)
    return ContentCode((h, w), code=_encode_content(self.params.spec, self.params.arrays, *bucketed),
                       bucketed=bucketed if self.net.OWN_CODE else None, **kept)

  def generate(self, content: np.ndarray | ContentCode, style: StyleCode | StyleFeatures,
               alpha: float = 1.0, mask_hw: np.ndarray | None = None,
               tile: int | None = None) -> np.ndarray:
    """Stylized images from a style code: of a content image (H, W, 3 in, H, W, 3 out), of B
    same-size images in one compiled call (B, H, W, 3), or of ``encode_content``'s code.

    ``style``: one code, two with a foreground ``mask_hw`` (at the content code's size, see
    ``code_mask``), or without a mask one per image. Each output equals that of its image
    alone (per-image statistics): video frames and same-size dataset images are batched to keep
    an accelerator busy. ``alpha`` blends the style's code with the content's own (adain.models.
    interface), 1 being the style alone. A code made with ``preserve_color`` takes a style code made
    from the style image as ``stylize`` makes it; the outputs keep the content's colours.
    """
    code = content if isinstance(content, ContentCode) else self.encode_content(content, tile=tile)
    out = self._decode(code, style, alpha, mask_hw)
    if code.preserve_color:
      out = np.stack([color.output(o, c, code.preserve_color) for o, c in zip(out, code.source)])
    return out[0] if code.single else out

  def stylize(self, content: np.ndarray | ContentCode, style: np.ndarray | StyleCode | StyleFeatures,
              alpha: float = 1.0, preserve_color: str | None = None,
              mask_hw: np.ndarray | None = None, tile: int | None = None) -> np.ndarray:
    """One content image (H, W, 3, or its ``encode_content`` code) stylized with a style image,
    encoded here, or a style code (one, mixed, or two with a foreground mask).

    ``preserve_color`` keeps the content's colours (a code keeps the one it was made with):
    ``coral`` recolours the style image to the content's colour statistics before encoding
    (pytorch-AdaIN's --preserve_color); ``luminance`` stylizes luminance only and puts the
    content's chroma back. Both need the style image, not a code.
    """
    if isinstance(content, ContentCode):
      if preserve_color not in (None, content.preserve_color):
        raise AdainError(None, f"this content code was made with preserve_color={content.preserve_color!r}")
      code = content
    else:
      code = self.encode_content(content, preserve_color, tile)
    if not code.single:
      raise AdainError(None, "stylize takes one content image; generate takes a batch")
    if isinstance(style, np.ndarray):
      content_hw3 = code.source[0] if code.preserve_color else None
      style = self.encode_style(color.style_input(style, content_hw3, code.preserve_color), tile)
    elif code.preserve_color:
      raise AdainError(None, "colour preservation needs the style image, not a style code")
    return self.generate(code, style, alpha, mask_hw)

  def _decode(self, content: ContentCode, style, alpha: float, mask_hw: np.ndarray | None) -> np.ndarray:
    """(B, H, W, 3) images from a content code, as the network gives them."""
    if self.concat != isinstance(style, StyleFeatures):
      raise AdainError(None, "an Enc-Concat-Dec (concat) decoder needs the style image, not a "
                       "style code" if not isinstance(style, StyleFeatures) else
                       "StyleFeatures are for Enc-Concat-Dec (concat) decoders only")
    if not isinstance(style, (StyleFeatures, self.net.code_type())):
      raise AdainError(None, f"a {type(style).__name__} is not a style code of the {self.network} model")
    (h, w), code = content.hw, content.code
    valid_hw = np.array([h, w], np.int32)
    if isinstance(style, StyleFeatures):  # never tiled (see _tile)
      if mask_hw is not None or alpha != 1.0:
        raise AdainError(None, "an Enc-Concat-Dec (concat) decoder takes no mask and alpha 1 only")
      return np.asarray(_decode_concat(self.params.spec, self.params.arrays, code, style, valid_hw))[:, :h, :w]
    b = len(code if code is not None else content.images)
    if mask_hw is not None and len(style) != 2:
      raise AdainError(None, f"a mask needs exactly two styles (foreground, background), got {len(style)}")
    if mask_hw is None and len(style) not in (1, b):
      raise AdainError(None, f"expected one style code or one per image, got {len(style)} for {b} "
                       "images: mix them first")
    per_image = mask_hw is None and len(style) > 1
    alpha = np.float32(alpha)
    if content.images is not None:
      return np.stack([tiling.generate(self.params, np.asarray(c, self.dtype),
                                       style[i:i + 1] if per_image else style, alpha, content.tile,
                                       mask_hw) for i, c in enumerate(content.images)])
    if mask_hw is not None:
      hc, wc = mask_hw.shape
      mask_hw = np.pad(np.asarray(mask_hw, np.float32),
                       ((0, code.shape[1] - hc), (0, code.shape[2] - wc)))[None]
    own = None
    if self.net.OWN_CODE and alpha != 1:  # alpha blends with the content's own code
      own = self._style_code(*content.bucketed)
    elif self.net.OWN_CODE:  # alpha 1: no own code, and generate's alpha the number 1
      alpha = None
    out = _decode(self.params.spec, self.params.arrays, code, style, alpha, mask_hw, valid_hw, own)
    return np.asarray(out)[:, :h, :w]
