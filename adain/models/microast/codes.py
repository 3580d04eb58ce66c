"""MicroAST's style code: what its decoder keeps of a style image, at two feature levels."""

from __future__ import annotations

import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from adain.errors import AdainError
from adain.models import ops
from adain.models.microast.architecture import CHANNELS
from adain.weights.npz import read_npz, write_npz

MICROAST_CODE_FORMAT = "adain-microast-code/1"
FIELDS = ("mean1", "std1", "w1", "b1", "mean2", "std2", "w2", "b2")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class MicroASTCode:
  """A style as MicroAST's decoder sees it, every field of shape (B, 64), batch first.

  Level 1 is the style encoder's ``enc1`` output, level 2 its ``enc2`` output (both at 1/4
  resolution). ``meanN``, ``stdN``: the per-channel statistics AdaIN ("featMod") gives the
  content features at that level; ``wN``, ``bN``: the modulator's filter and skip scales for
  the residual block that follows it. The decoder uses level 2 first (dec1), then level 1 (dec2).

  Codes mix linearly in every field, as the paper's StyleCode does: a weighted average of codes
  is one code. Unlike AdaIN's, the decoder is not affine in the code (the modulated residual
  blocks and the second AdaIN come after non-linearities), so a mix of codes is a style between
  them, not the average of their pictures.
  """

  mean1: jax.Array
  std1: jax.Array
  w1: jax.Array
  b1: jax.Array
  mean2: jax.Array
  std2: jax.Array
  w2: jax.Array
  b2: jax.Array
  POSITIVE = ("std1", "std2")  # fields that are always > 0 (adain.augment draws them log-normal)

  def fields(self) -> tuple[jax.Array, ...]:
    return tuple(getattr(self, f) for f in FIELDS)

  def __len__(self) -> int:
    return self.mean1.shape[0]

  def __getitem__(self, i) -> MicroASTCode:
    return MicroASTCode(*(a[i] for a in self.fields()))

  def mix(self, weights) -> MicroASTCode:
    """One code, the weighted average of this batch of codes (weights are normalised to sum 1)."""
    w = jnp.asarray(weights, jnp.float32)
    w = w / jnp.sum(w)
    return MicroASTCode(*((w @ a)[None] for a in self.fields()))

  @staticmethod
  def concat(codes) -> MicroASTCode:
    codes = list(codes)
    return MicroASTCode(*(jnp.concatenate([getattr(c, f) for c in codes]) for f in FIELDS))

  def interpolate(self, content_code: MicroASTCode, alpha: float | jax.Array) -> MicroASTCode:
    """alpha * self + (1 - alpha) * content_code, field by field (batches broadcast; alpha a
    number or one per image).

    MicroAST's own alpha blends features inside the decoder, which leaves the range of images
    below 1 (outputs from -1.5 to 8.5 at alpha 0.8). Blending with the content's own code
    (MicroAST.content_code: the code the network gives the content image as a style) is the
    published network at 1 and the content re-rendered with its own code at 0, with a smooth
    trade-off between.
    """
    alpha = ops.per_image(alpha, 2)
    return MicroASTCode(*(alpha * s + (1.0 - alpha) * c
                          for s, c in zip(self.fields(), content_code.fields())))

  def save(self, path: str | os.PathLike) -> None:
    """Writes the code as .npz (float32 arrays, no pickles), atomically."""
    write_npz(path, {"__format__": np.asarray(MICROAST_CODE_FORMAT),
                     **{f: np.asarray(a, np.float32) for f, a in zip(FIELDS, self.fields())}})

  @staticmethod
  def load(path: str | os.PathLike) -> MicroASTCode:
    z = read_npz(path, MICROAST_CODE_FORMAT)
    arrays = [z.get(f) for f in FIELDS]
    n = None if arrays[0] is None else arrays[0].shape[:1]
    for f, a in zip(FIELDS, arrays):
      if a is None or a.ndim != 2 or a.shape[1:] != (CHANNELS,) or a.shape[:1] != n or not len(a):
        raise AdainError(path, f"MicroAST code needs {', '.join(FIELDS)} of one shape (N, {CHANNELS}); "
                         f"{f} is {'missing' if a is None else f'of shape {a.shape}'}")
      if not np.issubdtype(a.dtype, np.floating) or not np.all(np.isfinite(a)):
        raise AdainError(path, f"MicroAST code's {f} holds NaN, Inf or non-float values")
    for f in ("std1", "std2"):
      if not np.all(z[f] > 0):
        raise AdainError(path, f"MicroAST code's {f} holds non-positive values")
    return MicroASTCode(*(jnp.asarray(a, jnp.float32) for a in arrays))
