"""Style augmentation on the host, for input pipelines that stylize before the train step:
``host_function`` (numpy in and out, on the host's CPU by default) and ``tf_data`` (a tf.data
map). Grain's transform is adain.augment.grain_map. Every batch's key is derived from a seed
and the batch's position, so a pipeline gives the same images on every run."""

from __future__ import annotations

from collections.abc import Callable

import jax
import numpy as np

from adain.augment.style_augment import StyleAugment


def host_function(aug: StyleAugment, device: jax.Device | None = None
                  ) -> Callable[[np.ndarray, jax.Array], np.ndarray]:
  """``run(images_bhw3, key) -> images``: ``aug`` on ``device`` (default the first CPU device,
  so that an accelerator stays free for the train step), numpy in and out."""
  device = device or jax.devices("cpu")[0]
  local = jax.device_put(aug, device)

  def run(images_bhw3: np.ndarray, key: jax.Array) -> np.ndarray:
    return np.asarray(local(jax.device_put(key, device), jax.device_put(images_bhw3, device)))

  return run


def batch_key(seed: int, index: int) -> jax.Array:
  """The key of a pipeline's batch number ``index`` (tf_data's, from its position)."""
  return jax.random.fold_in(jax.random.key(seed), index)


def tf_data(dataset, aug: StyleAugment, seed: int, *, image_key=None,
            device: jax.Device | None = None):
  """``dataset`` (tf.data, of batches) with each batch's images stylized by ``aug`` with
  ``batch_key(seed, position)``. Elements are float images (B, H, W, 3) in [0, 1], or dicts or
  tuples holding them at ``image_key``; other parts pass through."""
  import tensorflow as tf

  run = host_function(aug, device)

  def stylize(index, images):
    return run(images, batch_key(seed, int(index)))

  def fn(index, element):
    images = element if image_key is None else element[image_key]
    out = tf.numpy_function(stylize, [index, images], images.dtype, stateful=False)
    out = tf.ensure_shape(out, images.shape)
    if image_key is None:
      return out
    if isinstance(element, dict):
      return {**element, image_key: out}
    return tuple(out if i == image_key else e for i, e in enumerate(element))

  return dataset.enumerate().map(fn)
