"""Pure array functions of the AdaIN network, NHWC, matching pytorch-AdaIN's numerics."""

from __future__ import annotations

import jax
import jax.numpy as jnp

EPS = 1e-5  # pytorch-AdaIN's calc_mean_std eps, added to the (unbiased) variance.

def reflect_pad(x_bhwc: jax.Array, pad: int = 1, valid_hw: jax.Array | None = None,
                mode: str = "reflect") -> jax.Array:
  """Reflection padding of H and W, as torch.nn.ReflectionPad2d; ``mode="symmetric"`` (numpy's
  name) mirrors the edge pixels too: by 1, the edge repeated, as torch.nn.ReplicationPad2d.

  With ``valid_hw`` (traced (h, w)) only x's top-left h x w is the image, the rest filler that
  lets one compiled shape serve many image sizes (adain.inference.stylizer): the image's bottom and right
  edges are padded at h and w, so that the convolution of its valid part is the image's own.
  """
  xp = jnp.pad(x_bhwc, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=mode)
  if valid_hw is None:
    return xp
  for axis, n in ((1, valid_hw[0]), (2, valid_hw[1])):
    for k in range(pad):  # padded index n + pad + k mirrors n + pad - 2 - k (symmetric: - 1 - k)
      source = n + pad - k - (2 if mode == "reflect" else 1)
      edge = jax.lax.dynamic_slice_in_dim(xp, source, 1, axis)
      xp = jax.lax.dynamic_update_slice_in_dim(xp, edge, n + pad + k, axis)
  return xp


def valid_mask(shape_bhw: tuple[int, int, int], valid_hw: jax.Array) -> jax.Array:
  """1.0 on the top-left valid_hw positions of each (H, W) plane, 0.0 on the filler."""
  rows = jnp.arange(shape_bhw[1])[:, None] < valid_hw[0]
  cols = jnp.arange(shape_bhw[2])[None, :] < valid_hw[1]
  return jnp.broadcast_to(rows & cols, shape_bhw).astype(jnp.float32)


def conv2d(x_bhwc: jax.Array, kernel_hwio: jax.Array, bias_o: jax.Array | None = None) -> jax.Array:
  """VALID stride-1 convolution plus bias, if given (padding is done by the caller)."""
  y = jax.lax.conv_general_dilated(
      x_bhwc,
      kernel_hwio.astype(x_bhwc.dtype),
      window_strides=(1, 1),
      padding="VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=jax.lax.Precision.HIGHEST,
  )
  return y if bias_o is None else add_bias(y, bias_o)


@jax.custom_vjp
def add_bias(y_bhwc: jax.Array, bias_c: jax.Array) -> jax.Array:
  """y + bias on the channel axis; its gradient sums over (B, H, W) as a dot with ones.

  XLA's CPU reduction over the leading axes of an NHWC gradient is 5-17x slower than that dot,
  and in the train step it fused each decoder bias's sum with the ops before it, computing
  them again: the dot makes the step 1.07x faster at batch 4, 128 px. Being a custom VJP, it
  has no forward-mode derivative (jax.jvp, jacfwd): nothing here needs one.
  """
  return y_bhwc + bias_c.astype(y_bhwc.dtype)


def _add_bias_fwd(y_bhwc, bias_c):
  return add_bias(y_bhwc, bias_c), bias_c


def _add_bias_bwd(bias_c, g_bhwc):
  ones = jnp.ones_like(g_bhwc[..., 0])  # sharded as g's batch: the dot sums over all devices
  grad = jnp.einsum("bhw,bhwc->c", ones, g_bhwc, precision=jax.lax.Precision.HIGHEST,
                    preferred_element_type=jnp.float32, out_sharding=jax.typeof(bias_c).sharding)
  return g_bhwc, grad.astype(bias_c.dtype)


add_bias.defvjp(_add_bias_fwd, _add_bias_bwd)


def max_pool_ceil(x_bhwc: jax.Array, valid_hw: jax.Array | None = None) -> jax.Array:
  """2x2/2 max pooling with ceil_mode=True: odd sizes keep their last row/column.

  With ``valid_hw`` (see reflect_pad) the filler is zeroed first, so a window that straddles
  the image's edge pools the image's part only: x is a ReLU output, so 0 never wins.
  """
  if valid_hw is not None:
    x_bhwc = x_bhwc * valid_mask(x_bhwc.shape[:3], valid_hw)[..., None].astype(x_bhwc.dtype)
  _, h, w, _ = x_bhwc.shape
  x = jnp.pad(x_bhwc, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-jnp.inf)
  # The max of the four strided corners of each 2x2 block rather than reduce_window: the same
  # values, and a gradient that XLA's CPU backend fuses, where reduce_window's goes through
  # index arrays (8% of a training step's CPU time).
  corners = [x[:, i::2, j::2] for i in (0, 1) for j in (0, 1)]
  return jnp.maximum(jnp.maximum(corners[0], corners[1]), jnp.maximum(corners[2], corners[3]))


def upsample_conv(x_bhwc: jax.Array, kernel_hwio: jax.Array, bias_o: jax.Array,
                  valid_hw: jax.Array | None = None) -> jax.Array:
  """The decoder's upsampling layer: nearest 2x upsampling (nn.Upsample), reflection padding
  and a 3x3 convolution, computed at the input's resolution with 4/9 of the multiply-adds.

  Reflecting the upsampled image repeats its edge pixels, which are the input's, so the padded
  upsampled image is the edge-padded input upsampled. Output row 2i + p then sees input rows
  (i - 1, i) for p = 0 and (i, i + 1) for p = 1, each weighted by the kernel rows that fall on
  it summed: (k0, k1 + k2) and (k0 + k1, k2); columns alike. One 2x2 convolution gives the four
  phases (p, q) as channel blocks, interleaved into the output. Equal to the three steps to float
  rounding. ``valid_hw`` is x's (see reflect_pad); the output's is twice it.
  """
  y = conv2d(reflect_pad(x_bhwc, 1, valid_hw, mode="symmetric"), phase_kernel(kernel_hwio))
  return add_bias(interleave_phases(y), bias_o)  # once per channel, not per phase: 4x less to sum


def phase_kernel(kernel_hwio: jax.Array) -> jax.Array:
  """upsample_conv's 2x2 kernel from the 3x3 one: (a, b, in, (p, q, out)), taps summed in float32."""
  if kernel_hwio.shape[:2] != (3, 3):
    raise ValueError(f"upsample_conv needs a 3x3 kernel, not {kernel_hwio.shape[:2]}")
  k = kernel_hwio.astype(jnp.float32)  # cast back as conv2d does
  k = _fold_taps(jnp.moveaxis(_fold_taps(k), 2, 0))  # (q, b, p, a, in, out)
  cin, cout = kernel_hwio.shape[2:]
  return k.transpose(3, 1, 4, 2, 0, 5).reshape(2, 2, cin, 4 * cout)


def _fold_taps(k):
  """A 3-tap axis (first) as 2 phases x 2 taps: [[k0, k1 + k2], [k0 + k1, k2]]."""
  return jnp.stack([jnp.stack([k[0], k[1] + k[2]]), jnp.stack([k[0] + k[1], k[2]])])


def interleave_phases(y_bhwc: jax.Array) -> jax.Array:
  """(B, H + 1, W + 1, 4C) phase blocks (p, q) to (B, 2H, 2W, C): out[2i+p, 2j+q] = y[i+p, j+q, pq].

  Laid out with phase p at row 2i + 1 - p, block (i, j) fills rows and columns 2i, 2i + 1:
  the output is that image cropped by 1, a permutation whose gradient is one too (autodiff of
  the four phase slices instead pads each to y's full size and adds them, a quarter of the
  layer's training time).
  """
  b, h1, w1, c4 = y_bhwc.shape
  y = batch_reshape(y_bhwc, (b, h1, w1, 2, 2, c4 // 4))[:, :, :, ::-1, ::-1]
  y = batch_reshape(y.transpose(0, 1, 3, 2, 4, 5), (b, 2 * h1, 2 * w1, c4 // 4))
  return y[:, 1:-1, 1:-1]


def batch_reshape(x, shape):
  """x.reshape(shape) for shapes that split or merge axes after the (sharded) batch axis,
  whose sharding jax does not infer."""
  return jax.lax.reshape(x, shape, out_sharding=jax.typeof(x).sharding)


def resize_nearest(x_bhwc: jax.Array, out_hw: tuple[int, int], out_valid_hw: jax.Array | None = None,
                   in_valid_hw: jax.Array | None = None) -> jax.Array:
  """Nearest-neighbour resize to ``out_hw``, as torch's F.interpolate(mode="nearest").

  Source index floor(i * (in / out)) in float32, as torch computes it. With valid sizes (traced,
  see reflect_pad) the valid part of x is resized to the valid part of the output.
  """
  for axis in (1, 2):
    n_in = x_bhwc.shape[axis] if in_valid_hw is None else in_valid_hw[axis - 1]
    n_out = out_hw[axis - 1] if out_valid_hw is None else out_valid_hw[axis - 1]
    scale = jnp.asarray(n_in, jnp.float32) / jnp.asarray(n_out, jnp.float32)
    src = jnp.floor(jnp.arange(out_hw[axis - 1], dtype=jnp.float32) * scale).astype(jnp.int32)
    x_bhwc = jnp.take(x_bhwc, jnp.minimum(src, n_in - 1), axis=axis)
  return x_bhwc


def mean_std(x_bhwc: jax.Array, mask_bhw: jax.Array | None = None, eps: float = EPS,
             ddof: int = 1):
  """Per-image, per-channel mean and std over H and W: shapes (B, C), (B, C).

  The variance is unbiased (torch's default; ``ddof=0``: biased, as torch's norm layers) and eps
  is added before the square root, as in pytorch-AdaIN's calc_mean_std. With a mask, statistics
  are taken over the masked positions only (weights in [0, 1]), as the authors' spatial control.
  """
  x = x_bhwc.astype(jnp.float32)
  if mask_bhw is None:
    mask_bhw = jnp.ones(x.shape[:3], jnp.float32)
  m = mask_bhw.astype(jnp.float32)[..., None]
  n = jnp.sum(m, axis=(1, 2))
  mean = jnp.sum(x * m, axis=(1, 2)) / jnp.maximum(n, 1.0)
  var = jnp.sum(m * (x - mean[:, None, None, :]) ** 2, axis=(1, 2)) / jnp.maximum(n - ddof, 1.0)
  return mean, jnp.sqrt(var + eps)


def adain(content_bhwc: jax.Array, style_mean_bc: jax.Array, style_std_bc: jax.Array,
          mask_bhw: jax.Array | None = None,
          content_mean_std: tuple[jax.Array, jax.Array] | None = None) -> jax.Array:
  """Adaptive instance normalisation: content features re-scaled to the style's mean and std.

  ``content_mean_std`` replaces the content's own statistics: a tile of a large image is
  normalised with those of the whole image (adain.inference.tiling), so that tiles join without seams.
  """
  c_mean, c_std = content_mean_std if content_mean_std is not None else mean_std(content_bhwc, mask_bhw)
  normalized = (content_bhwc - c_mean[:, None, None, :]) / c_std[:, None, None, :]
  return normalized * style_std_bc[:, None, None, :] + style_mean_bc[:, None, None, :]


def per_image(alpha, ndim: int):
  """``alpha``, a number or one per image (B,), shaped to broadcast over arrays (B, ...) of
  ``ndim`` dimensions: a batch stylized with an alpha for each image (adain.augment)."""
  a = jnp.asarray(alpha)
  return a.reshape(a.shape + (1,) * (ndim - 1)) if a.ndim == 1 else a


def torch_conv_init(key: jax.Array, shape, fan_in: int) -> jax.Array:
  """PyTorch's default Conv2d init: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias."""
  bound = 1.0 / fan_in ** 0.5
  return jax.random.uniform(key, shape, jnp.float32, -bound, bound)


def placeholder(shape) -> jax.ShapeDtypeStruct:
  """A parameter's shape and dtype only, for a loader to fill (the networks' ``init=False``)."""
  return jax.ShapeDtypeStruct(shape, jnp.float32)
