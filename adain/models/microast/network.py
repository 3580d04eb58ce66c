"""MicroAST in Flax NNX, NHWC: content and style encoders, modulator, modulated decoder.

The layers are those of adain.models.microast.architecture's tables, in their order;
adain.models.microast.weights fills them. The computation is MicroAST's net_microAST.py:
reflection padding then convolution everywhere, AdaIN with pytorch-AdaIN's statistics
(adain.models.ops.mean_std), bilinear upsampling as torch's (align_corners False).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from adain.errors import AdainError
from adain.models import ops
from adain.models.microast import architecture as arch
from adain.models.microast.codes import MicroASTCode


class Conv(nnx.Module):
  """Reflection pad of ksize // 2, then a VALID conv (strided, grouped as the table says).

  The kernel is HWIO with cin / groups input channels (PyTorch's OIHW transposed), the layout
  of lax's feature_group_count; grouped convs run as grouped_conv, the 9x9 ones as blocked_conv.
  ``rngs`` None: placeholders.
  """

  def __init__(self, conv: arch.Conv, *, rngs: nnx.Rngs | None):
    fan_in = conv.cin // conv.groups * conv.ksize * conv.ksize
    init = ops.placeholder if rngs is None else lambda shape: ops.torch_conv_init(rngs.params(), shape, fan_in)
    self.ksize, self.stride, self.groups = conv.ksize, conv.stride, conv.groups
    self.kernel = nnx.Param(init((conv.ksize, conv.ksize, conv.cin // conv.groups, conv.cout)))
    self.bias = nnx.Param(init((conv.cout,)))

  def __call__(self, x_bhwc: jax.Array, valid_hw: jax.Array | None = None) -> jax.Array:
    """``valid_hw``: x's image part, top-left (see ops.reflect_pad); a stride-2 conv's output's is
    ``half_up`` of it."""
    if self.ksize > 1:
      x_bhwc = ops.reflect_pad(x_bhwc, self.ksize // 2, valid_hw)
    kernel = self.kernel[...].astype(x_bhwc.dtype)
    if self.groups > 1:
      y = grouped_conv(x_bhwc, kernel, self.stride, self.groups)
    elif self.ksize > 3:
      y = blocked_conv(x_bhwc, kernel, BLOCK)
    else:
      y = jax.lax.conv_general_dilated(
          x_bhwc, kernel, window_strides=(self.stride, self.stride), padding="VALID",
          dimension_numbers=("NHWC", "HWIO", "NHWC"), precision=jax.lax.Precision.HIGHEST)
    return y + self.bias[...].astype(y.dtype)


# The 9x9 convs' blocks (blocked_conv), rows x columns. At 1024 px on 2 cores, in CPU seconds: the
# 16->3 conv took 0.57 as one conv, 0.25 blocked 2 x 2, 0.22 by 4 x 4 and 0.20 by 2 x 4; the
# 3->16 conv 0.25-0.28, and 0.15 blocked 2 x 2 or 2 x 4. With 3 channels on one side, the
# conv's matmul is 3 columns wide (16->3) or 16 (3->16); blocked 2 x 4, 24 or 128.
BLOCK = (2, 4)


def blocked_conv(xp_bhwc: jax.Array, kernel_hwio: jax.Array, block: tuple[int, int]) -> jax.Array:
  """A VALID stride-1 conv computed on tiles of ``block`` pixels as channels (space to depth): a
  conv of ceil((s + k - 1) / s) taps along an axis of tile side s, from s_h s_w cin channels to
  s_h s_w cout (blocked_kernel), its output tiles put back as pixels. More multiply-adds (the
  blocked kernel's zeros), but wider matmuls. Equal to the conv to float rounding.
  """
  b, hp, wp, cin = xp_bhwc.shape
  ks, _, _, cout = kernel_hwio.shape
  (sh, sw), (th, tw) = block, (_taps(ks, block[0]), _taps(ks, block[1]))
  ho, wo = hp - ks + 1, wp - ks + 1
  nh, nw = -(-ho // sh), -(-wo // sw)  # output tiles; the input's end is zero-filled to fit
  hb, wb = nh + th - 1, nw + tw - 1
  xp = jnp.pad(xp_bhwc, ((0, 0), (0, sh * hb - hp), (0, sw * wb - wp), (0, 0)))
  xb = ops.batch_reshape(xp, (b, hb, sh, wb, sw, cin)).transpose(0, 1, 3, 2, 4, 5)
  y = jax.lax.conv_general_dilated(
      ops.batch_reshape(xb, (b, hb, wb, sh * sw * cin)), blocked_kernel(kernel_hwio, block),
      window_strides=(1, 1), padding="VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=jax.lax.Precision.HIGHEST)
  y = ops.batch_reshape(y, (b, nh, nw, sh, sw, cout)).transpose(0, 1, 3, 2, 4, 5)
  return ops.batch_reshape(y, (b, nh * sh, nw * sw, cout))[:, :ho, :wo]


def _taps(ksize: int, side: int) -> int:
  """The tiles a tile of ``side`` pixels needs, from its own on: ceil((side + ksize - 1) / side)."""
  return (side + ksize - 2) // side + 1


def blocked_kernel(kernel_hwio: jax.Array, block: tuple[int, int]) -> jax.Array:
  """blocked_conv's kernel: tap (a, b) takes a tile's input pixel (ry, rx) to output pixel
  (py, px) with the kernel's (s_h a + ry - py, s_w b + rx - px), zero outside it; shape
  (taps_h, taps_w, (ry, rx, cin), (py, px, cout))."""
  ks, _, cin, cout = kernel_hwio.shape

  def index(side):  # (tap, r, p) -> kernel row, and whether it is one
    r = np.arange(side)
    i = side * np.arange(_taps(ks, side))[:, None, None] + r[:, None] - r
    return np.clip(i, 0, ks - 1), (i >= 0) & (i < ks)

  (rows, row_in), (cols, col_in) = index(block[0]), index(block[1])
  at = np.s_[:, None, :, None, :, None], np.s_[None, :, None, :, None, :]
  k = kernel_hwio[rows[at[0]], cols[at[1]]]  # (a, b, ry, rx, py, px, cin, cout)
  k = jnp.where((row_in[at[0]] & col_in[at[1]])[..., None, None], k, 0)
  th, tw = k.shape[:2]
  return k.transpose(0, 1, 2, 3, 6, 4, 5, 7).reshape(th, tw, block[0] * block[1] * cin,
                                                     block[0] * block[1] * cout)


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
  """x + conv2(relu(conv1(x))); with the style's scales (w, b), each conv's output is modulated
  as w * conv(h) + b * h (MicroAST's filter modulation). w and b are per channel (B, C), or per
  pixel (B, H, W, C) where a mask blends two styles' scales."""

  def __init__(self, convs: tuple[arch.Conv, arch.Conv], *, rngs: nnx.Rngs | None):
    self.conv1 = Conv(convs[0], rngs=rngs)
    self.conv2 = Conv(convs[1], rngs=rngs)

  def __call__(self, x_bhwc: jax.Array, w: jax.Array | None = None, b: jax.Array | None = None,
               valid_hw: jax.Array | None = None) -> jax.Array:
    if w is None:
      return x_bhwc + self.conv2(jax.nn.relu(self.conv1(x_bhwc, valid_hw)), valid_hw)
    if w.ndim == 2:
      w, b = w[:, None, None, :], b[:, None, None, :]
    w, b = w.astype(x_bhwc.dtype), b.astype(x_bhwc.dtype)
    h = jax.nn.relu(w * self.conv1(x_bhwc, valid_hw) + b * x_bhwc)
    return x_bhwc + w * self.conv2(h, valid_hw) + b * h


def half_up(valid_hw: jax.Array | None) -> jax.Array | None:
  """The valid size after a stride-2 conv (reflection pad 1, 3x3): ceil(n / 2)."""
  return None if valid_hw is None else (valid_hw + 1) // 2


class Encoder(nnx.Module):
  """MicroAST's encoder (content and style alike): RGB in [0, 1] to its two feature levels,
  each (B, ceil(ceil(H/2)/2), ceil(ceil(W/2)/2), 64)."""

  def __init__(self, *, rngs: nnx.Rngs | None):
    self.stem = nnx.List([Conv(c, rngs=rngs) for c in arch.ENCODER_STEM])
    self.res1 = Residual(arch.ENCODER_RES1, rngs=rngs)
    self.res2 = Residual(arch.ENCODER_RES2, rngs=rngs)

  def __call__(self, x_bhwc: jax.Array, valid_hw: jax.Array | None = None) -> tuple[jax.Array, jax.Array]:
    """(level 1, level 2): enc1's output and enc2's (a residual block applied to level 1)."""
    for spec, conv in zip(arch.ENCODER_STEM, self.stem):
      x_bhwc = jax.nn.relu(conv(x_bhwc, valid_hw))
      if spec.stride == 2:
        valid_hw = half_up(valid_hw)
    level1 = self.res1(x_bhwc, valid_hw=valid_hw)
    return level1, self.res2(level1, valid_hw=valid_hw)


class Modulator(nnx.Module):
  """Per level, a depthwise 3x3 conv whose global average is a residual block's (w, b)."""

  def __init__(self, *, rngs: nnx.Rngs | None):
    self.weight1, self.bias1, self.weight2, self.bias2 = (
        Conv(c, rngs=rngs) for c in arch.MODULATOR_CONVS)

  def __call__(self, level1_bhwc: jax.Array, level2_bhwc: jax.Array,
               valid_hw: jax.Array | None = None) -> tuple[jax.Array, ...]:
    """The four maps (w1, b1, w2, b2) before their average (MicroAST.code_of takes it)."""
    return (self.weight1(level1_bhwc, valid_hw), self.bias1(level1_bhwc, valid_hw),
            self.weight2(level2_bhwc, valid_hw), self.bias2(level2_bhwc, valid_hw))


def upsample_bilinear2x(x_bhwc: jax.Array, valid_hw: jax.Array | None = None) -> jax.Array:
  """2x bilinear upsampling as torch's nn.Upsample(scale_factor=2, mode="bilinear") with
  align_corners False: output 2k takes 1/4 of input k - 1 and 3/4 of k, output 2k + 1 3/4 of
  k and 1/4 of k + 1, the edge rows repeated where k - 1 or k + 1 falls outside (with
  ``valid_hw``, the image's last row and column, not the filler after them)."""
  for axis in (1, 2):
    n = x_bhwc.shape[axis]
    first, last = (jax.lax.slice_in_dim(x_bhwc, i, i + 1, axis=axis) for i in (0, n - 1))
    prev = jnp.concatenate([first, jax.lax.slice_in_dim(x_bhwc, 0, n - 1, axis=axis)], axis=axis)
    nxt = jnp.concatenate([jax.lax.slice_in_dim(x_bhwc, 1, n, axis=axis), last], axis=axis)
    if valid_hw is not None:
      at_edge = jnp.arange(n) == valid_hw[axis - 1] - 1
      nxt = jnp.where(at_edge.reshape([-1 if d == axis else 1 for d in range(4)]), x_bhwc, nxt)
    even = 0.75 * x_bhwc + 0.25 * prev
    odd = 0.75 * x_bhwc + 0.25 * nxt
    both = jnp.stack([even, odd], axis=axis + 1)
    shape = list(x_bhwc.shape)
    shape[axis] = 2 * n
    x_bhwc = both.reshape(shape)
  return x_bhwc


class Decoder(nnx.Module):
  """Level-2 content features and a code to RGB at 4x their size (not clamped), in two stages
  (adain.models.microast.STAGES): AdaIN needs the statistics of each stage's input over the whole image."""

  def __init__(self, *, rngs: nnx.Rngs | None):
    self.res1 = Residual(arch.DECODER_RES1, rngs=rngs)
    self.res2 = Residual(arch.DECODER_RES2, rngs=rngs)
    self.up = nnx.List([Conv(c, rngs=rngs) for c, _ in arch.DECODER_UP])
    self.out = Conv(arch.DECODER_OUT, rngs=rngs)

  def restyle(self, x_bhwc: jax.Array, codes: tuple[MicroASTCode, ...], level: int, mask_bhw=None,
              stats=None, valid_hw=None) -> jax.Array:
    """AdaIN to the code's level-``level`` statistics (dec1 takes level 2, dec2 level 1), then
    that level's modulated residual block. ``codes``: one code, or with a mask (1 = foreground,
    at this resolution) the foreground's and the background's: each region is normalised with
    its own statistics, and the filter scales are blended per pixel by the mask. ``stats``
    replaces x's own statistics (one row per region): a tile is normalised with the whole
    image's (adain.inference.tiling)."""
    valid = None if valid_hw is None else ops.valid_mask(x_bhwc.shape[:3], valid_hw)

    def field(code, name):
      return getattr(code, f"{name}{level}")

    def normalised(code, region, i):
      if valid is not None:
        region = valid if region is None else region * valid
      own = None if stats is None else (stats.mean[i:i + 1], stats.std[i:i + 1])
      return ops.adain(x_bhwc, field(code, "mean"), field(code, "std"), region, own)

    if mask_bhw is None:
      (code,) = codes
      y, w, b = normalised(code, None, 0), field(code, "w"), field(code, "b")
    else:
      fg, bg = codes
      m = mask_bhw[..., None].astype(jnp.float32)

      def blend(a, b):
        return m * a + (1.0 - m) * b

      y = blend(normalised(fg, mask_bhw, 0), normalised(bg, 1.0 - mask_bhw, 1))
      w, b = (blend(field(fg, f)[:, None, None], field(bg, f)[:, None, None]) for f in ("w", "b"))
    block = self.res1 if level == 2 else self.res2
    return block(y.astype(x_bhwc.dtype), w, b, valid_hw)

  def render(self, x_bhwc: jax.Array, valid_hw: jax.Array | None = None) -> jax.Array:
    """dec3: up twice to RGB."""
    for (_, upsample), conv in zip(arch.DECODER_UP, self.up):
      if upsample:
        x_bhwc = upsample_bilinear2x(x_bhwc, valid_hw)
        valid_hw = None if valid_hw is None else 2 * valid_hw
      x_bhwc = jax.nn.relu(conv(x_bhwc, valid_hw))
    return self.out(x_bhwc, valid_hw)


class MicroAST(nnx.Module):
  """Content encoder, style encoder + modulator (the style code), decoder: the content-code /
  style-code split of the paper's network, behind the same interface (adain.models.interface).

  ``valid_hw`` arguments: the images are the top-left (h, w) of their arrays, the rest filler
  (ops.reflect_pad); codes are then valid on their top-left ``feature_size`` of it.
  """

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

  @property
  def spec(self) -> arch.Spec:
    """Its static spec (adain.models.interface.Params)."""
    return arch.Spec()

  def encode_content(self, images_bhwc: jax.Array, valid_hw: jax.Array | None = None) -> jax.Array:
    """The content code: the content encoder's level-2 features (B, h, w, 64)."""
    return self.content_encoder(images_bhwc, valid_hw)[1]

  def style_maps(self, images_bhwc: jax.Array, valid_hw: jax.Array | None = None) -> tuple[jax.Array, ...]:
    """The maps whose statistics are the style code (``code_of``): level 1, level 2 and the
    modulator's four, all at code resolution. Tiling merges their statistics tile by tile."""
    level1, level2 = self.style_encoder(images_bhwc, valid_hw)
    return (level1, level2, *self.modulator(level1, level2, half_up(half_up(valid_hw))))

  @staticmethod
  def code_of(stats: list[tuple[jax.Array, jax.Array]]) -> MicroASTCode:
    """The code from each style map's (mean, std): the levels' both, the modulator's means."""
    (mean1, std1), (mean2, std2), *scales = stats
    w1, b1, w2, b2 = (mean for mean, _ in scales)
    return MicroASTCode(mean1, std1, w1, b1, mean2, std2, w2, b2)

  def encode_style(self, images_bhwc: jax.Array, mask_bhw: jax.Array | None = None,
                   valid_hw: jax.Array | None = None) -> MicroASTCode:
    """The style code: the style encoder's statistics at both levels and the modulator's (w, b)
    (with a mask at code resolution, of its region)."""
    maps = self.style_maps(images_bhwc, valid_hw)
    if valid_hw is not None:
      valid = ops.valid_mask(maps[0].shape[:3], half_up(half_up(valid_hw)))
      mask_bhw = valid if mask_bhw is None else mask_bhw * valid
    return self.code_of([ops.mean_std(m, mask_bhw) for m in maps])

  def stage(self, k: int, x_bhwc: jax.Array, style: MicroASTCode, alpha=1.0, mask_bhw=None,
            stats=None, valid_hw=None) -> jax.Array:
    """Stage k of generate, as tiling runs it: 0 restyles the content code at level 2 (dec1),
    1 at level 1 (dec2) and renders. ``alpha`` must be 1: alpha is folded into the code
    (tiling blends it with the whole image's own code first)."""
    if not (isinstance(alpha, (int, float)) and alpha == 1):
      raise AdainError(None, "MicroAST's stages take alpha 1: blend the code with the content's own code first")
    return self._stage(k, x_bhwc, _regions(style, mask_bhw), mask_bhw, stats, valid_hw)

  def _stage(self, k, x_bhwc, codes, mask_bhw, stats, valid_hw):
    if k == 0:
      return self.decoder.restyle(x_bhwc, codes, 2, mask_bhw, stats, valid_hw)
    y = self.decoder.restyle(x_bhwc, codes, 1, mask_bhw, stats, valid_hw)
    return self.decoder.render(y, valid_hw)

  def generate(self, content_code: jax.Array, style: MicroASTCode, alpha: float | jax.Array = 1.0,
               mask_bhw: jax.Array | None = None, content_stats=None,
               valid_hw: jax.Array | None = None, own_code: MicroASTCode | None = None) -> jax.Array:
    """The content restyled by ``style`` (one code per content image or one for all; two with a
    mask), at 4x the code's size: crop to the input's size from the top-left
    (architecture.output_size). Not clamped.

    alpha blends ``style`` with the content's ``own_code`` (encode_style of the content image,
    one per image or one for all; MicroASTCode.interpolate): any alpha but the number 1 needs
    it. With a mask, both styles blend with the image's own code. ``content_stats`` replaces
    the content code's statistics (stage 0's, see ``stage``).
    """
    codes = _regions(style, mask_bhw)
    if not (isinstance(alpha, (int, float)) and alpha == 1):
      if own_code is None:
        raise AdainError(None, "alpha below 1 needs the content's own code (own_code: encode_style "
                         "of the content image)")
      codes = tuple(c.interpolate(own_code, alpha) for c in codes)
    x = self._stage(0, content_code, codes, mask_bhw, content_stats, valid_hw)
    return self._stage(1, x, codes, mask_bhw, None, valid_hw)


def _regions(style: MicroASTCode, mask_bhw) -> tuple[MicroASTCode, ...]:
  """The codes of generate's regions: the style, or with a mask its two (foreground, background)."""
  return (style,) if mask_bhw is None else (style[:1], style[1:2])
