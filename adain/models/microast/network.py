"""MicroAST in Flax NNX, NHWC: content and style encoders, modulator, modulated decoder.

The layers are those of adain.models.microast.architecture's tables, in their order;
adain.models.microast.weights fills them. The computation is MicroAST's net_microAST.py:
reflection padding then convolution everywhere, AdaIN with pytorch-AdaIN's statistics
(adain.models.ops.mean_std), bilinear upsampling as torch's (align_corners False).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from adain.errors import AdainError
from adain.models import ops
from adain.models.microast import architecture as arch
from adain.models.microast.codes import MicroASTCode


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ContentFeatures:
  """What generate needs of a content image: the content encoder's level-2 features
  (B, ceil(ceil(H/2)/2), ceil(ceil(W/2)/2), 64) and, for alpha below 1, the content's own code.

  The own code is the style encoder's and modulator's code of the content image itself (see
  MicroAST.encode_content), computed only on request: it costs a second encoder pass.
  """

  level2: jax.Array
  own: MicroASTCode | None = None




class Conv(nnx.Module):
  """Reflection pad of ksize // 2, then a VALID conv (strided, grouped as the table says).

  The kernel is HWIO with cin / groups input channels (PyTorch's OIHW transposed), the layout
  of lax's feature_group_count; grouped convs run as grouped_conv. ``rngs`` None: placeholders.
  """

  def __init__(self, conv: arch.Conv, *, rngs: nnx.Rngs | None):
    fan_in = conv.cin // conv.groups * conv.ksize * conv.ksize
    init = ops.placeholder if rngs is None else lambda shape: ops.torch_conv_init(rngs.params(), shape, fan_in)
    self.ksize, self.stride, self.groups = conv.ksize, conv.stride, conv.groups
    self.kernel = nnx.Param(init((conv.ksize, conv.ksize, conv.cin // conv.groups, conv.cout)))
    self.bias = nnx.Param(init((conv.cout,)))

  def __call__(self, x_bhwc: jax.Array) -> jax.Array:
    if self.ksize > 1:
      x_bhwc = ops.reflect_pad(x_bhwc, self.ksize // 2)
    if self.groups > 1:
      y = grouped_conv(x_bhwc, self.kernel[...].astype(x_bhwc.dtype), self.stride, self.groups)
      return y + self.bias[...].astype(y.dtype)
    y = jax.lax.conv_general_dilated(
        x_bhwc, self.kernel[...].astype(x_bhwc.dtype), window_strides=(self.stride, self.stride),
        padding="VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
        feature_group_count=self.groups, precision=jax.lax.Precision.HIGHEST)
    return y + self.bias[...].astype(y.dtype)


def grouped_conv(xp_bhwc: jax.Array, kernel_hwio: jax.Array, stride: int, groups: int) -> jax.Array:
  """A VALID grouped conv (kernel HWIO, cin / groups inputs per group) as a sum of shifted,
  per-channel scaled copies of its input, which XLA fuses into one loop.

  MicroAST's grouped convs have 1 or 2 inputs and 1 or 2 outputs per group: XLA's CPU grouped
  convolution took 4-10x longer on them at 512 px (the decoder's two at 512 px were 1.0 s of a
  2.7 s image). Input i of every group is the strided channel slice i::kin, repeated kout times
  so that its channel g * kout + j lines up with output channel g * kout + j.
  """
  b, hp, wp, _ = xp_bhwc.shape
  ks, _, kin, cout = kernel_hwio.shape
  kout = cout // groups
  ho, wo = (hp - ks) // stride + 1, (wp - ks) // stride + 1
  inputs = [xp_bhwc[..., i::kin] if kin > 1 else xp_bhwc for i in range(kin)]
  if kout > 1:
    inputs = [jnp.repeat(x, kout, axis=-1) for x in inputs]
  y = None
  for dy in range(ks):
    for dx in range(ks):
      for i, x in enumerate(inputs):
        tap = jax.lax.slice(x, (0, dy, dx, 0),
                            (b, dy + (ho - 1) * stride + 1, dx + (wo - 1) * stride + 1, cout),
                            (1, stride, stride, 1))
        term = tap * kernel_hwio[dy, dx, i]
        y = term if y is None else y + term
  return y


class Residual(nnx.Module):
  """x + conv2(relu(conv1(x))); with the style's per-channel scales (w, b), each conv's output
  is modulated as w * conv(h) + b * h (MicroAST's filter modulation)."""

  def __init__(self, convs: tuple[arch.Conv, arch.Conv], *, rngs: nnx.Rngs | None):
    self.conv1 = Conv(convs[0], rngs=rngs)
    self.conv2 = Conv(convs[1], rngs=rngs)

  def __call__(self, x_bhwc: jax.Array, w_bc: jax.Array | None = None,
               b_bc: jax.Array | None = None) -> jax.Array:
    if w_bc is None:
      return x_bhwc + self.conv2(jax.nn.relu(self.conv1(x_bhwc)))
    w, b = w_bc[:, None, None, :], b_bc[:, None, None, :]
    h = jax.nn.relu(w * self.conv1(x_bhwc) + b * x_bhwc)
    return x_bhwc + w * self.conv2(h) + b * h


class Encoder(nnx.Module):
  """MicroAST's encoder (content and style alike): RGB in [0, 1] to its two feature levels,
  each (B, ceil(ceil(H/2)/2), ceil(ceil(W/2)/2), 64)."""

  def __init__(self, *, rngs: nnx.Rngs | None):
    self.stem = nnx.List([Conv(c, rngs=rngs) for c in arch.ENCODER_STEM])
    self.res1 = Residual(arch.ENCODER_RES1, rngs=rngs)
    self.res2 = Residual(arch.ENCODER_RES2, rngs=rngs)

  def __call__(self, x_bhwc: jax.Array) -> tuple[jax.Array, jax.Array]:
    """(level 1, level 2): enc1's output and enc2's (a residual block applied to level 1)."""
    for conv in self.stem:
      x_bhwc = jax.nn.relu(conv(x_bhwc))
    level1 = self.res1(x_bhwc)
    return level1, self.res2(level1)


class Modulator(nnx.Module):
  """Per level, a depthwise 3x3 conv and a global average: the residual blocks' (w, b)."""

  def __init__(self, *, rngs: nnx.Rngs | None):
    self.weight1, self.bias1, self.weight2, self.bias2 = (
        Conv(c, rngs=rngs) for c in arch.MODULATOR_CONVS)

  def __call__(self, level1_bhwc: jax.Array, level2_bhwc: jax.Array):
    """(w1, b1, w2, b2), each (B, 64)."""
    def pooled(conv, x):
      return jnp.mean(conv(x).astype(jnp.float32), axis=(1, 2))

    return (pooled(self.weight1, level1_bhwc), pooled(self.bias1, level1_bhwc),
            pooled(self.weight2, level2_bhwc), pooled(self.bias2, level2_bhwc))


def upsample_bilinear2x(x_bhwc: jax.Array) -> jax.Array:
  """2x bilinear upsampling as torch's nn.Upsample(scale_factor=2, mode="bilinear") with
  align_corners False: output 2k takes 1/4 of input k - 1 and 3/4 of k, output 2k + 1 3/4 of
  k and 1/4 of k + 1, the edge rows repeated where k - 1 or k + 1 falls outside."""
  for axis in (1, 2):
    n = x_bhwc.shape[axis]
    first, last = (jax.lax.slice_in_dim(x_bhwc, i, i + 1, axis=axis) for i in (0, n - 1))
    prev = jnp.concatenate([first, jax.lax.slice_in_dim(x_bhwc, 0, n - 1, axis=axis)], axis=axis)
    nxt = jnp.concatenate([jax.lax.slice_in_dim(x_bhwc, 1, n, axis=axis), last], axis=axis)
    even = 0.75 * x_bhwc + 0.25 * prev
    odd = 0.75 * x_bhwc + 0.25 * nxt
    both = jnp.stack([even, odd], axis=axis + 1)
    shape = list(x_bhwc.shape)
    shape[axis] = 2 * n
    x_bhwc = both.reshape(shape)
  return x_bhwc


class Decoder(nnx.Module):
  """Level-2 content features and a code to RGB at 4x their size (not clamped)."""

  def __init__(self, *, rngs: nnx.Rngs | None):
    self.res1 = Residual(arch.DECODER_RES1, rngs=rngs)
    self.res2 = Residual(arch.DECODER_RES2, rngs=rngs)
    self.up = nnx.List([Conv(c, rngs=rngs) for c, _ in arch.DECODER_UP])
    self.out = Conv(arch.DECODER_OUT, rngs=rngs)

  def __call__(self, level2_bhwc: jax.Array, code: MicroASTCode) -> jax.Array:
    x = ops.adain(level2_bhwc, code.mean2, code.std2).astype(level2_bhwc.dtype)
    x = self.res1(x, code.w2, code.b2)
    x = ops.adain(x, code.mean1, code.std1).astype(level2_bhwc.dtype)
    x = self.res2(x, code.w1, code.b1)
    for (_, upsample), conv in zip(arch.DECODER_UP, self.up):
      if upsample:
        x = upsample_bilinear2x(x)
      x = jax.nn.relu(conv(x))
    return self.out(x)


class MicroAST(nnx.Module):
  """Content encoder, style encoder + modulator (the style code), decoder: the same content-code /
  style-code split as the paper's AdaIN network."""

  def __init__(self, *, rngs: nnx.Rngs | None = None, init: bool = True):
    """Weights drawn as torch initialises them (``rngs`` default Rngs(0)); ``init`` False leaves
    placeholders (shapes and dtypes) for a loader to fill (adain.models.microast.weights)."""
    if not init:
      rngs = None
    elif rngs is None:
      rngs = nnx.Rngs(0)
    self.content_encoder = Encoder(rngs=rngs)
    self.style_encoder = Encoder(rngs=rngs)
    self.modulator = Modulator(rngs=rngs)
    self.decoder = Decoder(rngs=rngs)

  def encode_content(self, images_bhwc: jax.Array, own_code: bool = False) -> ContentFeatures:
    """The content encoder's level-2 features; with ``own_code`` also the content's own code
    (encode_style of the content image), which generate needs for alpha below 1."""
    _, level2 = self.content_encoder(images_bhwc)
    return ContentFeatures(level2, self.encode_style(images_bhwc) if own_code else None)

  def encode_style(self, images_bhwc: jax.Array) -> MicroASTCode:
    """The style code: the style encoder's statistics at both levels and the modulator's (w, b)."""
    level1, level2 = self.style_encoder(images_bhwc)
    w1, b1, w2, b2 = self.modulator(level1, level2)
    (mean1, std1), (mean2, std2) = ops.mean_std(level1), ops.mean_std(level2)
    return MicroASTCode(mean1, std1, w1, b1, mean2, std2, w2, b2)

  def content_code(self, features: ContentFeatures) -> MicroASTCode:
    """The content's own code, which alpha blends a style's code with: the code the network
    gives the content image as a style. (The statistics of the content encoder's own features
    with the modulator's scales of them are no code for this decoder: at alpha 0 they give a
    flat brown picture with the published weights, where this gives back the content.)"""
    if features.own is None:
      raise AdainError(None, "alpha below 1 needs the content's own code: "
                       "encode_content(images, own_code=True)")
    return features.own

  def generate(self, features: ContentFeatures, code: MicroASTCode,
               alpha: float | jax.Array = 1.0) -> jax.Array:
    """The content restyled by ``code`` (one code per content image, or one for all), at 4x the
    features' size: crop to the input's size from the top-left (architecture.output_size).
    alpha blends ``code`` with the content's own code (MicroASTCode.interpolate); any alpha
    but the number 1 needs it (encode_content's ``own_code``)."""
    if not (isinstance(alpha, (int, float)) and alpha == 1):
      code = code.interpolate(self.content_code(features), alpha)
    return self.decoder(features.level2, code)

  def stylize(self, content_bhwc: jax.Array, code: MicroASTCode,
              alpha: float | jax.Array = 1.0) -> jax.Array:
    """encode_content and generate, the output cropped to the content's size (not clamped)."""
    _, h, w, _ = content_bhwc.shape
    own = not (isinstance(alpha, (int, float)) and alpha == 1)
    return self.generate(self.encode_content(content_bhwc, own), code, alpha)[:, :h, :w]
