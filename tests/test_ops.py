"""The decoder's upsampling layer computed at the input's resolution (ops.upsample_conv)
against the three steps it replaces: upsampling, reflection padding and a 3x3 convolution."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adain.models import ops


def _three_steps(x, kernel, bias, valid_hw=None):
  up = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
  return ops.conv2d(ops.reflect_pad(up, 1, None if valid_hw is None else 2 * valid_hw), kernel, bias)


def _inputs(shape_bhwc, cout, seed=0):
  rng = np.random.default_rng(seed)
  x = rng.standard_normal(shape_bhwc, np.float32)
  kernel = rng.standard_normal((3, 3, shape_bhwc[-1], cout), np.float32) / 3
  return jnp.asarray(x), jnp.asarray(kernel), jnp.asarray(rng.standard_normal(cout, np.float32))


@pytest.mark.parametrize("shape_bhwc", [(2, 5, 7, 4), (1, 2, 2, 3), (3, 8, 6, 16)])
def test_upsample_conv_is_upsample_pad_conv(shape_bhwc):
  x, kernel, bias = _inputs(shape_bhwc, 5)
  np.testing.assert_allclose(ops.upsample_conv(x, kernel, bias), _three_steps(x, kernel, bias),
                             rtol=1e-5, atol=1e-5)


def test_upsample_conv_gradients_are_the_three_steps():
  x, kernel, bias = _inputs((2, 6, 5, 4), 3)
  g = jnp.asarray(np.random.default_rng(1).standard_normal((2, 12, 10, 3), np.float32))

  def grads(f):  # a ReLU after, as in the decoder
    return jax.grad(lambda *a: jnp.sum(jax.nn.relu(f(*a)) * g), argnums=(0, 1, 2))(x, kernel, bias)

  for ours, reference in zip(grads(ops.upsample_conv), grads(_three_steps)):
    np.testing.assert_allclose(ours, reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("h, w", [(4, 5), (1, 7), (6, 7)])
def test_upsample_conv_pads_at_the_valid_edge(h, w):
  """With filler beyond valid_hw, the valid part of the output is the valid image's own."""
  x, kernel, bias = _inputs((1, 6, 7, 4), 3)
  filled = x.at[:, h:].set(100.0).at[:, :, w:].set(-100.0)
  ours = ops.upsample_conv(filled, kernel, bias, jnp.array([h, w]))[:, :2 * h, :2 * w]
  np.testing.assert_allclose(ours, _three_steps(x[:, :h, :w], kernel, bias), rtol=1e-5, atol=1e-5)


def test_add_bias_gradients_are_autodiffs():
  """add_bias computes its bias gradient as a dot with ones: the same sums as jnp's."""
  rng = np.random.default_rng(2)
  y, g = (jnp.asarray(rng.standard_normal((3, 5, 4, 6), np.float32)) for _ in range(2))
  bias = jnp.asarray(rng.standard_normal(6, np.float32))
  ours = jax.grad(lambda y, b: jnp.sum(ops.add_bias(y, b) * g), argnums=(0, 1))(y, bias)
  plain = jax.grad(lambda y, b: jnp.sum((y + b) * g), argnums=(0, 1))(y, bias)
  for a, b in zip(ours, plain):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_upsample_conv_needs_a_3x3_kernel():
  x, kernel, bias = _inputs((1, 4, 4, 2), 3)
  with pytest.raises(ValueError, match="3x3"):
    ops.upsample_conv(x, kernel[:1, :1], bias)
