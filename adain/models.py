"""The AdaIN network in Flax NNX: normalised VGG-19 encoder to relu4_1, AdaIN, mirrored decoder.

Layer tables keep the PyTorch Sequential indices of pytorch-AdaIN's net.py, so that a state dict
key such as ``"29.weight"`` names exactly one of our layers (see adain/weights/).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from adain import ops
from adain.errors import AdainError
from adain.npz import read_npz, write_npz

STYLE_CODE_FORMAT = "adain-style-code/1"


class EncoderLayer(NamedTuple):
  torch_index: int
  cin: int
  cout: int
  ksize: int
  pool_before: bool
  tap: str | None  # name of the feature this layer's ReLU output is, if it is returned


# vgg[:31] of net.py: conv0 (1x1 colour transform, no ReLU), then 3x3 convs with ReLU.
ENCODER_LAYERS = (
    EncoderLayer(0, 3, 3, 1, False, None),
    EncoderLayer(2, 3, 64, 3, False, "relu1_1"),
    EncoderLayer(5, 64, 64, 3, False, None),
    EncoderLayer(9, 64, 128, 3, True, "relu2_1"),
    EncoderLayer(12, 128, 128, 3, False, None),
    EncoderLayer(16, 128, 256, 3, True, "relu3_1"),
    EncoderLayer(19, 256, 256, 3, False, None),
    EncoderLayer(22, 256, 256, 3, False, None),
    EncoderLayer(25, 256, 256, 3, False, None),
    EncoderLayer(29, 256, 512, 3, True, "relu4_1"),
)
FEATURES = ("relu1_1", "relu2_1", "relu3_1", "relu4_1")

# The rest of the published vgg_normalised (relu4_2 .. relu5_4): present in the files, unused.
VGG_UNUSED_LAYERS = tuple((i, 512, 512) for i in (32, 35, 38, 42, 45, 48, 51))


class DecoderLayer(NamedTuple):
  torch_index: int
  cin: int
  cout: int
  upsample_before: bool
  relu: bool


DECODER_LAYERS = (
    DecoderLayer(1, 512, 256, False, True),
    DecoderLayer(5, 256, 256, True, True),
    DecoderLayer(8, 256, 256, False, True),
    DecoderLayer(11, 256, 256, False, True),
    DecoderLayer(14, 256, 128, False, True),
    DecoderLayer(18, 128, 128, True, True),
    DecoderLayer(21, 128, 64, False, True),
    DecoderLayer(25, 64, 64, True, True),
    DecoderLayer(28, 64, 3, False, False),
)

MIN_SIDE = 16  # relu4_1 needs at least 2x2 positions for reflection padding and statistics.

FUSIONS = ("adain", "concat")
DECODER_NORMS = ("none", "batch", "instance")
BN_MOMENTUM = 0.1  # torch.nn.BatchNorm2d's: running = 0.9 * running + 0.1 * batch statistic


@dataclasses.dataclass(frozen=True)
class Variant:
  """The architecture of the paper's model or one of its Fig. 6 ablations.

  ``fusion``: how content and style meet before the decoder: AdaIN (the paper), or ``concat``
  (Enc-Concat-Dec: the decoder sees the content code and the style's relu4_1 features stacked).
  ``decoder_norm``: a BatchNorm or affine InstanceNorm after every decoder conv but the last.
  """

  fusion: str = "adain"
  decoder_norm: str = "none"

  def __post_init__(self):
    if self.fusion not in FUSIONS or self.decoder_norm not in DECODER_NORMS:
      raise AdainError(None, f"unknown model variant: fusion {self.fusion!r} (one of {FUSIONS}), "
                       f"decoder_norm {self.decoder_norm!r} (one of {DECODER_NORMS})")

  @property
  def name(self) -> str:
    """adain, concat, bn_decoder, in_decoder (train/configs/ablations), or both changes joined."""
    parts = ["concat"] if self.fusion == "concat" else []
    if self.decoder_norm != "none":
      parts.append({"batch": "bn_decoder", "instance": "in_decoder"}[self.decoder_norm])
    return "+".join(parts) or "adain"


def _torch_default_init(key, shape, fan_in):
  """PyTorch's default Conv2d init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias."""
  bound = 1.0 / np.sqrt(fan_in)
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def _placeholder(shape) -> jax.ShapeDtypeStruct:
  """A parameter's shape and dtype only, for a loader to fill (see AdaIN's ``init``)."""
  return jax.ShapeDtypeStruct(shape, jnp.float32)


class ReflectConv(nnx.Module):
  """Reflection-padded VALID convolution; kernel in HWIO (PyTorch's OIHW transposed).

  ``rngs`` None: placeholder parameters (see AdaIN's ``init``).
  """

  def __init__(self, cin: int, cout: int, ksize: int, *, rngs: nnx.Rngs | None):
    fan_in = cin * ksize * ksize
    init = _placeholder if rngs is None else lambda shape: _torch_default_init(rngs.params(), shape, fan_in)
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


def decoder_layers(variant: Variant = Variant()) -> tuple[DecoderLayer, ...]:
  """DECODER_LAYERS, with 1024 input channels for Enc-Concat-Dec (content and style codes)."""
  if variant.fusion == "adain":
    return DECODER_LAYERS
  first = DECODER_LAYERS[0]
  return (first._replace(cin=2 * first.cin),) + DECODER_LAYERS[1:]


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
      return jnp.full((channels,), value, jnp.float32) if init else _placeholder((channels,))

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


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class StyleCode:
  """A style as AdaIN sees it: per-channel mean and std of relu4_1 features, shapes (B, 512).

  Codes mix linearly: AdaIN is affine in (mean, std), so a weighted sum of codes gives exactly
  the weighted sum of the AdaIN outputs that pytorch-AdaIN's style interpolation computes.
  """

  mean: jax.Array
  std: jax.Array

  def __len__(self) -> int:
    return self.mean.shape[0]

  def __getitem__(self, i) -> "StyleCode":
    return StyleCode(self.mean[i], self.std[i])

  def mix(self, weights) -> "StyleCode":
    """One code, the weighted average of this batch of codes (weights are normalised to sum 1)."""
    w = jnp.asarray(weights, jnp.float32)
    w = w / jnp.sum(w)
    return StyleCode((w @ self.mean)[None], (w @ self.std)[None])

  @staticmethod
  def concat(codes) -> "StyleCode":
    return StyleCode(jnp.concatenate([c.mean for c in codes]), jnp.concatenate([c.std for c in codes]))

  def save(self, path: str | os.PathLike) -> None:
    """Writes the code as .npz (float32 arrays, no pickles), atomically."""
    write_npz(path, {"__format__": np.asarray(STYLE_CODE_FORMAT),
                     "mean": np.asarray(self.mean, np.float32),
                     "std": np.asarray(self.std, np.float32)})

  @staticmethod
  def load(path: str | os.PathLike) -> "StyleCode":
    z = read_npz(path, STYLE_CODE_FORMAT)
    mean, std = z.get("mean"), z.get("std")
    channels = ENCODER_LAYERS[-1].cout
    if mean is None or std is None or mean.ndim != 2 or mean.shape[1] != channels \
        or mean.shape != std.shape or not len(mean):
      raise AdainError(path, f"style code needs mean and std of shape (N, {channels})")
    if not (np.all(np.isfinite(mean)) and np.all(np.isfinite(std)) and np.all(std > 0)):
      raise AdainError(path, "style code holds NaN, Inf or non-positive std values")
    return StyleCode(jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32))


class AdaIN(nnx.Module):
  """Encoder + AdaIN + decoder, with the content-code / style-code split as its API."""

  def __init__(self, variant: Variant = Variant(), *, rngs: nnx.Rngs | None = None, init: bool = True):
    """Weights drawn as torch initialises them (``rngs`` default Rngs(0)); ``init`` False leaves
    placeholders (shapes and dtypes) for a loader to fill, as adain.weights does: no random
    numbers drawn or traced (nnx.eval_shape of the drawing constructor took 0.2 s at start-up)."""
    if not init:
      rngs = None
    elif rngs is None:
      rngs = nnx.Rngs(0)
    self.variant = variant
    self.encoder = Encoder(rngs=rngs)
    self.decoder = Decoder(variant, rngs=rngs)

  def encode_content(self, images_bhwc: jax.Array, valid_hw: jax.Array | None = None) -> jax.Array:
    """Content code: relu4_1 features, (B, ceil(H/8), ceil(W/8), 512).

    ``valid_hw`` here and below: the image is only the top-left (h, w) of the input, the rest
    filler (see ops.reflect_pad); the code's valid part is then ceil(h/8) x ceil(w/8).
    """
    return self.encoder(images_bhwc, valid_hw)

  def encode_style(self, images_bhwc: jax.Array, mask_bhw: jax.Array | None = None,
                   valid_hw: jax.Array | None = None) -> StyleCode:
    features = self.encoder(images_bhwc, valid_hw)
    if valid_hw is not None:
      valid = ops.valid_mask(features.shape[:3], -(-valid_hw // 8))
      mask_bhw = valid if mask_bhw is None else mask_bhw * valid
    return StyleCode(*ops.mean_std(features, mask_bhw))

  def generate(self, content_code: jax.Array, style: StyleCode, alpha: float | jax.Array = 1.0,
               mask_bhw: jax.Array | None = None, content_stats: StyleCode | None = None,
               valid_hw: jax.Array | None = None) -> jax.Array:
    """Decode the content code re-styled by ``style``; alpha blends with the content code.

    ``style`` holds one code per content image, or one code broadcast to all. With a mask
    (1 = foreground, at the content code's resolution) ``style`` must hold two codes: the first
    styles the foreground, the second the background, each with its own region's statistics.
    ``content_stats`` (one per region) replaces the content code's own statistics: a tile of a
    large image is normalised with the whole image's (adain.tiling). ``valid_hw`` is the
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
    target = alpha * target + (1.0 - alpha) * content_code
    return self.decoder(target.astype(content_code.dtype), valid_hw)

  def generate_concat(self, content_code: jax.Array, style_features: jax.Array,
                      valid_hw: jax.Array | None = None,
                      style_valid_hw: jax.Array | None = None) -> jax.Array:
    """Enc-Concat-Dec: decode the content code stacked with the style's features (no alpha)."""
    return self.decoder(concat_input(content_code, style_features, valid_hw, style_valid_hw),
                        valid_hw)
