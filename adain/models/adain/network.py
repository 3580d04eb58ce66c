"""The AdaIN network in Flax NNX: normalised VGG-19 encoder to relu4_1, AdaIN, mirrored decoder.

The layers are those of adain.models.adain.architecture's tables, in their order; adain.models.adain.weights fills them.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
from flax import nnx

from adain.models import ops
from adain.models.adain import code_size
from adain.models.adain.architecture import DECODER_LAYERS, ENCODER_LAYERS, Variant, decoder_layers
from adain.models.adain.codes import StyleCode
from adain.errors import AdainError

BN_MOMENTUM = 0.1  # torch.nn.BatchNorm2d's: running = 0.9 * running + 0.1 * batch statistic




class ReflectConv(nnx.Module):
  """Reflection-padded VALID convolution; kernel in HWIO (PyTorch's OIHW transposed).

  ``rngs`` None: placeholder parameters (see AdaIN's ``init``).
  """

  def __init__(self, cin: int, cout: int, ksize: int, *, rngs: nnx.Rngs | None):
    fan_in = cin * ksize * ksize
    init = ops.placeholder if rngs is None else lambda shape: ops.torch_conv_init(rngs.params(), shape, fan_in)
    self.ksize = ksize
    self.kernel = nnx.Param(init((ksize, ksize, cin, cout)))
    self.bias = nnx.Param(init((cout,)))

  def __call__(self, x_bhwc: jax.Array, valid_hw: jax.Array | None = None,
               upsample: bool = False) -> jax.Array:
    """``upsample``: nearest 2x upsampling first (ops.upsample_conv; valid_hw is x's)."""
    if upsample:
      return ops.upsample_conv(x_bhwc, self.kernel[...], self.bias[...], valid_hw)
    if self.ksize > 1:
      x_bhwc = ops.reflect_pad(x_bhwc, self.ksize // 2, valid_hw)
    return ops.conv2d(x_bhwc, self.kernel[...], self.bias[...])


class Encoder(nnx.Module):
  """Normalised VGG-19 up to relu4_1 (frozen in training). Input: RGB in [0, 1], NHWC."""

  def __init__(self, *, rngs: nnx.Rngs | None):
    self.convs = nnx.List([ReflectConv(l.cin, l.cout, l.ksize, rngs=rngs) for l in ENCODER_LAYERS])

  def features(self, x_bhwc: jax.Array, valid_hw: jax.Array | None = None) -> dict[str, jax.Array]:
    """relu1_1, relu2_1, relu3_1 and relu4_1 activations.

    ``valid_hw``: the image is x's top-left (h, w) only, the rest filler (see ops.reflect_pad).
    """
    out = {}
    for layer, conv in zip(ENCODER_LAYERS, self.convs):
      if layer.pool_before:
        x_bhwc = ops.max_pool_ceil(x_bhwc, valid_hw)
        valid_hw = None if valid_hw is None else (valid_hw + 1) // 2
      x_bhwc = conv(x_bhwc, valid_hw)
      if layer.torch_index:  # every layer but the 1x1 colour conv has a ReLU
        x_bhwc = jax.nn.relu(x_bhwc)
      if layer.tap:
        out[layer.tap] = x_bhwc
    return out

  def __call__(self, x_bhwc: jax.Array, valid_hw: jax.Array | None = None) -> jax.Array:
    return self.features(x_bhwc, valid_hw)["relu4_1"]


class Norm(nnx.Module):
  """torch's BatchNorm2d or affine InstanceNorm2d (eps 1e-5), computed in float32.

  Batch norm normalises with the batch's statistics in training and updates running averages
  (the variance unbiased, as torch); at inference it uses the running averages, so an image's
  result does not depend on its batch. Instance norm uses each image's (biased) statistics
  over its valid part.
  """

  def __init__(self, kind: str, channels: int, init: bool = True):
    """``init`` False: placeholder parameters (see AdaIN's ``init``)."""
    def fill(value: float):  # one array per variable: a train step donates each of them
      return jnp.full((channels,), value, jnp.float32) if init else ops.placeholder((channels,))

    self.kind = kind
    self.scale = nnx.Param(fill(1.0))
    self.bias = nnx.Param(fill(0.0))
    if kind == "batch":
      self.mean = nnx.BatchStat(fill(0.0))
      self.var = nnx.BatchStat(fill(1.0))

  def __call__(self, x_bhwc: jax.Array, valid_hw: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    x = x_bhwc.astype(jnp.float32)
    if self.kind == "instance":
      mask = None if valid_hw is None else ops.valid_mask(x.shape[:3], valid_hw)
      mean, std = ops.mean_std(x, mask, ddof=0)
      mean, std = mean[:, None, None, :], std[:, None, None, :]
    elif train:  # reductions, not a reshape: the batch axis may be sharded over devices
      mean = jnp.mean(x, axis=(0, 1, 2))
      var = jnp.mean(jnp.square(x - mean), axis=(0, 1, 2))
      std = jnp.sqrt(var + ops.EPS)
      n = x.shape[0] * x.shape[1] * x.shape[2]
      m = BN_MOMENTUM
      self.mean[...] = (1 - m) * self.mean[...] + m * jax.lax.stop_gradient(mean)
      self.var[...] = (1 - m) * self.var[...] + m * jax.lax.stop_gradient(var * n / max(n - 1, 1))
    else:
      mean, std = self.mean[...], jnp.sqrt(self.var[...] + ops.EPS)
    y = (x - mean) / std * self.scale[...] + self.bias[...]
    return y.astype(x_bhwc.dtype)


class Decoder(nnx.Module):
  """Mirror of the encoder: relu4_1 features to an RGB image (8x the feature size).

  ``variant`` picks the paper's decoder or an ablation's (see Variant); ``train`` only matters
  for batch norm (batch statistics, running averages updated).
  """

  def __init__(self, variant: Variant = Variant(), *, rngs: nnx.Rngs | None):
    """``rngs`` None: placeholder parameters (see AdaIN's ``init``)."""
    layers = decoder_layers(variant)
    self.convs = nnx.List([ReflectConv(l.cin, l.cout, 3, rngs=rngs) for l in layers])
    self.norms = None if variant.decoder_norm == "none" else nnx.List(
        [Norm(variant.decoder_norm, l.cout, init=rngs is not None) for l in layers[:-1]])

  def __call__(self, f_bhwc: jax.Array, valid_hw: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    # DECODER_LAYERS for its flags (a variant changes only cin); the last conv has no norm.
    for layer, conv, norm in itertools.zip_longest(DECODER_LAYERS, self.convs, self.norms or ()):
      f_bhwc = conv(f_bhwc, valid_hw, upsample=layer.upsample_before)
      if layer.upsample_before and valid_hw is not None:
        valid_hw = valid_hw * 2
      if norm is not None:
        f_bhwc = norm(f_bhwc, valid_hw, train)
      if layer.relu:
        f_bhwc = jax.nn.relu(f_bhwc)
    return f_bhwc


def concat_input(content_code: jax.Array, style_features: jax.Array,
                 valid_hw: jax.Array | None = None,
                 style_valid_hw: jax.Array | None = None) -> jax.Array:
  """Enc-Concat-Dec's decoder input: the content code and the style's relu4_1 features resized
  (nearest, as torch's F.interpolate) to the content code's (valid) size, stacked on channels."""
  resized = ops.resize_nearest(style_features, content_code.shape[1:3], valid_hw, style_valid_hw)
  return jnp.concatenate([content_code, resized.astype(content_code.dtype)], axis=-1)


class AdaIN(nnx.Module):
  """Encoder + AdaIN + decoder, with the content-code / style-code split as its API
  (adain.models.interface)."""

  def __init__(self, variant: Variant = Variant(), *, rngs: nnx.Rngs | None = None, init: bool = True):
    """Weights drawn as torch initialises them (``rngs`` default Rngs(0)); ``init`` False leaves
    placeholders (shapes and dtypes) for a loader to fill, as adain.models.adain.weights does: no random
    numbers drawn or traced (nnx.eval_shape of the drawing constructor took 0.2 s at start-up)."""
    if not init:
      rngs = None
    elif rngs is None:
      rngs = nnx.Rngs(0)
    self.variant = variant
    self.encoder = Encoder(rngs=rngs)
    self.decoder = Decoder(variant, rngs=rngs)

  @property
  def spec(self) -> Variant:
    """Its static spec (adain.models.interface.Params): the variant."""
    return self.variant

  def encode_content(self, images_bhwc: jax.Array, valid_hw: jax.Array | None = None) -> jax.Array:
    """Content code: relu4_1 features, (B, ceil(H/8), ceil(W/8), 512).

    ``valid_hw`` here and below: the image is only the top-left (h, w) of the input, the rest
    filler (see ops.reflect_pad); the code's valid part is then ceil(h/8) x ceil(w/8).
    """
    return self.encoder(images_bhwc, valid_hw)

  def style_maps(self, images_bhwc: jax.Array, valid_hw: jax.Array | None = None) -> tuple[jax.Array]:
    """The maps whose statistics are the style code (``code_of``): relu4_1."""
    return (self.encoder(images_bhwc, valid_hw),)

  @staticmethod
  def code_of(stats: list[tuple[jax.Array, jax.Array]]) -> StyleCode:
    return StyleCode(*stats[0])

  def encode_style(self, images_bhwc: jax.Array, mask_bhw: jax.Array | None = None,
                   valid_hw: jax.Array | None = None) -> StyleCode:
    (features,) = self.style_maps(images_bhwc, valid_hw)
    if valid_hw is not None:
      valid = ops.valid_mask(features.shape[:3], code_size(valid_hw))
      mask_bhw = valid if mask_bhw is None else mask_bhw * valid
    return self.code_of([ops.mean_std(features, mask_bhw)])

  def stage(self, k: int, x_bhwc: jax.Array, style: StyleCode, alpha=1.0, mask_bhw=None,
            stats=None, valid_hw=None) -> jax.Array:
    """generate (its only stage, k = 0), as tiling runs the stages of every network."""
    return self.generate(x_bhwc, style, alpha, mask_bhw, stats, valid_hw)

  def generate(self, content_code: jax.Array, style: StyleCode, alpha: float | jax.Array = 1.0,
               mask_bhw: jax.Array | None = None, content_stats: StyleCode | None = None,
               valid_hw: jax.Array | None = None) -> jax.Array:
    """Decode the content code re-styled by ``style``; alpha blends with the content code.

    ``style`` holds one code per content image, or one code broadcast to all. With a mask
    (1 = foreground, at the content code's resolution) ``style`` must hold two codes: the first
    styles the foreground, the second the background, each with its own region's statistics.
    ``content_stats`` (one per region) replaces the content code's own statistics: a tile of a
    large image is normalised with the whole image's (adain.inference.tiling). ``valid_hw`` is the
    code's valid part, as encode_content's.
    """
    if self.variant.fusion == "concat":
      raise AdainError(None, "an Enc-Concat-Dec (concat) decoder needs the style image, "
                       "not a style code (see generate_concat)")
    valid = None if valid_hw is None else ops.valid_mask(content_code.shape[:3], valid_hw)

    def restyle(region, code: StyleCode, stats: StyleCode | None):
      if valid is not None:
        region = valid if region is None else region * valid
      return ops.adain(content_code, code.mean, code.std, region,
                       None if stats is None else (stats.mean, stats.std))

    if mask_bhw is None:
      target = restyle(None, style, content_stats)
    else:
      stats = (None, None) if content_stats is None else (content_stats[:1], content_stats[1:2])
      fg = restyle(mask_bhw, style[:1], stats[0])
      bg = restyle(1.0 - mask_bhw, style[1:2], stats[1])
      m = mask_bhw[..., None]
      target = m * fg + (1.0 - m) * bg
    alpha = ops.per_image(alpha, target.ndim)
    target = alpha * target + (1.0 - alpha) * content_code
    return self.decoder(target.astype(content_code.dtype), valid_hw)

  def generate_concat(self, content_code: jax.Array, style_features: jax.Array,
                      valid_hw: jax.Array | None = None,
                      style_valid_hw: jax.Array | None = None) -> jax.Array:
    """Enc-Concat-Dec: decode the content code stacked with the style's features (no alpha)."""
    return self.decoder(concat_input(content_code, style_features, valid_hw, style_valid_hw),
                        valid_hw)
