"""Pure array functions of the AdaIN network, NHWC, matching pytorch-AdaIN's numerics."""

from __future__ import annotations

import jax
import jax.numpy as jnp

EPS = 1e-5  # pytorch-AdaIN's calc_mean_std eps, added to the (unbiased) variance.


def reflect_pad(x_bhwc: jax.Array, pad: int = 1) -> jax.Array:
  """Reflection padding of H and W, as torch.nn.ReflectionPad2d."""
  return jnp.pad(x_bhwc, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode="reflect")


def conv2d(x_bhwc: jax.Array, kernel_hwio: jax.Array, bias_o: jax.Array) -> jax.Array:
  """VALID stride-1 convolution plus bias (padding is done by the caller)."""
  y = jax.lax.conv_general_dilated(
      x_bhwc,
      kernel_hwio.astype(x_bhwc.dtype),
      window_strides=(1, 1),
      padding="VALID",
      dimension_numbers=("NHWC", "HWIO", "NHWC"),
      precision=jax.lax.Precision.HIGHEST,
  )
  return y + bias_o.astype(y.dtype)


def max_pool_ceil(x_bhwc: jax.Array) -> jax.Array:
  """2x2/2 max pooling with ceil_mode=True: odd sizes keep their last row/column."""
  _, h, w, _ = x_bhwc.shape
  x = jnp.pad(x_bhwc, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-jnp.inf)
  return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def upsample_nearest2x(x_bhwc: jax.Array) -> jax.Array:
  """Nearest-neighbour x2 upsampling, as nn.Upsample(scale_factor=2, mode='nearest')."""
  return jnp.repeat(jnp.repeat(x_bhwc, 2, axis=1), 2, axis=2)


def mean_std(x_bhwc: jax.Array, mask_bhw: jax.Array | None = None, eps: float = EPS):
  """Per-image, per-channel mean and std over H and W: shapes (B, C), (B, C).

  The variance is unbiased (torch's default) and eps is added before the square root, as in
  pytorch-AdaIN's calc_mean_std. With a mask, statistics are taken over the masked positions
  only (weights in [0, 1]), as the authors' spatial control does.
  """
  x = x_bhwc.astype(jnp.float32)
  if mask_bhw is None:
    mask_bhw = jnp.ones(x.shape[:3], jnp.float32)
  m = mask_bhw.astype(jnp.float32)[..., None]
  n = jnp.sum(m, axis=(1, 2))
  mean = jnp.sum(x * m, axis=(1, 2)) / jnp.maximum(n, 1.0)
  var = jnp.sum(m * (x - mean[:, None, None, :]) ** 2, axis=(1, 2)) / jnp.maximum(n - 1.0, 1.0)
  return mean, jnp.sqrt(var + eps)


def adain(content_bhwc: jax.Array, style_mean_bc: jax.Array, style_std_bc: jax.Array,
          mask_bhw: jax.Array | None = None) -> jax.Array:
  """Adaptive instance normalisation: content features re-scaled to the style's mean and std."""
  c_mean, c_std = mean_std(content_bhwc, mask_bhw)
  normalized = (content_bhwc - c_mean[:, None, None, :]) / c_std[:, None, None, :]
  return normalized * style_std_bc[:, None, None, :] + style_mean_bc[:, None, None, :]
