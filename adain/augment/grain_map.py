"""Style augmentation as a Grain transform (``pip install grain``): stylizes on the host, in
Grain's workers, with randomness from Grain's per-element seeds."""

from __future__ import annotations

import grain
import jax
import numpy as np

from adain.augment.host import host_function
from adain.augment.style_augment import StyleAugment


class StyleAugmentMap(grain.transforms.RandomMap):
  """``grain.transforms.RandomMap`` stylizing an element's images: one image (H, W, 3) or a
  batch (B, H, W, 3), float in [0, 1], the element itself or its ``image_key`` (a dict's key).
  The key is drawn from the element's ``rng``, so a seeded dataset repeats exactly."""

  def __init__(self, aug: StyleAugment, image_key=None, device: jax.Device | None = None):
    self._aug, self._device, self.image_key = aug, device, image_key
    self._run = None

  def random_map(self, element, rng: np.random.Generator):
    if self._run is None:  # built in the worker that runs it
      self._run = host_function(self._aug, self._device)
    images = element if self.image_key is None else element[self.image_key]
    one = images.ndim == 3
    out = self._run(images[None] if one else images, key_of(rng))
    out = out[0] if one else out
    return out if self.image_key is None else {**element, self.image_key: out}


def key_of(rng: np.random.Generator) -> jax.Array:
  """A JAX key from a Grain element's generator (one draw from it)."""
  return jax.random.key(int(rng.integers(0, 2**32, dtype=np.uint64)))
