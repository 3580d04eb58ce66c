"""A style code: what AdaIN keeps of a style image (per-channel mean and std of relu4_1)."""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from adain.models.adain.architecture import ENCODER_LAYERS
from adain.errors import AdainError
from adain.weights.npz import read_npz, write_npz

STYLE_CODE_FORMAT = "adain-style-code/1"


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class StyleCode:
  """A style as AdaIN sees it: per-channel mean and std of relu4_1 features, shapes (B, 512).

  Codes mix linearly: AdaIN is affine in (mean, std), so a weighted sum of codes gives exactly
  the weighted sum of the AdaIN outputs that pytorch-AdaIN's style interpolation computes.
  """

  mean: jax.Array
  std: jax.Array
  POSITIVE = ("std",)  # fields that are always > 0 (adain.augment draws them log-normal)

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
