"""The paper's training losses, as pytorch-AdaIN's net.py computes them (mean-square, float32)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec

from adain.models import ops
from adain.models.adain.architecture import FEATURES


def mse(a: jax.Array, b: jax.Array) -> jax.Array:
  """Mean of squared differences over all elements, as torch.nn.MSELoss()."""
  return jnp.mean(jnp.square(a.astype(jnp.float32) - b.astype(jnp.float32)))


def content_loss(output_relu4_1: jax.Array, target: jax.Array) -> jax.Array:
  """MSE between the output's relu4_1 features and the AdaIN target the decoder was given.

  The target is a constant of the decoder's parameters, as the reference asserts.
  """
  return mse(output_relu4_1, jax.lax.stop_gradient(target))


def style_loss(output_features: Mapping[str, jax.Array], style_features: Mapping[str, jax.Array],
               layers: Sequence[str] = FEATURES) -> jax.Array:
  """Sum over ``layers`` of MSE(means) + MSE(stds) of the output's and the style's features."""
  total = jnp.zeros((), jnp.float32)
  for name in layers:
    out_mean, out_std = ops.mean_std(output_features[name])
    sty_mean, sty_std = ops.mean_std(jax.lax.stop_gradient(style_features[name]))
    total = total + mse(out_mean, sty_mean) + mse(out_std, sty_std)
  return total


def adain_target(content_relu4_1: jax.Array, style_relu4_1: jax.Array,
                 alpha: float = 1.0) -> jax.Array:
  """The content loss's target t: AdaIN of the content features to the style's statistics,
  blended with the content features by alpha (the decoder's input in the paper's model)."""
  target = ops.adain(content_relu4_1, *ops.mean_std(style_relu4_1))
  return alpha * target + (1 - alpha) * content_relu4_1


def output_losses(encoder, output_bhwc: jax.Array, target: jax.Array,
                  style_features: Mapping[str, jax.Array],
                  layers: Sequence[str] = FEATURES) -> tuple[jax.Array, jax.Array]:
  """(content loss, style loss) of output images: the paper's losses, used in training and by
  train.evaluate alike. ``encoder`` is adain.models.Encoder (the frozen VGG)."""
  return feature_losses(encoder.features(output_bhwc), target, style_features, layers)


def feature_losses(out_features: Mapping[str, jax.Array], target: jax.Array,
                   style_features: Mapping[str, jax.Array],
                   layers: Sequence[str] = FEATURES) -> tuple[jax.Array, jax.Array]:
  """output_losses of outputs whose encoder features are already computed."""
  return content_loss(out_features["relu4_1"], target), style_loss(out_features, style_features, layers)


def signal_distances(a_fields: Sequence[jax.Array], b_fields: Sequence[jax.Array]) -> jax.Array:
  """(B, B): entry (i, j) the distance between signals i of ``a`` and j of ``b`` (each a list of
  (B, C) fields): the sum over fields of their MSE over C, as MicroAST's net_microAST.py sums
  calc_style_loss (MSE of means + MSE of stds) and mse_loss of the modulator's signals."""
  total = 0.0
  for a, b in zip(a_fields, b_fields):
    a, b = a.astype(jnp.float32), _whole(b.astype(jnp.float32))
    total = total + jnp.mean(jnp.square(a[:, None, :] - b[None, :, :]), axis=-1)
  return total


def _whole(x: jax.Array) -> jax.Array:
  """x replicated, where it is split over a mesh (explicit sharding, as the training step's
  batch): every image meets every style, which a batch split over devices cannot broadcast."""
  mesh = jax.typeof(x).sharding.mesh
  return x if mesh.empty else jax.sharding.reshard(x, NamedSharding(mesh, PartitionSpec()))


def style_signal_contrastive_loss(output_fields: Sequence[jax.Array],
                                  style_fields: Sequence[jax.Array]) -> jax.Array:
  """MicroAST's style signal contrastive loss: sum over the batch of d(o_i, s_i) / sum_{j != i}
  d(o_i, s_j), with o the output images' style signals, s their styles' (MicroASTCode.fields():
  the style encoder's mean and std at both levels, the modulator's w and b) and d
  ``signal_distances``. Both sides carry gradients, as in MicroAST's code (nothing detached):
  the style encoder and modulator learn signals that tell styles apart."""
  d = signal_distances(output_fields, style_fields)
  own = jnp.eye(d.shape[0], dtype=bool)
  positive = jnp.sum(jnp.where(own, d, 0.0), axis=1)
  negative = jnp.sum(jnp.where(own, 0.0, d), axis=1)
  return jnp.sum(positive / negative)
